from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

Tone = Callable[..., np.ndarray]


def _tone(freq_hz: float, seconds: float, sr: int = 16000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.fixture
def tone() -> Tone:
    """``tone(freq_hz, seconds, sr=16000, amp=0.5)`` -> a pure tone ``[T]`` float32."""
    return _tone
