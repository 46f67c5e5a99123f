"""Vectorised signal building blocks of the synthetic world (numpy; no per-sample Python loops).

All signals are float32 arrays ``[n]`` at ``sr`` Hz; frequencies in Hz, times in seconds, levels in dB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy.signal import lfilter

NYQUIST_MARGIN = 0.45
"""Partials above ``NYQUIST_MARGIN * sr`` are faded out (no aliasing: a 12 kHz call is absent at 16 kHz)."""


@dataclass(frozen=True)
class CallType:
    """One call type of a species' repertoire: the recipe of a call, before individual and rendition shifts.

    kind: descriptive name (``trill``, ``hoot``...). dur_s: duration, s. f_start/f_end: fundamental at the
    start and end, Hz (log sweep between them). fm_rate (Hz) and fm_depth (fraction): frequency modulation,
    sinusoidal or, when ``fm_saw``, a downward sweep repeated ``fm_rate`` times a second (trills, bat
    pulses). n_harm, harm_decay: partials ``h = 1..n_harm`` with amplitude ``harm_decay**(h-1)``.
    pulse_rate (Hz), pulse_duty (0..1): amplitude gating into pulses (0 = continuous).
    noise: 0..1, share of a broadband noise carrier (clicks, buzzes).
    """

    kind: str
    dur_s: float
    f_start: float
    f_end: float
    fm_rate: float = 0.0
    fm_depth: float = 0.0
    fm_saw: bool = False
    n_harm: int = 1
    harm_decay: float = 0.5
    pulse_rate: float = 0.0
    pulse_duty: float = 0.5
    noise: float = 0.0

    def band_hz(self, f_scale: float = 1.0) -> tuple[float, float]:
        """Approximate (low, high) band of the call in Hz, before the Nyquist fade (a noise carrier makes
        the call broadband: high is infinite)."""
        if self.noise > 0:
            return 0.0, float("inf")
        lo = min(self.f_start, self.f_end) * f_scale * (1 - self.fm_depth)
        hi = max(self.f_start, self.f_end) * f_scale * (1 + self.fm_depth) * max(1, self.n_harm_effective())
        side = self.pulse_rate * 2
        return max(0.0, lo - side), hi + side

    def n_harm_effective(self) -> int:
        """Partials above -20 dB relative to the first."""
        if self.n_harm <= 1 or self.harm_decay <= 0:
            return 1
        return int(min(self.n_harm, 1 + np.floor(np.log(0.1) / np.log(max(self.harm_decay, 1e-3)))))


def synth_call(
    ct: CallType,
    sr: int,
    rng: np.random.Generator,
    *,
    f_scale: float = 1.0,
    tempo: float = 1.0,
    harm_gain: np.ndarray | None = None,
) -> np.ndarray:
    """Render one call ``[n]`` float32 (RMS 1 over its span) at ``sr`` Hz.

    ``f_scale`` multiplies every frequency, ``tempo`` stretches durations (>1 slower) and divides rates;
    ``harm_gain`` ``[>= n_harm]`` scales partials (an individual's timbre). All random draws (start phase,
    noise carrier) come from ``rng`` and their number does not depend on ``sr``.
    """
    dur = max(ct.dur_s * tempo, 0.004)
    n = max(int(round(dur * sr)), 8)
    phi0 = rng.uniform(0, 2 * np.pi)
    noise_seed = int(rng.integers(0, 2**31))
    f32 = np.float32
    t = np.arange(n, dtype=f32) / f32(sr)
    f = f32(ct.f_start * f_scale) * np.exp(t * f32(np.log(ct.f_end / ct.f_start) / dur))
    if ct.fm_rate > 0 and ct.fm_depth > 0:
        rate = f32(ct.fm_rate / tempo)
        if ct.fm_saw:
            f *= 1.0 + f32(ct.fm_depth) * (1.0 - 2.0 * ((t * rate) % f32(1.0)))
        else:
            f *= 1.0 + f32(ct.fm_depth) * np.sin(f32(2 * np.pi) * rate * t + f32(phi0))
    # phase accumulates in float64 (long calls), partials are computed in float32
    phase = np.mod(np.cumsum(f, dtype=np.float64) * (2 * np.pi / sr), 2 * np.pi).astype(f32)
    h = np.arange(1, ct.n_harm + 1, dtype=f32)[:, None]
    amps = f32(ct.harm_decay) ** (h - 1)
    if harm_gain is not None:
        amps = amps * np.asarray(harm_gain[: ct.n_harm], dtype=f32)[:, None]
    limit = NYQUIST_MARGIN * sr
    if ct.n_harm == 1:
        x = amps[0, 0] * np.sin(phase)
        if float(f.max()) > 0.95 * limit:  # fade the partial as it approaches the band limit
            x *= np.clip((f32(limit) - f) / f32(0.05 * limit), 0.0, 1.0)
    else:
        partials = np.sin(h * phase[None, :])  # [H, n]
        if ct.n_harm * float(f.max()) > 0.95 * limit:
            partials *= np.clip((f32(limit) - h * f[None, :]) / f32(0.05 * limit), 0.0, 1.0)
        x = (amps * partials).sum(axis=0)
    if ct.noise > 0:
        nz = np.random.default_rng(noise_seed).standard_normal(n, dtype=f32)
        x = f32(1 - ct.noise) * x + f32(ct.noise) * nz
    env = _edge_ramp(n, sr)
    if ct.pulse_rate > 0:
        ph = (t * f32(ct.pulse_rate / tempo)) % f32(1.0)
        duty = f32(ct.pulse_duty)
        env *= np.where(ph < duty, np.sin(f32(np.pi) * np.minimum(ph / duty, f32(1.0))) ** 2, f32(0.0))
    x *= env
    # Normalise by the RMS the call would have with no Nyquist fade, so that a call above the band limit
    # comes out (near) silent instead of amplified noise.
    carrier = (1 - ct.noise) ** 2 * 0.5 * float(np.sum(amps.astype(np.float64) ** 2)) + ct.noise**2
    ref = np.sqrt(carrier * float(np.mean(env.astype(np.float64) ** 2)) + 1e-12)
    return (x * f32(1.0 / ref)).astype(f32)


def _edge_ramp(n: int, sr: int) -> np.ndarray:
    """``[n]`` float32 ones with raised-cosine ramps (10 % of the call, at most 20 ms) at both ends."""
    r = max(2, min(int(0.1 * n), int(0.02 * sr)))
    env = np.ones(n, dtype=np.float32)
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(r) / r)).astype(np.float32)
    env[:r] = ramp
    env[-r:] = ramp[::-1]
    return env


def fast_len(n: int) -> int:
    return sfft.next_fast_len(n, real=True)


def shaped_noise(
    rng: np.random.Generator, n: int, sr: int, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Gaussian noise ``[n]`` float32 with amplitude spectrum ``gain(freqs_hz)``, scaled to RMS 1.

    The number of random draws depends on ``n`` (hence on ``sr``): noise differs across sample rates.
    """
    m = fast_len(n)
    k = m // 2 + 1
    spec = rng.standard_normal(k, dtype=np.float32) + 1j * rng.standard_normal(k, dtype=np.float32)
    freqs = np.fft.rfftfreq(m, 1.0 / sr).astype(np.float32)
    x = sfft.irfft(spec * gain(freqs), m)[:n].astype(np.float32)
    return x / (np.sqrt(np.mean(x * x)) + 1e-12)


