"""The general-audio pool (the AudioSet stand-in): twelve non-animal sound classes, each rendered from a
few random parameters by vectorised numpy. Every renderer returns ``[n]`` float32 at RMS about 1."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from avexlab.synth.dsp import (
    NYQUIST_MARGIN,
    background,
    band,
    impulses,
    pink,
    resonators,
    shaped_noise,
    smooth_envelope,
)


def _norm(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / (np.sqrt(np.mean(x * x)) + 1e-9)


def _harmonics(f: np.ndarray, sr: int, amps: np.ndarray, phase0: np.ndarray) -> np.ndarray:
    """Sum of partials ``h * f(t)`` with amplitudes ``amps [H]``; partials above the band limit fade out.
    The phase accumulates in float64; the partials ``[H, n]`` are computed in float32."""
    f32 = np.float32
    h = np.arange(1, len(amps) + 1, dtype=f32)[:, None]
    phase = np.mod(np.cumsum(f, dtype=np.float64) * (2 * np.pi / sr), 2 * np.pi).astype(f32)
    partials = np.sin(h * phase[None, :] + np.asarray(phase0, dtype=f32)[:, None])
    limit = NYQUIST_MARGIN * sr
    if len(amps) * float(np.max(f)) > 0.95 * limit:
        partials *= np.clip((f32(limit) - h * np.asarray(f, dtype=f32)[None, :]) / f32(0.05 * limit), 0, 1)
    return np.asarray(amps, dtype=f32) @ partials


def engine(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    f0 = rng.uniform(25, 60) * smooth_envelope(rng, n, sr, 0.5, 0.1).astype(np.float64)
    amps = rng.uniform(0.2, 1.0, size=16) / np.arange(1, 17) ** 0.5
    x = _harmonics(f0, sr, amps, rng.uniform(0, 2 * np.pi, 16))
    rumble = shaped_noise(rng, n, sr, band(30, 800, 2))
    return _norm(_norm(x) + 0.5 * rumble)


def siren(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    lo, hi = rng.uniform(500, 800), rng.uniform(1100, 1600)
    period = rng.uniform(0.3, 4.0)
    saw = (t / period + rng.random()) % 1.0
    shape = saw if rng.random() < 0.5 else 0.5 - 0.5 * np.cos(2 * np.pi * saw)
    f = lo + (hi - lo) * shape
    return _norm(_harmonics(f, sr, np.array([1.0, 0.5, 0.3]), np.zeros(3)))


def babble(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    talkers = int(rng.integers(2, 6))
    x = np.zeros(n)
    for _ in range(talkers):  # a few talkers, each fully vectorised
        f0 = rng.uniform(90, 250) * smooth_envelope(rng, n, sr, 4.0, 0.15).astype(np.float64)
        amps = 1.0 / np.arange(1, 25)
        voiced = _harmonics(f0, sr, amps, rng.uniform(0, 2 * np.pi, 24))
        syll = np.clip(smooth_envelope(rng, n, sr, 8.0, 1.0) - 0.6, 0, None)
        x += voiced * syll
    formants = [(rng.uniform(300, 900), rng.uniform(900, 2500), rng.uniform(2400, 3500))]
    spec = np.fft.rfft(x)
    fr = np.fft.rfftfreq(n, 1 / sr)
    g = sum(np.exp(-0.5 * ((fr - fc) / 150.0) ** 2) for fc in formants[0]) + 0.05
    return _norm(np.fft.irfft(spec * g, n))


def music(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    beat = rng.uniform(0.15, 0.5)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    root = rng.integers(48, 64)
    n_notes = int(np.ceil(n / sr / beat))
    notes = root + rng.choice(scale, size=n_notes) + 12 * rng.integers(0, 2, size=n_notes)
    idx = np.minimum((t / beat).astype(int), n_notes - 1)
    f = 440.0 * 2 ** ((notes[idx] - 69) / 12)
    local = t - idx * beat
    env = np.exp(-local / (0.6 * beat)) * (1 - np.exp(-local / 0.005))
    amps = rng.uniform(0.2, 1.0, size=6) / np.arange(1, 7)
    melody = _harmonics(f, sr, amps, np.zeros(6)) * env
    bass_f = 440.0 * 2 ** ((root - 12 - 69) / 12) * np.ones(n)
    bass = _harmonics(bass_f, sr, np.array([1.0, 0.4]), np.zeros(2))
    hits = np.zeros(n)
    hits[(np.arange(0, n, int(beat * sr * 2)))] = 1.0
    drum = resonators(hits, sr, np.array([rng.uniform(60, 120)]), np.array([0.08]))
    return _norm(_norm(melody) + 0.4 * _norm(bass) + 0.5 * _norm(drum))


def knock(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    drive = impulses(rng, n, sr, rng.uniform(1.0, 4.0), 0.0005)
    modes = rng.uniform(150, 2500, size=3)
    return _norm(resonators(drive, sr, modes, rng.uniform(0.02, 0.08, size=3)))


def alarm_beep(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f = rng.uniform(1800, 4000) * np.ones(n)
    gate = ((t * rng.uniform(1.0, 5.0)) % 1.0) < rng.uniform(0.3, 0.6)
    return _norm(_harmonics(f, sr, np.array([1.0, 0.0, 0.33]), np.zeros(3)) * gate + 1e-3)


def applause(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    claps = impulses(rng, n, sr, rng.uniform(80, 300), 0.003)
    noise = shaped_noise(rng, n, sr, band(800, 5000, 1.5))
    return _norm(noise * claps * smooth_envelope(rng, n, sr, 0.5, 0.5))


def electrical_hum(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    f = (50.0 if rng.random() < 0.5 else 60.0) * np.ones(n)
    amps = rng.uniform(0.1, 1.0, size=12) * (np.arange(1, 13) % 2 + 0.3)
    buzz = shaped_noise(rng, n, sr, pink)
    return _norm(_norm(_harmonics(f, sr, amps, rng.uniform(0, 6, 12))) + 0.05 * buzz)


def traffic(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    x = shaped_noise(rng, n, sr, lambda f: band(40, 2500, 1.5)(f) * pink(f))
    t = np.arange(n) / sr
    passes = rng.uniform(0, n / sr, size=int(rng.integers(1, 4)))
    env = 0.3 + sum(np.exp(-0.5 * ((t - p) / rng.uniform(0.5, 1.5)) ** 2) for p in passes)
    return _norm(x * env)


GENERAL_CLASSES: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "engine": engine,
    "siren": siren,
    "speech_babble": babble,
    "music": music,
    "knock": knock,
    "alarm_beep": alarm_beep,
    "applause": applause,
    "electrical_hum": electrical_hum,
    "traffic": traffic,
    "rain": lambda rng, n, sr: background("rain", rng, n, sr),
    "wind": lambda rng, n, sr: background("wind", rng, n, sr),
    "water_stream": lambda rng, n, sr: background("stream", rng, n, sr),
}
"""Class name -> renderer ``(rng, n_samples, sr) -> [n] float32``."""
