from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable

import numpy as np
import soundfile as sf
from tolerance import unit_roundoff

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
    # PCM_16: one step of 2^-15 full scale (rounded or truncated), read back as float32
    assert np.abs(x - wave).max() <= 2.0**-15 + unit_roundoff(np.float32) * np.abs(wave).max()


def test_normalize_and_overload_scale_to_peak(tone: Tone) -> None:
    # the peak scaled to 0.99 (a division and a product: 2 roundings), then one PCM_16 step of 2^-15
    peak_tol = 2.0**-15 + 2 * 2 * unit_roundoff(np.float32)
    quiet = tone(440.0, 0.1, amp=0.01)
    x, _ = _decode(wav_bytes(quiet, SR, normalize=True))
    assert abs(np.abs(x).max() - 0.99) <= peak_tol
    loud = tone(440.0, 0.1, amp=3.0)
    x, _ = _decode(wav_bytes(loud, SR))
    assert abs(np.abs(x).max() - 0.99) <= peak_tol
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
