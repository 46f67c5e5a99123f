"""The general-audio pool (the AudioSet stand-in): 65 sound classes in an ontology shaped like AudioSet's,
each rendered from a few random parameters by vectorised numpy. Every renderer is
``(rng, n_samples, sr) -> [n] float32`` at RMS about 1.

The ontology (:func:`general_ontology`) has three levels, as AudioSet's does near its top: ``branch``
(Human sounds, Animal, Music, Natural sounds, Sounds of things), ``parent`` (Human voice, Domestic
animals, Vehicle, Alarm, ...) and ``class``, the leaf. The **Animal** branch is the pool's own animal
sounds: domestic animals and livestock from dedicated renderers, and wild animals under COARSE labels
(``bird``, ``frog``, ``insect``, ``whale``) rendered with the world's own call physics
(:func:`avexlab.synth.taxonomy.draw_call`) from voices drawn afresh for every clip, so no wild-animal clip
is a species of the bio taxonomy; this is how AudioSet labels animals, by kind rather than by species.

Labels: a general clip's manifest label is its leaf class only, not its ancestors. AudioSet propagates
labels to parents, but here the hierarchy is a tree (one parent per leaf), so the ancestors add no
information that :func:`general_label_at` cannot derive; and the bio pool's clips carry their species, not
its genus or family, so leaf-only labels keep the joint multi-hot label space of supervised training
symmetric between the pools (one positive per clip in either) instead of giving every general clip three
positives, two of them shared by whole branches. Read labels at the parent or branch level with
:func:`general_label_at`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import polars as pl
import scipy.fft as sfft
from scipy.signal import istft, lfilter, stft

from avexlab.errors import ConfigError, expected_found
from avexlab.synth.dsp import (
    NYQUIST_MARGIN,
    background,
    band,
    impulses,
    pink,
    resonators,
    shaped_noise,
    smooth_envelope,
    synth_call,
)
from avexlab.synth.taxonomy import GROUP_KINDS, draw_call

Renderer = Callable[[np.random.Generator, int, int], np.ndarray]
F32 = np.float32

# ------------------------------------------------------------------------------------------- building blocks


def _norm(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=F32)
    return x / (np.sqrt(np.mean(x * x)) + 1e-9)


def _harmonics(f: np.ndarray, sr: int, amps: np.ndarray, phase0: np.ndarray | None = None) -> np.ndarray:
    """Sum of partials ``h * f(t)`` (``f [n]`` Hz) with amplitudes ``amps [H]`` or time-varying ``[H, n]``;
    partials above the band limit fade out. The phase accumulates in float64; the partials ``[H, n]`` are
    computed in float32."""
    amps = np.asarray(amps, dtype=F32)
    n_h = amps.shape[0]
    f = np.asarray(f, dtype=np.float64)
    h = np.arange(1, n_h + 1, dtype=F32)[:, None]
    phase = np.mod(np.cumsum(f, dtype=np.float64) * (2 * np.pi / sr), 2 * np.pi).astype(F32)
    p0 = np.zeros(n_h, dtype=F32) if phase0 is None else np.asarray(phase0, dtype=F32)
    partials = np.sin(h * phase[None, :] + p0[:, None])
    limit = NYQUIST_MARGIN * sr
    if n_h * float(np.max(f)) > 0.95 * limit:
        partials *= np.clip((F32(limit) - h * np.asarray(f, dtype=F32)[None, :]) / F32(0.05 * limit), 0, 1)
    if amps.ndim == 1:
        return amps @ partials
    return (amps * partials).sum(axis=0)


def _sequence(
    rng: np.random.Generator,
    clip_s: float,
    dur: tuple[float, float],
    gap: tuple[float, float],
    first: tuple[float, float] = (0.0, 0.5),
) -> tuple[np.ndarray, np.ndarray]:
    """Back-to-back segments: ``(starts_s, durs_s)`` with durations and gaps uniform in their ranges,
    the first start in ``first``, cut at ``clip_s``. The number of draws depends only on the ranges."""
    k = int(clip_s / max(dur[0] + gap[0], 1e-3)) + 2
    d = rng.uniform(*dur, size=k)
    g = rng.uniform(*gap, size=k)
    starts = rng.uniform(*first) + np.concatenate([[0.0], np.cumsum(d + g)[:-1]])
    keep = starts < clip_s
    return starts[keep], d[keep]


def _segments(
    n: int, sr: int, starts: np.ndarray, durs: np.ndarray, ramp_s: float = 0.01
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sorted, non-overlapping segments (seconds): ``env [n]`` in 0..1 (raised-cosine ramps of
    ``ramp_s``), ``idx [n]`` the segment of each sample (-1 before the first) and ``local [n]`` seconds
    since that segment's start. A sample after a segment's end keeps its index (its ``env`` is 0)."""
    t = np.arange(n, dtype=np.float64) / sr
    if len(starts) == 0:
        return np.zeros(n, dtype=F32), np.full(n, -1), np.zeros(n, dtype=F32)
    idx = np.searchsorted(starts, t, side="right") - 1
    i = np.maximum(idx, 0)
    local = t - starts[i]
    edge = np.minimum(local, durs[i] - local)
    inside = (idx >= 0) & (local < durs[i])
    ramp = np.clip(edge / max(ramp_s, 1.0 / sr), 0.0, 1.0)
    env = np.where(inside, 0.5 - 0.5 * np.cos(np.pi * ramp), 0.0)
    return env.astype(F32), idx, local.astype(F32)


def _hits(n: int, sr: int, times_s: np.ndarray, amps: np.ndarray | float = 1.0) -> np.ndarray:
    """An impulse train ``[n]`` float32: ``amps`` at ``times_s`` (times outside the clip are dropped)."""
    x = np.zeros(n, dtype=np.float64)
    idx = np.round(np.asarray(times_s) * sr).astype(int)
    a = np.broadcast_to(np.asarray(amps, dtype=np.float64), idx.shape)
    ok = (idx >= 0) & (idx < n)
    np.add.at(x, idx[ok], a[ok])
    return x.astype(F32)


def _decay(x: np.ndarray, sr: int, decay_s: float) -> np.ndarray:
    """``x`` through a one-pole exponential decay of time constant ``decay_s`` (impulses -> envelopes)."""
    a = np.exp(-1.0 / max(decay_s * sr, 1.0))
    return lfilter([1.0], [1.0, -a], x).astype(F32)