def smooth_envelope(rng: np.random.Generator, n: int, sr: int, rate_hz: float, depth: float) -> np.ndarray:
    """A slowly varying positive envelope ``[n]`` (mean about 1): random knots ``rate_hz`` apart, linearly
    interpolated; ``depth`` 0..1 is the modulation depth."""
    n_knots = int(np.ceil(n / sr * rate_hz)) + 2
    knots = 1.0 + depth * (2 * rng.random(n_knots) - 1)
    pos = np.arange(n, dtype=np.float32) * (rate_hz / sr)
    return np.interp(pos, np.arange(n_knots), knots).astype(np.float32)


def pink(f: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(np.maximum(f, 20.0))


def band(lo: float, hi: float, order: float = 4.0) -> Callable[[np.ndarray], np.ndarray]:
    """Smooth band-pass amplitude response (Butterworth-like magnitude), Hz."""

    def g(f: np.ndarray) -> np.ndarray:
        fl = np.maximum(f, 1.0)
        return 1.0 / np.sqrt((1 + (lo / fl) ** (2 * order)) * (1 + (fl / hi) ** (2 * order)))

    return g


def impulses(rng: np.random.Generator, n: int, sr: int, rate_hz: float, decay_s: float) -> np.ndarray:
    """Poisson impulse train (``rate_hz``) with random amplitudes, each decaying exponentially
    (``decay_s``); float32 ``[n]``, a one-pole filter so no per-event loop."""
    count = rng.poisson(rate_hz * n / sr)
    x = np.zeros(n, dtype=np.float64)
    idx = rng.integers(0, n, size=count)
    np.add.at(x, idx, rng.exponential(1.0, size=count))
    a = np.exp(-1.0 / max(decay_s * sr, 1.0))
    return lfilter([1.0], [1.0, -a], x).astype(np.float32)


def resonators(x: np.ndarray, sr: int, freqs: np.ndarray, decays_s: np.ndarray) -> np.ndarray:
    """Sum of two-pole resonators (modes at ``freqs`` Hz ringing ``decays_s`` s) driven by ``x``."""
    out = np.zeros_like(x, dtype=np.float64)
    for f, d in zip(freqs, decays_s, strict=True):  # a handful of modes, each a C-level filter
        r = np.exp(-1.0 / (d * sr))
        w = 2 * np.pi * min(f, NYQUIST_MARGIN * sr) / sr
        out += lfilter([1.0 - r], [1.0, -2 * r * np.cos(w), r * r], x)
    return out.astype(np.float32)


# --- backgrounds -----------------------------------------------------------------------------------------


def background(kind: str, rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """One background type ``[n]`` float32 at RMS about 1: ``wind`` (< 500 Hz, gusty), ``rain`` (broadband,
    impulsive), ``stream`` (0.2-3 kHz, bubbling), ``insect_chorus`` (3-7 kHz pulsing tones), ``pink``."""
    if kind == "wind":
        x = shaped_noise(rng, n, sr, lambda f: band(15.0, 400.0, 2.0)(f) * pink(f))
        return x * smooth_envelope(rng, n, sr, 0.7, 0.8)
    if kind == "rain":
        bed = shaped_noise(rng, n, sr, lambda f: band(300.0, 12000.0, 1.0)(f))
        drops = impulses(rng, n, sr, 300.0, 0.004)
        x = bed * (0.3 + drops / (drops.std() + 1e-9))
        return x / (np.sqrt(np.mean(x * x)) + 1e-9)
    if kind == "stream":
        x = shaped_noise(rng, n, sr, lambda f: band(200.0, 3000.0, 1.5)(f))
        return x * smooth_envelope(rng, n, sr, 12.0, 0.6)
    if kind == "insect_chorus":
        k = 6
        fc = rng.uniform(3000.0, 7000.0, size=k)[:, None]
        rate = rng.uniform(15.0, 60.0, size=k)[:, None]
        ph = rng.uniform(0, 1, size=(k, 2))
        t = np.arange(n, dtype=np.float32)[None, :] / sr
        fade = np.clip((NYQUIST_MARGIN * sr - fc) / (0.05 * NYQUIST_MARGIN * sr), 0, 1)
        tone = np.sin(2 * np.pi * (fc * t + ph[:, :1]))
        gate = (0.5 + 0.5 * np.sin(2 * np.pi * (rate * t + ph[:, 1:]))) ** 4
        x = (fade * tone * gate).sum(axis=0).astype(np.float32)
        return x / (np.sqrt(np.mean(x * x)) + 1e-9)
    if kind == "pink":
        return shaped_noise(rng, n, sr, pink)
    raise ValueError(f"unknown background kind {kind!r}")


def texture(bank: np.ndarray, n: int, sr: int, rng: np.random.Generator, seg_s: float = 1.0) -> np.ndarray:
    """A background of ``[n]`` samples cut from ``bank [L]`` (a long rendered texture): random ``seg_s``
    segments joined by power-complementary (sine) cross-fades in two streams half a segment apart; RMS
    about that of the bank. ``n`` may exceed ``L``. Segments are copied as slices (a few per clip)."""
    seg = max(int(seg_s * sr), 16)
    n_seg = n // seg + 2
    starts = rng.integers(0, len(bank) - seg, size=(2, n_seg))
    win = np.tile(np.sin(np.pi * np.arange(seg) / seg).astype(np.float32), n_seg)
    out = np.zeros(n, dtype=np.float32)
    buf = np.empty(n_seg * seg, dtype=np.float32)
    for stream, shift in enumerate((0, seg // 2)):  # the two streams' window squares sum to 1
        for k, st in enumerate(starts[stream]):
            buf[k * seg : (k + 1) * seg] = bank[st : st + seg]
        out += buf[shift : shift + n] * win[shift : shift + n]
    return out


# --- acoustics ----------------------------------------------------------------------------------------------


def recorder_response(rng: np.random.Generator, strength_db: float) -> Callable[[np.ndarray], np.ndarray]:
    """A recording session's colouring: a high-pass corner (40-250 Hz), a spectral tilt and two broad
    peaks/dips, all scaled by ``strength_db`` (0 = flat). Returns an amplitude response of Hz."""
    s = strength_db / 6.0
    hp = 40.0 + 210.0 * rng.random() * min(s, 1.0)
    tilt = rng.uniform(-1.0, 1.0) * 1.5 * s  # dB per octave re 1 kHz
    pk_f = rng.uniform(np.log(500.0), np.log(8000.0), size=2)
    pk_g = rng.uniform(-1.0, 1.0, size=2) * 4.0 * s

    def g(f: np.ndarray) -> np.ndarray:
        oct_ = np.log2(np.maximum(f, 10.0) / 1000.0)
        db = tilt * oct_
        lf = np.log(np.maximum(f, 10.0))
        for c, gain in zip(pk_f, pk_g, strict=True):
            db = db + gain * np.exp(-0.5 * ((lf - c) / 0.35) ** 2)
        return (10 ** (db / 20) / np.sqrt(1 + (hp / np.maximum(f, 1.0)) ** 4)).astype(np.float32)

    return g


def absorption_db(freqs: np.ndarray, distance_m: float) -> np.ndarray:
    """Excess attenuation of a call heard at ``distance_m`` re 10 m, dB (> 0): air absorption plus
    vegetation, ``0.01 * f_kHz**1.5`` dB per metre (a 8 kHz partial loses about 11 dB over 50 m)."""
    return 0.01 * (freqs / 1000.0) ** 1.5 * max(distance_m - 10.0, 0.0)


def reverb_ir(rng: np.random.Generator, sr: int, rt60_s: float) -> np.ndarray:
    """Diffuse reverberation tail ``[m]`` float32: noise decaying 60 dB in ``rt60_s``, high frequencies
    faster (one-pole low-pass), unit energy. The direct path is added separately."""
    m = max(int(rt60_s * sr), 16)
    t = np.arange(m, dtype=np.float32) / sr
    tail = rng.standard_normal(m).astype(np.float32) * np.exp(-6.91 * t / max(rt60_s, 1e-3))
    tail = lfilter([0.6], [1.0, -0.4], tail).astype(np.float32)
    return tail / (np.sqrt(np.sum(tail * tail)) + 1e-12)
