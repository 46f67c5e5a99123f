from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable

import numpy as np
import soundfile as sf

from avexlab.viz.audio import Audio, wav_bytes

SR = 16000
Tone = Callable[..., np.ndarray]  # the `tone` fixture (conftest.py)


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    x, sr = sf.read(io.BytesIO(data), dtype="float32")
    return x, sr


def test_wav_round_trip_keeps_rate_and_samples(tone: Tone) -> None:
    wave = tone(440.0, 0.25)
    x, sr = _decode(wav_bytes(wave, SR))
    assert sr == SR and x.shape == wave.shape
    assert np.abs(x - wave).max() < 2 / 32768


def test_normalize_and_overload_scale_to_peak(tone: Tone) -> None:
    quiet = tone(440.0, 0.1, amp=0.01)
    x, _ = _decode(wav_bytes(quiet, SR, normalize=True))
    assert abs(np.abs(x).max() - 0.99) < 1e-3
    loud = tone(440.0, 0.1, amp=3.0)
    x, _ = _decode(wav_bytes(loud, SR))
    assert abs(np.abs(x).max() - 0.99) < 1e-3
    assert np.corrcoef(x, loud)[0, 1] > 0.999  # scaled, not clipped


def test_audio_repr_html_embeds_the_wav(tone: Tone) -> None:
    wave = tone(440.0, 0.2)
    audio = Audio(wave, SR)
    html = audio._repr_html_()
    assert html.startswith("<audio")
    payload = re.search(r"base64,([A-Za-z0-9+/=]+)", html).group(1)
    x, sr = _decode(base64.b64decode(payload))
    assert sr == SR and x.size == wave.size
    assert audio.duration_s == 0.2