def _filt(x: np.ndarray, sr: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``x`` filtered by the zero-phase amplitude response ``gain(freqs_hz)`` (one FFT pass)."""
    n = len(x)
    m = sfft.next_fast_len(n, real=True)
    fr = np.fft.rfftfreq(m, 1.0 / sr).astype(F32)
    return sfft.irfft(sfft.rfft(x, m) * gain(fr), m)[:n].astype(F32)


def _peaks(centres: np.ndarray, widths: np.ndarray, floor: float) -> Callable[[np.ndarray], np.ndarray]:
    """Amplitude response: Gaussian peaks at ``centres`` Hz with standard deviations ``widths`` Hz."""

    def g(f: np.ndarray) -> np.ndarray:
        c, w = np.asarray(centres, dtype=F32)[:, None], np.asarray(widths, dtype=F32)[:, None]
        return np.exp(-0.5 * ((f[None, :] - c) / w) ** 2).sum(axis=0) + F32(floor)

    return g


VOWELS = np.array(
    [
        [730, 1090, 2440],
        [270, 2290, 3010],
        [300, 870, 2240],
        [530, 1840, 2480],
        [570, 840, 2410],
        [660, 1720, 2410],
    ],
    dtype=np.float64,
)
"""Formant frequencies F1-F3 (Hz) of the vowels a, i, u, e, o, ae of an adult male voice."""


def _vocal_tract(x: np.ndarray, sr: int, formants: np.ndarray, floor: float = 0.03) -> np.ndarray:
    """``x`` through time-varying formants ``[n, 3]`` Hz (bandwidths 80/110/160 Hz), applied frame by
    frame in the STFT domain (about 32 ms frames): the vowel changes from syllable to syllable."""
    n = len(x)
    nper = 1 << int(round(np.log2(0.032 * sr)))
    _, _, z = stft(x, fs=sr, nperseg=nper, noverlap=nper // 2, boundary="even", padded=True)
    f = np.fft.rfftfreq(nper, 1.0 / sr).astype(F32)
    centres = np.clip(np.arange(z.shape[1]) * (nper // 2), 0, n - 1)
    fm = formants[centres].astype(F32)  # [frames, 3]
    bw = np.array([80.0, 110.0, 160.0], dtype=F32)
    gain = np.exp(-0.5 * ((f[:, None, None] - fm[None, :, :]) / bw) ** 2).sum(axis=2) + F32(floor)
    _, y = istft(z * gain, fs=sr, nperseg=nper, noverlap=nper // 2, boundary=True)
    y = y[:n]
    return np.pad(y, (0, n - len(y))).astype(F32)


def _voice(
    rng: np.random.Generator,
    n: int,
    sr: int,
    f0: np.ndarray,
    env: np.ndarray,
    idx: np.ndarray,
    *,
    scale: float = 1.0,
    tilt: float = 1.0,
    breath: float = 0.05,
    n_harm: int = 24,
    vowels: np.ndarray | None = None,
) -> np.ndarray:
    """A voice: a harmonic source on ``f0 [n]`` (partials ``h**-tilt``) plus ``breath`` noise, gated by
    ``env [n]``, through formants that change with the segment ``idx [n]`` (one vowel per segment, drawn
    from ``vowels``, a subset of ``VOWELS``' rows; formants scaled by ``scale``: 1 adult male, 1.2 female,
    1.4 child). Returns RMS 1."""
    table = VOWELS if vowels is None else VOWELS[vowels]
    which = rng.integers(0, len(table), size=int(idx.max()) + 2)
    formants = table[which[np.maximum(idx, 0)]] * scale
    amps = np.arange(1, n_harm + 1, dtype=F32) ** -F32(tilt)
    src = _harmonics(f0, sr, amps, rng.uniform(0, 2 * np.pi, n_harm))
    src = _norm(src) + F32(breath) * shaped_noise(rng, n, sr, band(200, 6000, 1.0))
    return _norm(_vocal_tract(src * env, sr, formants))


def _contour(
    rng: np.random.Generator, n: int, sr: int, f_lo: float, f_hi: float, depth: float = 0.1
) -> np.ndarray:
    """A fundamental ``[n]`` float64 around a base drawn in ``(f_lo, f_hi)``, wandering by ``depth``."""
    return rng.uniform(f_lo, f_hi) * smooth_envelope(rng, n, sr, 3.0, depth).astype(np.float64)


def _per_segment(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``values[idx]`` with ``idx = -1`` mapped to the first value (samples before the first segment)."""
    return np.asarray(values)[np.maximum(idx, 0)]


# ------------------------------------------------------------------------------------------- Human sounds


def speech(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    clip = n / sr
    starts, durs = _sequence(rng, clip, (0.1, 0.28), (0.02, 0.12))
    env, idx, _ = _segments(n, sr, starts, durs, 0.02)
    phrase, _, _ = _segments(n, sr, *_sequence(rng, clip, (1.0, 2.2), (0.2, 0.6), (0.0, 0.2)), 0.05)
    f0 = _contour(rng, n, sr, 90, 230, 0.15)
    x = _voice(rng, n, sr, f0, env * phrase, idx, scale=rng.uniform(1.0, 1.2), tilt=1.0)
    fric = _segments(
        n, sr, starts + durs, rng.uniform(0.03, 0.08, size=len(starts)) * (rng.random(len(starts)) < 0.4)
    )[0]
    hiss = shaped_noise(rng, n, sr, band(3500, 8000, 2.0))
    return _norm(x + 0.6 * hiss * fric * phrase)


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


def shout(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.35, 0.9), (0.3, 1.2))
    env, idx, local = _segments(n, sr, starts, durs, 0.03)
    rise = 1.0 + 0.15 * np.sin(np.pi * np.clip(local / _per_segment(durs, idx), 0, 1))
    f0 = _contour(rng, n, sr, 260, 440, 0.05) * rise
    return _voice(
        rng, n, sr, f0, env, idx, scale=1.15, tilt=0.6, breath=0.1, n_harm=16, vowels=np.array([0, 5, 3])
    )


def whisper(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.1, 0.3), (0.03, 0.15))
    env, idx, _ = _segments(n, sr, starts, durs, 0.02)
    table = VOWELS * rng.uniform(1.0, 1.2)
    formants = table[rng.integers(0, len(VOWELS), size=int(idx.max()) + 2)[np.maximum(idx, 0)]]
    src = shaped_noise(rng, n, sr, band(300, 7000, 1.0)) * env
    return _norm(_vocal_tract(src, sr, formants, floor=0.08))


def singing(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.4, 1.2), (0.0, 0.08))
    env, idx, local = _segments(n, sr, starts, durs, 0.04)
    root = rng.uniform(140, 400)
    steps = rng.choice([0, 2, 4, 5, 7, 9, 12], size=len(starts))
    t = np.arange(n) / sr
    vib = 1.0 + 0.025 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t) * np.clip(local / 0.3, 0, 1)
    f0 = root * 2.0 ** (_per_segment(steps, idx) / 12.0) * vib
    x = _voice(
        rng,
        n,
        sr,
        f0,
        env,
        idx,
        scale=rng.uniform(1.0, 1.25),
        tilt=1.3,
        breath=0.02,
        vowels=np.array([0, 4, 2]),
    )
    ring = _filt(x, sr, _peaks(np.array([2800.0]), np.array([300.0]), 1.0))  # the singer's formant
    return _norm(ring)


