from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from tolerance import rounding_approx

from avexlab.errors import AudioError, ManifestError
from avexlab.viz.spectrogram import Event, as_events, as_wave, compute_spectrogram, hz_to_mel, mel_to_hz

SR = 16000
Tone = Callable[..., np.ndarray]  # the `tone` fixture (conftest.py)


@pytest.mark.parametrize("kind", ["mel", "stft"])
@pytest.mark.parametrize("freq", [500.0, 3000.0])
def test_tone_peaks_at_its_frequency(kind: str, freq: float, tone: Tone) -> None:
    spec = compute_spectrogram(tone(freq, 0.5), SR, kind=kind)
    peak_hz = spec.freqs_hz[int(np.argmax(spec.db.mean(axis=1)))]
    # Within one mel band / one FFT bin of the true frequency.
    assert abs(hz_to_mel(peak_hz) - hz_to_mel(freq)) < 2 * (hz_to_mel(SR / 2) / 128)
    assert spec.db.max() == 0.0  # dB relative to the loudest bin: its own value minus itself
    assert spec.db.min() >= -80.0


def test_frames_and_axes_in_seconds_and_hz(tone: Tone) -> None:
    wave = tone(1000.0, 2.0)
    spec = compute_spectrogram(wave, SR, hop_s=0.01, n_mels=64, f_max_hz=6000.0)
    assert spec.db.shape == (64, wave.size // 160 + 1)
    assert spec.times_s[1] == 0.01  # 160 / 16000: one correctly rounded division, as the literal
    assert spec.duration_s == 2.0
    assert spec.freqs_hz.max() < 6000.0 and spec.f_max_hz == 6000.0


def test_freq_fraction_mel_and_linear(tone: Tone) -> None:
    mel = compute_spectrogram(tone(1000.0, 0.2), SR, kind="mel")
    lin = compute_spectrogram(tone(1000.0, 0.2), SR, kind="stft")
    # a ratio of differences on the axis: a few roundings; the mel round trip (log10, power) adds some
    assert lin.freq_fraction(4000.0) == rounding_approx(0.5, ops=4, scale=1.0)
    assert mel.freq_fraction(mel_to_hz(hz_to_mel(8000.0) / 2)) == rounding_approx(0.5, ops=12, scale=1.0)
    assert mel.freq_fraction(1e9) == 1.0


def test_rejects_bad_audio(tone: Tone) -> None:
    with pytest.raises(AudioError, match="mono"):
        as_wave(np.zeros((2, 100)))
    with pytest.raises(AudioError, match="finite"):
        as_wave(np.array([0.0, np.nan]))
    with pytest.raises(AudioError, match="empty"):
        as_wave(np.zeros(0))
    with pytest.raises(AudioError, match="Nyquist"):
        compute_spectrogram(tone(100.0, 0.1), SR, f_max_hz=12000.0)
    assert as_wave(np.zeros((1, 10))).shape == (10,)


def test_as_events_accepts_frames_mappings_and_events() -> None:
    frame = pl.DataFrame(
        {"onset_s": [0.1, 1.0], "offset_s": [0.4, 1.5], "species": ["a", "b"], "call_type": [None, "song"]}
    )
    evs = as_events(frame)
    assert evs == [Event(0.1, 0.4, "a"), Event(1.0, 1.5, "song")]
    assert as_events([{"onset_s": 0, "offset_s": 1, "label": "x", "low_hz": 100, "high_hz": 900}]) == [
        Event(0.0, 1.0, "x", 100.0, 900.0)
    ]
    assert as_events(None) == []


def test_as_events_names_the_bad_row() -> None:
    with pytest.raises(ManifestError, match="event 1"):
        as_events([Event(0, 1), {"onset_s": 2.0, "offset_s": 1.0}])
    with pytest.raises(ManifestError, match="offset_s"):
        as_events([{"onset_s": 2.0}])
