"""Inline audio playback: WAV bytes from a waveform and an object that plays in any notebook."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import soundfile as sf

from avexlab.viz.spectrogram import as_wave


def wav_bytes(wave: Any, sample_rate: int, *, normalize: bool = False) -> bytes:
    """Encode a mono clip as a 16-bit PCM WAV file in memory.

    Args:
        wave: ``[T]`` float samples at ``sample_rate`` Hz, nominally in ``[-1, 1]``.
        normalize: scale so the peak is 0.99 (for listening to quiet clips).

    Samples whose magnitude exceeds 1 cannot be stored in 16-bit PCM; when the peak exceeds 1 the clip is
    scaled down by its peak rather than clipped (this is for listening, never for analysis).
    """
    x = as_wave(wave)
    peak = float(np.abs(x).max())
    if peak > 0 and (normalize or peak > 1.0):
        x = x * (0.99 / peak)
    buf = io.BytesIO()
    sf.write(buf, x, int(sample_rate), format="WAV", subtype="PCM_16")
    return buf.getvalue()


class Audio:
    """A clip that plays inline in marimo and Jupyter (``_repr_html_``: an ``<audio>`` element).

    Args:
        wave: ``[T]`` float samples at ``sample_rate`` Hz.
        normalize: see :func:`wav_bytes`.
    """

    def __init__(self, wave: Any, sample_rate: int, *, normalize: bool = False) -> None:
        self.wave = as_wave(wave)
        self.sample_rate = int(sample_rate)
        self.normalize = normalize

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.wave.size / self.sample_rate

    def wav_bytes(self) -> bytes:
        """The clip as 16-bit PCM WAV bytes."""
        return wav_bytes(self.wave, self.sample_rate, normalize=self.normalize)

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.wav_bytes()).decode("ascii")
        return f'<audio controls preload="metadata" src="data:audio/wav;base64,{data}"></audio>'

    def __repr__(self) -> str:
        return f"Audio({self.duration_s:.2f} s at {self.sample_rate} Hz)"