def laughter(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    bouts, bout_d = _sequence(rng, n / sr, (0.8, 2.0), (0.4, 1.5))
    rate = rng.uniform(4.0, 6.0)
    k = int(n / sr * rate) + 1
    starts = np.arange(k) / rate + rng.uniform(0, 0.1)
    in_bout = _segments(n, sr, bouts, bout_d)[0]
    env, idx, local = _segments(n, sr, starts, np.full(k, 0.55 / rate), 0.015)
    decay = np.exp(-_per_segment(np.arange(k) % 8, idx) * 0.06)
    f0 = _contour(rng, n, sr, 220, 420, 0.05) * decay
    voiced = _voice(
        rng, n, sr, f0, env * in_bout, idx, scale=1.2, breath=0.5, n_harm=16, vowels=np.array([0, 5])
    )
    return _norm(voiced)


def baby_cry(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.6, 1.6), (0.25, 0.6))
    env, idx, local = _segments(n, sr, starts, durs, 0.05)
    arch = 1.0 + 0.2 * np.sin(np.pi * np.clip(local / _per_segment(durs, idx), 0, 1))
    f0 = _contour(rng, n, sr, 380, 560, 0.04) * arch
    return _voice(
        rng, n, sr, f0, env, idx, scale=1.45, tilt=0.7, breath=0.15, n_harm=14, vowels=np.array([0, 5])
    )


def applause(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    claps = impulses(rng, n, sr, rng.uniform(80, 300), 0.003)
    noise = shaped_noise(rng, n, sr, band(800, 5000, 1.5))
    return _norm(noise * claps * smooth_envelope(rng, n, sr, 0.5, 0.5))


def cheering(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    voices = np.zeros(n, dtype=F32)
    for _ in range(int(rng.integers(4, 8))):  # a crowd's sustained "yeah"s, each fully vectorised
        f0 = _contour(rng, n, sr, 220, 420, 0.12)
        gate = np.clip(smooth_envelope(rng, n, sr, 1.0, 1.0) - 0.4, 0, None)
        voices += _harmonics(f0, sr, np.arange(1, 13, dtype=F32) ** -0.8, rng.uniform(0, 6, 12)) * gate
    voices = _filt(
        voices, sr, _peaks(np.array([750.0, 1300.0, 2600.0]), np.array([150.0, 200.0, 300.0]), 0.05)
    )
    crowd = shaped_noise(rng, n, sr, band(300, 4000, 1.5))
    swell = smooth_envelope(rng, n, sr, 0.4, 0.6)
    return _norm((_norm(voices) + 0.7 * crowd) * swell)


def footsteps(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    rate = rng.uniform(1.4, 2.4)
    k = int(n / sr * rate) + 1
    times = np.arange(k) / rate + rng.normal(0, 0.02, size=k) + rng.uniform(0, 0.3)
    hits = _hits(n, sr, times, rng.uniform(0.6, 1.0, size=k))
    thud = resonators(
        hits, sr, np.array([rng.uniform(60, 140), rng.uniform(200, 400)]), np.array([0.03, 0.015])
    )
    scuff = shaped_noise(rng, n, sr, band(1000, 5000, 1.5)) * _decay(hits, sr, 0.04)
    return _norm(_norm(thud) + 0.5 * _norm(scuff))


def cough(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.15, 0.35), (0.15, 1.5))
    env, idx, local = _segments(n, sr, starts, durs, 0.005)
    burst = env * np.exp(-local / 0.08)
    noise = shaped_noise(
        rng,
        n,
        sr,
        _peaks(np.array([rng.uniform(400, 700), rng.uniform(1200, 2000)]), np.array([250.0, 500.0]), 0.1),
    )
    voiced = _harmonics(_contour(rng, n, sr, 150, 300, 0.05), sr, np.array([1.0, 0.5, 0.3, 0.2]))
    return _norm((noise + 0.3 * voiced) * burst)


def heartbeat(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    bpm = rng.uniform(55, 110)
    k = int(n / sr * bpm / 60) + 2
    beats = np.arange(k) * 60 / bpm + rng.uniform(0, 0.5)
    split = rng.uniform(0.25, 0.35)
    lub = resonators(_hits(n, sr, beats), sr, np.array([rng.uniform(35, 60)]), np.array([0.04]))
    dub = resonators(_hits(n, sr, beats + split, 0.7), sr, np.array([rng.uniform(60, 100)]), np.array([0.03]))
    return _norm(lub + dub)


def breathing(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    period = rng.uniform(2.5, 4.5)
    k = int(n / sr / period * 2) + 2
    starts = np.arange(k) * period / 2 + rng.uniform(0, 0.5)
    durs = np.tile([period * 0.4, period * 0.45], k)[:k]
    env, idx, local = _segments(n, sr, starts, durs, 0.3)
    inhale = _per_segment(np.arange(k) % 2 == 0, idx)
    x_in = shaped_noise(rng, n, sr, band(600, 3500, 1.5))
    x_out = shaped_noise(rng, n, sr, band(250, 1800, 1.5))
    return _norm(np.where(inhale, x_in, 0.8 * x_out) * env)


# -------------------------------------------------------------------------------------------------- Animal


def dog_bark(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.08, 0.22), (0.15, 0.9))
    env, idx, local = _segments(n, sr, starts, durs, 0.008)
    f0 = rng.uniform(300, 650) * np.exp(-local / 0.15)
    x = _harmonics(np.maximum(f0, 150), sr, np.arange(1, 11, dtype=F32) ** -0.7, rng.uniform(0, 6, 10))
    noisy = _norm(x) + 0.5 * shaped_noise(rng, n, sr, band(400, 3500, 1.5))
    return _norm(_filt(noisy * env, sr, _peaks(np.array([rng.uniform(800, 1300)]), np.array([450.0]), 0.15)))


def dog_howl(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (1.2, 3.0), (0.4, 1.0))
    env, idx, local = _segments(n, sr, starts, durs, 0.2)
    shape = np.sin(np.pi * np.clip(local / _per_segment(durs, idx), 0, 1))
    f0 = rng.uniform(380, 650) * (0.85 + 0.3 * shape) * (1 + 0.01 * np.sin(2 * np.pi * 5 * np.arange(n) / sr))
    return _norm(_harmonics(f0, sr, np.array([1.0, 0.35, 0.15, 0.05]), rng.uniform(0, 6, 4)) * env)


def cat_meow(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.45, 1.0), (0.4, 1.5))
    env, idx, local = _segments(n, sr, starts, durs, 0.04)
    u = np.clip(local / _per_segment(durs, idx), 0, 1)
    f0 = rng.uniform(480, 800) * (0.85 + 0.3 * np.sin(np.pi * u))
    x = _harmonics(f0, sr, np.arange(1, 9, dtype=F32) ** -0.9, rng.uniform(0, 6, 8)) * env
    # "m-e-ow": the formants open, then close again
    formants = np.stack([700 + 500 * np.sin(np.pi * u), 1600 + 900 * np.sin(np.pi * u), 3200 + 0 * u], axis=1)
    return _norm(_vocal_tract(x, sr, formants, floor=0.08))


def cat_purr(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    rate = rng.uniform(22, 30)
    t = np.arange(n) / sr
    pulses = (0.5 + 0.5 * np.cos(2 * np.pi * rate * t)) ** 6
    src = _norm(_harmonics(np.full(n, rate), sr, np.ones(40) / np.sqrt(np.arange(1, 41)))) + shaped_noise(
        rng, n, sr, band(50, 900, 2.0)
    )
    cycle = rng.uniform(2.0, 3.0)
    breath = 0.55 + 0.45 * np.abs(np.sin(np.pi * t / cycle + rng.uniform(0, np.pi)))
    return _norm(_filt(src * pulses, sr, band(30, 1200, 2.0)) * breath)


def cow_moo(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (1.2, 2.5), (0.5, 1.5))
    env, idx, local = _segments(n, sr, starts, durs, 0.15)
    u = np.clip(local / _per_segment(durs, idx), 0, 1)
    f0 = rng.uniform(95, 160) * (1.0 + 0.25 * np.sin(np.pi * u**0.7))
    x = _harmonics(f0, sr, np.arange(1, 31, dtype=F32) ** -0.8, rng.uniform(0, 6, 30)) * env
    formants = np.stack([300 + 400 * np.sin(np.pi * u), 800 + 400 * np.sin(np.pi * u), 2200 + 0 * u], axis=1)
    return _norm(_vocal_tract(x, sr, formants, floor=0.04))


def rooster_crow(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    start = rng.uniform(0.1, max(0.2, n / sr - 2.6))
    durs = np.array([0.18, 0.15, 0.2, 0.9]) * rng.uniform(0.85, 1.2)
    starts = start + np.concatenate([[0.0], np.cumsum(durs + 0.04)[:-1]])
    env, idx, local = _segments(n, sr, starts, durs, 0.02)
    pitch = np.array([1.0, 1.15, 1.25, 1.1]) * rng.uniform(450, 700)
    f0 = _per_segment(pitch, idx) * (1 - 0.15 * np.clip(local / 0.9, 0, 1) * (idx == 3))
    x = _harmonics(f0, sr, np.arange(1, 13, dtype=F32) ** -0.5, rng.uniform(0, 6, 12))
    rough = 1.0 + 0.4 * np.sin(2 * np.pi * rng.uniform(60, 90) * np.arange(n) / sr)
    return _norm(
        _filt(x * rough * env, sr, _peaks(np.array([1800.0, 3000.0]), np.array([500.0, 600.0]), 0.2))
    )


def sheep_bleat(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.45, 1.0), (0.4, 1.5))
    env, idx, local = _segments(n, sr, starts, durs, 0.03)
    t = np.arange(n) / sr
    quaver = 1.0 + 0.06 * np.sin(2 * np.pi * rng.uniform(8, 13) * t)
    f0 = rng.uniform(240, 420) * quaver
    trem = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(8, 13) * t)
    x = _harmonics(f0, sr, np.arange(1, 16, dtype=F32) ** -0.8, rng.uniform(0, 6, 15)) * env * trem
    return _norm(
        _filt(x, sr, _peaks(np.array([800.0, 1700.0, 2800.0]), np.array([150.0, 200.0, 300.0]), 0.05))
    )


def chicken_cluck(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.04, 0.09), (0.12, 0.45))
    env, idx, local = _segments(n, sr, starts, durs, 0.006)
    f0 = rng.uniform(250, 420) * (1 + 0.3 * np.exp(-local / 0.02))
    x = _harmonics(f0, sr, np.arange(1, 16, dtype=F32) ** -0.6, rng.uniform(0, 6, 15)) * env
    return _norm(
        _filt(x, sr, _peaks(np.array([rng.uniform(1000, 1600), 2800.0]), np.array([300.0, 400.0]), 0.1))
    )


def horse_neigh(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    start = rng.uniform(0.1, max(0.2, n / sr - 2.2))
    d = rng.uniform(1.2, 1.9)
    env, idx, local = _segments(n, sr, np.array([start]), np.array([d]), 0.05)
    u = np.clip(local / d, 0, 1)
    t = np.arange(n) / sr
    f0 = rng.uniform(900, 1300) * (1 - 0.6 * u) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(10, 16) * t))
    x = _harmonics(np.maximum(f0, 200), sr, np.array([1.0, 0.6, 0.35, 0.2, 0.1]), rng.uniform(0, 6, 5)) * env
    snort = _segments(n, sr, np.array([start + d + 0.2]), np.array([0.35]), 0.02)[0]
    return _norm(_norm(x) + 0.8 * shaped_noise(rng, n, sr, band(150, 1500, 1.5)) * snort)


def pig_grunt(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.12, 0.3), (0.15, 0.8))
    env, idx, _ = _segments(n, sr, starts, durs, 0.02)
    f0 = _contour(rng, n, sr, 80, 140, 0.1)
    x = _norm(_harmonics(f0, sr, np.arange(1, 25, dtype=F32) ** -0.7, rng.uniform(0, 6, 24)))
    rough = shaped_noise(rng, n, sr, band(100, 1200, 1.5))
    return _norm(
        _filt((x + 0.7 * rough) * env, sr, _peaks(np.array([500.0, 1100.0]), np.array([200.0, 300.0]), 0.1))
    )


def _wild(group_kinds: tuple[str, ...]) -> Renderer:
    """A wild animal of a coarse kind: one or two call types drawn afresh (``draw_call``) from the call
    kinds of ``group_kinds``, called 2-12 times like a focal recording. The voice belongs to no species."""

    def render(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
        cts = [draw_call(rng, group_kinds[int(rng.integers(0, len(group_kinds)))]) for _ in range(2)]
        n_types = int(rng.integers(1, 3))
        x = np.zeros(n, dtype=F32)
        t, energy = float(rng.uniform(0.05, 0.5)), 0.0
        for _ in range(12):  # a handful of calls, each rendered vectorised
            ct = cts[int(rng.integers(0, n_types))]
            call = synth_call(ct, sr, rng, f_scale=1 + rng.normal(0, 0.02), tempo=1 + rng.normal(0, 0.08))
            gain = 10 ** (rng.uniform(-3, 3) / 20)
            i0 = int(round(t * sr))
            seg = call[: max(0, n - i0)]
            x[i0 : i0 + len(seg)] += F32(gain) * seg
            energy += gain**2 * len(seg)
            t += len(call) / sr + float(rng.uniform(0.08, 0.5))
            if t > n / sr - 0.1:
                break
        # nominal level (calls are RMS 1 over their span): a call above the band limit stays quiet
        return x * F32(1.0 / np.sqrt(energy / n + 1e-12))

    return render


# --------------------------------------------------------------------------------------------------- Music


def _notes(
    rng: np.random.Generator, n: int, sr: int, beat: tuple[float, float], lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """A melody on a major scale: ``(f [n] Hz, local [n] s since the note's onset, beat_s)``, MIDI notes
    between ``lo`` and ``hi``."""
    b = rng.uniform(*beat)
    k = int(np.ceil(n / sr / b)) + 1
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    root = int(rng.integers(lo, max(lo + 1, hi - 12)))
    notes = root + scale[rng.integers(0, 7, size=k)] + 12 * (rng.random(k) < 0.3)
    t = np.arange(n) / sr
    i = np.minimum((t / b).astype(int), k - 1)
    return 440.0 * 2.0 ** ((notes[i] - 69) / 12.0), (t - i * b).astype(F32), b


def piano(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    f, local, b = _notes(rng, n, sr, (0.18, 0.5), 48, 84)
    h = np.arange(1, 13, dtype=F32)[:, None]
    amps = (
        (h**-1.2)
        * np.exp(-local[None, :] * (0.8 + 0.5 * h) / rng.uniform(0.6, 1.2))
        * (1 - np.exp(-local / 0.002))
    )
    return _norm(_harmonics(f, sr, amps))


def guitar(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    period = rng.uniform(0.45, 1.0)
    root = int(rng.integers(40, 52))
    x = np.zeros(n, dtype=F32)
    t = np.arange(n) / sr
    pluck = rng.uniform(0.1, 0.3)
    h = np.arange(1, 16, dtype=F32)[:, None]
    body = np.abs(np.sin(np.pi * h * pluck)) / h
    for s, step in enumerate((0, 7, 12, 16, 19)):  # strum a chord on five strings
        delay = s * rng.uniform(0.008, 0.02)
        local = ((t - delay) % period).astype(F32)
        f = np.full(n, 440.0 * 2.0 ** ((root + step - 69) / 12.0))
        amps = body * np.exp(-local[None, :] * (1 + 0.4 * h) / 0.35) * (1 - np.exp(-local / 0.001))
        x += _harmonics(f, sr, amps * (t >= delay))
    return _norm(x)


def flute(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    f, local, b = _notes(rng, n, sr, (0.3, 0.8), 67, 91)
    t = np.arange(n) / sr
    f = f * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    env = (1 - np.exp(-local / 0.04)) * (1 - 0.3 * np.exp(-(b - local) / 0.02))
    tone = _harmonics(f, sr, np.array([1.0, 0.3, 0.12, 0.05])) * env
    breath = _filt(shaped_noise(rng, n, sr, band(500, 7000, 1.0)), sr, band(800, 4000, 1.0))
    return _norm(_norm(tone) + 0.25 * breath)


def violin(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    f, local, b = _notes(rng, n, sr, (0.4, 1.2), 55, 90)
    t = np.arange(n) / sr
    f = f * (1 + 0.015 * np.sin(2 * np.pi * rng.uniform(5.5, 7) * t) * np.clip(local / 0.2, 0, 1))
    env = (1 - np.exp(-local / 0.06)) * (0.8 + 0.2 * np.sin(np.pi * np.clip(local / b, 0, 1)))
    saw = _harmonics(f, sr, 1.0 / np.arange(1, 21, dtype=F32)) * env
    return _norm(
        _filt(saw, sr, _peaks(np.array([290.0, 460.0, 2500.0]), np.array([60.0, 100.0, 600.0]), 0.3))
    )


def organ(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    period = rng.uniform(1.0, 2.2)
    k = int(np.ceil(n / sr / period)) + 1
    roots = int(rng.integers(41, 60)) + rng.choice([0, 5, 7, -5], size=k)
    t = np.arange(n) / sr
    i = np.minimum((t / period).astype(int), k - 1)
    draw = np.zeros(16, dtype=F32)
    draw[[0, 1, 2, 3, 5, 7]] = rng.uniform(0.3, 1.0, size=6)  # drawbars: 8', 4', 2 2/3', 2', 1 3/5', 1'
    x = np.zeros(n, dtype=F32)
    for step in (0, 4, 7):  # a sustained triad
        x += _harmonics(440.0 * 2.0 ** ((roots[i] + step - 69) / 12.0), sr, draw)
    return _norm(x)


def drum_kit(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    beat = 60.0 / rng.uniform(85, 160)
    k = int(n / sr / beat) + 2
    t0 = rng.uniform(0, 0.2)
    kicks = t0 + beat * np.arange(0, k, 2)
    snares = t0 + beat * np.arange(1, k, 2)
    hats = t0 + beat / 2 * np.arange(2 * k)
    kick = resonators(_hits(n, sr, kicks), sr, np.array([rng.uniform(50, 80)]), np.array([0.12]))
    snare = shaped_noise(rng, n, sr, band(1000, 5000, 1.5)) * _decay(_hits(n, sr, snares), sr, 0.06)
    snare += 0.3 * resonators(_hits(n, sr, snares), sr, np.array([190.0]), np.array([0.05]))
    hat = shaped_noise(rng, n, sr, band(0.38 * sr, 0.45 * sr, 3.0)) * _decay(
        _hits(n, sr, hats, 0.5), sr, 0.02
    )
    return _norm(_norm(kick) + 0.7 * _norm(snare) + 0.35 * _norm(hat))


def bell(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    period = rng.uniform(1.0, 2.5)
    hits = _hits(n, sr, np.arange(0, n / sr, period) + rng.uniform(0, 0.3))
    f0 = rng.uniform(250, 1000)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.52, 3.01])
    modes = np.minimum(f0 * ratios, NYQUIST_MARGIN * sr * 0.98)
    return _norm(resonators(hits, sr, modes, rng.uniform(0.4, 1.5) / np.sqrt(ratios)))


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


def electronic_music(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    beat = 60.0 / rng.uniform(118, 140)
    t = np.arange(n) / sr
    step = beat / 4  # sixteenth-note arpeggio
    k = int(n / sr / step) + 1
    root = int(rng.integers(45, 60))
    pattern = np.array([0, 7, 12, 15, 12, 7, 3, 7])[rng.permutation(8)]
    i = np.minimum((t / step).astype(int), k - 1)
    f = 440.0 * 2.0 ** ((root + pattern[i % 8] - 69) / 12.0)
    local = (t - i * step).astype(F32)
    square = _harmonics(f, sr, np.array([1.0 / h if h % 2 else 0.0 for h in range(1, 16)])) * np.exp(
        -local / 0.08
    )
    kick = resonators(_hits(n, sr, np.arange(0, n / sr, beat)), sr, np.array([55.0]), np.array([0.15]))
    return _norm(_norm(square) + 0.8 * _norm(kick))


# ------------------------------------------------------------------------------------------ Natural sounds


def thunder(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    strike = rng.uniform(0.0, 0.4) * n / sr
    t = np.arange(n) / sr
    after = np.clip(t - strike, 0, None)
    env = (t >= strike) * (np.exp(-after / rng.uniform(1.0, 2.5)) * smooth_envelope(rng, n, sr, 3.0, 0.6))
    crack = shaped_noise(rng, n, sr, band(200, 4000, 1.0)) * np.exp(-after / 0.08) * (t >= strike)
    rumble = shaped_noise(rng, n, sr, lambda f: band(20, 250, 2.0)(f) * pink(f))
    return _norm(_norm(rumble * env) + 0.6 * crack + 0.02 * rumble)


def ocean_waves(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    period = rng.uniform(4.0, 8.0)
    ph = (t / period + rng.random()) % 1.0
    surge = np.where(ph < 0.3, ph / 0.3, np.exp(-(ph - 0.3) / 0.25)) ** 2
    wash = shaped_noise(rng, n, sr, lambda f: band(80, 5000, 1.0)(f) * pink(f))
    return _norm(wash * (0.15 + surge))


def fire_crackle(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    roar = shaped_noise(rng, n, sr, band(40, 400, 2.0)) * smooth_envelope(rng, n, sr, 2.0, 0.4)
    pops = impulses(rng, n, sr, rng.uniform(8, 30), 0.0005)
    crackle = resonators(pops, sr, rng.uniform(1500, 5000, size=3), np.array([0.003, 0.004, 0.002]))
    return _norm(0.4 * _norm(roar) + _norm(crackle))


# -------------------------------------------------------------------------------------- Sounds of things


def engine(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    f0 = rng.uniform(25, 60) * smooth_envelope(rng, n, sr, 0.5, 0.1).astype(np.float64)
    amps = rng.uniform(0.2, 1.0, size=16) / np.arange(1, 17) ** 0.5
    x = _harmonics(f0, sr, amps, rng.uniform(0, 2 * np.pi, 16))
    rumble = shaped_noise(rng, n, sr, band(30, 800, 2))
    return _norm(_norm(x) + 0.5 * rumble)


def traffic(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    x = shaped_noise(rng, n, sr, lambda f: band(40, 2500, 1.5)(f) * pink(f))
    t = np.arange(n) / sr
    passes = rng.uniform(0, n / sr, size=int(rng.integers(1, 4)))
    env = 0.3 + sum(np.exp(-0.5 * ((t - p) / rng.uniform(0.5, 1.5)) ** 2) for p in passes)
    return _norm(x * env)


def car_horn(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.25, 1.4), (0.2, 1.2))
    env = _segments(n, sr, starts, durs, 0.01)[0]
    f1 = rng.uniform(380, 460)
    x = _harmonics(np.full(n, f1), sr, np.ones(12)) + _harmonics(np.full(n, f1 * 1.26), sr, np.ones(10))
    return _norm(_filt(x * env, sr, band(300, 3500, 1.5)))


def train(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    rate = rng.uniform(1.0, 3.0)  # bogie pairs passing a rail joint
    k = int(n / sr * rate) + 1
    times = np.concatenate([np.arange(k) / rate, np.arange(k) / rate + rng.uniform(0.08, 0.15)])
    clack = resonators(
        _hits(n, sr, times),
        sr,
        np.array([rng.uniform(300, 600), rng.uniform(1500, 2500)]),
        np.array([0.02, 0.01]),
    )
    rumble = shaped_noise(rng, n, sr, lambda f: band(30, 600, 2.0)(f) * pink(f))
    squeal = _harmonics(np.full(n, rng.uniform(2500, 4000)), sr, np.array([1.0])) * np.clip(
        smooth_envelope(rng, n, sr, 0.5, 1.0) - 1.3, 0, None
    )
    return _norm(_norm(rumble) + 0.8 * _norm(clack) + 0.5 * squeal)


def aircraft(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    closest = rng.uniform(0.2, 0.8) * n / sr
    near = np.exp(-0.5 * ((t - closest) / rng.uniform(1.5, 3.0)) ** 2)
    roar = shaped_noise(rng, n, sr, lambda f: band(60, 3000, 1.0)(f) * pink(f))
    whine = _harmonics(rng.uniform(1500, 3000) * (1.03 - 0.06 * (t > closest)), sr, np.array([1.0, 0.3]))
    return _norm((_norm(roar) + 0.15 * whine) * (0.2 + near))


def helicopter(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    rate = rng.uniform(14, 26)  # blade passes per second
    t = np.arange(n) / sr
    slap = (0.5 + 0.5 * np.cos(2 * np.pi * rate * t)) ** 12
    body = shaped_noise(rng, n, sr, band(80, 1500, 1.5))
    turbine = _harmonics(np.full(n, rng.uniform(3000, 5000)), sr, np.array([1.0]))
    return _norm(_norm(body * slap) + 0.3 * _norm(body) + 0.08 * turbine)


def siren(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    lo, hi = rng.uniform(500, 800), rng.uniform(1100, 1600)
    period = rng.uniform(0.3, 4.0)
    saw = (t / period + rng.random()) % 1.0
    shape = saw if rng.random() < 0.5 else 0.5 - 0.5 * np.cos(2 * np.pi * saw)
    f = lo + (hi - lo) * shape
    return _norm(_harmonics(f, sr, np.array([1.0, 0.5, 0.3]), np.zeros(3)))


def alarm_beep(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f = rng.uniform(1800, 4000) * np.ones(n)
    gate = ((t * rng.uniform(1.0, 5.0)) % 1.0) < rng.uniform(0.3, 0.6)
    return _norm(_harmonics(f, sr, np.array([1.0, 0.0, 0.33]), np.zeros(3)) * gate + 1e-3)


def telephone_ring(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    on, off = rng.uniform(1.0, 1.6), rng.uniform(1.2, 2.0)
    k = int(n / sr / (on + off)) + 2
    starts = rng.uniform(0, 0.5) + np.arange(k) * (on + off)
    gate = _segments(n, sr, starts, np.full(k, on), 0.005)[0]
    hammer = (np.sin(2 * np.pi * rng.uniform(18, 25) * np.arange(n) / sr) > 0).astype(F32)
    modes = rng.uniform(1100, 1300) * np.array([1.0, 1.48, 2.1, 2.75])
    ring = resonators(
        _hits(n, sr, np.flatnonzero(np.diff(hammer) > 0) / sr),
        sr,
        np.minimum(modes, 0.44 * sr),
        np.full(4, 0.05),
    )
    return _norm(ring * gate)


def doorbell(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    first = rng.uniform(0.1, 0.8)
    gap, again = rng.uniform(0.4, 0.8), rng.uniform(2.0, 2.6)
    high = rng.uniform(650, 800)
    out = np.zeros(n, dtype=F32)
    for when, f in ((first, high), (first + gap, high * 2 ** (-4 / 12))):  # "ding", "dong", twice
        out += resonators(
            _hits(n, sr, np.array([when, when + again])),
            sr,
            np.array([f, 2.0 * f, 3.0 * f]),
            np.array([1.0, 0.5, 0.25]),
        )
    return _norm(out)


def buzzer(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.6, 2.0), (0.2, 0.6))
    env = _segments(n, sr, starts, durs, 0.005)[0]
    amps = np.array([1.0 / h if h % 2 else 0.0 for h in range(1, 40)])
    return _norm(_harmonics(np.full(n, rng.uniform(140, 240)), sr, amps) * env)


def knock(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    drive = impulses(rng, n, sr, rng.uniform(1.0, 4.0), 0.0005)
    modes = rng.uniform(150, 2500, size=3)
    return _norm(resonators(drive, sr, modes, rng.uniform(0.02, 0.08, size=3)))


def dishes(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    drive = impulses(rng, n, sr, rng.uniform(5.0, 12.0), 0.0003)
    modes = np.minimum(rng.uniform(2000, 6500, size=4), 0.44 * sr)
    clatter = shaped_noise(rng, n, sr, band(1500, 6000, 1.5)) * _decay(drive, sr, 0.01)
    return _norm(_norm(resonators(drive, sr, modes, rng.uniform(0.08, 0.25, size=4))) + 0.3 * _norm(clatter))


def vacuum_cleaner(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    f0 = rng.uniform(150, 320) * smooth_envelope(rng, n, sr, 0.3, 0.03).astype(np.float64)
    whine = _harmonics(f0, sr, np.arange(1, 9, dtype=F32) ** -1.0)
    air = shaped_noise(rng, n, sr, band(500, 7000, 1.0))
    return _norm(0.6 * _norm(whine) + air * smooth_envelope(rng, n, sr, 0.5, 0.3))


def typing(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.0, 0.0), (0.07, 0.25), (0.0, 0.3))
    hits = _hits(n, sr, starts, rng.uniform(0.5, 1.0, size=len(starts)))
    click = resonators(
        hits, sr, np.minimum(rng.uniform(2000, 5000, size=2), 0.44 * sr), np.array([0.006, 0.004])
    )
    thud = resonators(hits, sr, np.array([rng.uniform(300, 600)]), np.array([0.01]))
    return _norm(_norm(click) + 0.4 * _norm(thud))


def water_tap(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    x = shaped_noise(rng, n, sr, band(rng.uniform(800, 1500), 7000, 1.5))
    splash = smooth_envelope(rng, n, sr, 40.0, 0.5)
    return _norm(x * splash)


def clock_tick(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    period = rng.uniform(0.5, 1.0)
    times = np.arange(0, n / sr, period) + rng.uniform(0, 0.3)
    amps = np.where(np.arange(len(times)) % 2 == 0, 1.0, 0.7)  # tick, tock
    return _norm(
        resonators(
            _hits(n, sr, times, amps),
            sr,
            np.minimum(rng.uniform(2500, 5000, size=2), 0.44 * sr),
            np.array([0.004, 0.003]),
        )
    )


def glass_break(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    start = rng.uniform(0.1, 1.5)
    t = np.arange(n) / sr
    after = np.clip(t - start, 0, None)
    density = np.exp(-after / rng.uniform(0.4, 1.0)) * (t >= start)
    shards = impulses(rng, n, sr, 300.0, 0.0002) * density
    modes = np.minimum(rng.uniform(2500, 7000, size=5), 0.44 * sr)
    crash = shaped_noise(rng, n, sr, band(1500, 8000, 1.0)) * np.exp(-after / 0.05) * (t >= start)
    return _norm(_norm(resonators(shards, sr, modes, np.full(5, 0.03))) + 0.5 * crash)


def electrical_hum(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    f = (50.0 if rng.random() < 0.5 else 60.0) * np.ones(n)
    amps = rng.uniform(0.1, 1.0, size=12) * (np.arange(1, 13) % 2 + 0.3)
    buzz = shaped_noise(rng, n, sr, pink)
    return _norm(_norm(_harmonics(f, sr, amps, rng.uniform(0, 6, 12))) + 0.05 * buzz)


def drill(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    starts, durs = _sequence(rng, n / sr, (0.8, 2.5), (0.2, 0.8))
    env = _segments(n, sr, starts, durs, 0.08)[0]
    f0 = rng.uniform(250, 500) * (0.9 + 0.1 * env) * smooth_envelope(rng, n, sr, 2.0, 0.03)
    whine = _harmonics(f0, sr, np.arange(1, 13, dtype=F32) ** -0.6)
    grind = shaped_noise(rng, n, sr, band(1000, 6000, 1.5))
    return _norm((_norm(whine) + 0.4 * grind) * env)


def hand_saw(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    rate = rng.uniform(1.2, 2.5)  # strokes per second
    stroke = np.abs(np.sin(np.pi * rate * t + rng.uniform(0, np.pi))) ** 1.5
    teeth = 1.0 + 0.6 * np.sin(2 * np.pi * rng.uniform(80, 200) * t)
    rasp = shaped_noise(
        rng,
        n,
        sr,
        _peaks(np.array([rng.uniform(2500, 4000), rng.uniform(5000, 6500)]), np.array([700.0, 900.0]), 0.1),
    )
    return _norm(rasp * stroke * teeth)


def hammer(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    period = rng.uniform(0.35, 0.9)
    grid = np.arange(0, n / sr, period)
    times = grid + rng.normal(0, 0.02, size=len(grid)) + rng.uniform(0, 0.3)
    hits = _hits(n, sr, times, rng.uniform(0.7, 1.0, size=len(times)))
    ring = resonators(
        hits, sr, np.minimum(rng.uniform(1200, 3500, size=3), 0.44 * sr), rng.uniform(0.1, 0.3, size=3)
    )
    thud = resonators(hits, sr, np.array([rng.uniform(100, 200)]), np.array([0.03]))
    return _norm(_norm(ring) + 0.6 * _norm(thud))


def fan(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    blade = rng.uniform(20, 60)
    cut = rng.uniform(1500, 3500)
    hum = _harmonics(np.full(n, blade), sr, np.array([1.0, 0.5, 0.3, 0.2]))
    air = shaped_noise(rng, n, sr, lambda f: band(50, cut, 2.0)(f) * pink(f))
    return _norm(0.4 * _norm(hum) + air)


# ----------------------------------------------------------------------------------------------- ontology

GENERAL_ONTOLOGY: tuple[tuple[str, str, str, Renderer], ...] = (
    # (class, parent, branch, renderer)
    ("speech", "Human voice", "Human sounds", speech),
    ("shout", "Human voice", "Human sounds", shout),
    ("whisper", "Human voice", "Human sounds", whisper),
    ("singing", "Human voice", "Human sounds", singing),
    ("laughter", "Human voice", "Human sounds", laughter),
    ("baby_cry", "Human voice", "Human sounds", baby_cry),
    ("speech_babble", "Human group actions", "Human sounds", babble),
    ("applause", "Human group actions", "Human sounds", applause),
    ("cheering", "Human group actions", "Human sounds", cheering),
    ("footsteps", "Human body", "Human sounds", footsteps),
    ("cough", "Human body", "Human sounds", cough),
    ("heartbeat", "Human body", "Human sounds", heartbeat),
    ("breathing", "Human body", "Human sounds", breathing),
    ("dog_bark", "Domestic animals", "Animal", dog_bark),
    ("dog_howl", "Domestic animals", "Animal", dog_howl),
    ("cat_meow", "Domestic animals", "Animal", cat_meow),
    ("cat_purr", "Domestic animals", "Animal", cat_purr),
    ("cow_moo", "Livestock", "Animal", cow_moo),
    ("rooster_crow", "Livestock", "Animal", rooster_crow),
    ("sheep_bleat", "Livestock", "Animal", sheep_bleat),
    ("chicken_cluck", "Livestock", "Animal", chicken_cluck),
    ("horse_neigh", "Livestock", "Animal", horse_neigh),
    ("pig_grunt", "Livestock", "Animal", pig_grunt),
    ("bird", "Wild animals", "Animal", _wild(GROUP_KINDS["songbirds"] + GROUP_KINDS["owls_doves"])),
    ("frog", "Wild animals", "Animal", _wild(GROUP_KINDS["frogs"])),
    ("insect", "Wild animals", "Animal", _wild(GROUP_KINDS["insects"])),
    ("whale", "Wild animals", "Animal", _wild(GROUP_KINDS["cetaceans"])),
    ("piano", "Musical instrument", "Music", piano),
    ("guitar", "Musical instrument", "Music", guitar),
    ("flute", "Musical instrument", "Music", flute),
    ("violin", "Musical instrument", "Music", violin),
    ("organ", "Musical instrument", "Music", organ),
    ("drum_kit", "Musical instrument", "Music", drum_kit),
    ("bell", "Musical instrument", "Music", bell),
    ("music", "Music genre", "Music", music),
    ("electronic_music", "Music genre", "Music", electronic_music),
    ("wind", "Weather", "Natural sounds", lambda rng, n, sr: background("wind", rng, n, sr)),
    ("rain", "Weather", "Natural sounds", lambda rng, n, sr: background("rain", rng, n, sr)),
    ("thunder", "Weather", "Natural sounds", thunder),
    ("water_stream", "Water", "Natural sounds", lambda rng, n, sr: background("stream", rng, n, sr)),
    ("ocean_waves", "Water", "Natural sounds", ocean_waves),
    ("fire_crackle", "Fire", "Natural sounds", fire_crackle),
    ("engine", "Vehicle", "Sounds of things", engine),
    ("traffic", "Vehicle", "Sounds of things", traffic),
    ("car_horn", "Vehicle", "Sounds of things", car_horn),
    ("train", "Vehicle", "Sounds of things", train),
    ("aircraft", "Vehicle", "Sounds of things", aircraft),
    ("helicopter", "Vehicle", "Sounds of things", helicopter),
    ("siren", "Alarm", "Sounds of things", siren),
    ("alarm_beep", "Alarm", "Sounds of things", alarm_beep),
    ("telephone_ring", "Alarm", "Sounds of things", telephone_ring),
    ("doorbell", "Alarm", "Sounds of things", doorbell),
    ("buzzer", "Alarm", "Sounds of things", buzzer),
    ("knock", "Domestic sounds", "Sounds of things", knock),
    ("dishes", "Domestic sounds", "Sounds of things", dishes),
    ("vacuum_cleaner", "Domestic sounds", "Sounds of things", vacuum_cleaner),
    ("typing", "Domestic sounds", "Sounds of things", typing),
    ("water_tap", "Domestic sounds", "Sounds of things", water_tap),
    ("clock_tick", "Domestic sounds", "Sounds of things", clock_tick),
    ("glass_break", "Domestic sounds", "Sounds of things", glass_break),
    ("electrical_hum", "Mechanisms and tools", "Sounds of things", electrical_hum),
    ("drill", "Mechanisms and tools", "Sounds of things", drill),
    ("hand_saw", "Mechanisms and tools", "Sounds of things", hand_saw),
    ("hammer", "Mechanisms and tools", "Sounds of things", hammer),
    ("fan", "Mechanisms and tools", "Sounds of things", fan),
)
"""The general pool's classes in ontology order: ``(class, parent, branch, renderer)``."""

GENERAL_CLASSES: dict[str, Renderer] = {c: r for c, _, _, r in GENERAL_ONTOLOGY}
"""Class name -> renderer ``(rng, n_samples, sr) -> [n] float32`` (leaf classes, ontology order)."""

LEVELS: tuple[str, ...] = ("class", "parent", "branch")
"""Levels at which a general label can be read (:func:`general_label_at`)."""


def general_ontology() -> pl.DataFrame:
    """The general pool's label hierarchy: one row per leaf class with its ``parent`` and ``branch``
    (strings), in ontology order."""
    return pl.DataFrame(
        {
            "class": [c for c, _, _, _ in GENERAL_ONTOLOGY],
            "parent": [p for _, p, _, _ in GENERAL_ONTOLOGY],
            "branch": [b for _, _, b, _ in GENERAL_ONTOLOGY],
        }
    )


_LOOKUP = {c: {"class": c, "parent": p, "branch": b} for c, p, b, _ in GENERAL_ONTOLOGY}


def general_label_at(label: str, level: Literal["class", "parent", "branch"]) -> str:
    """The ancestor of leaf class ``label`` at ``level`` (``class`` returns the label itself), e.g.
    ``general_label_at("dog_bark", "parent") == "Domestic animals"``."""
    if level not in LEVELS:
        raise ConfigError(expected_found("ontology level", f"one of {LEVELS}", repr(level), "Pick one."))
    if label not in _LOOKUP:
        raise ConfigError(
            expected_found(
                "general-audio class",
                f"a leaf class of general_ontology() (e.g. {GENERAL_ONTOLOGY[0][0]!r})",
                repr(label),
                "Use a label of the world's general pool.",
            )
        )
    return _LOOKUP[label][level]
