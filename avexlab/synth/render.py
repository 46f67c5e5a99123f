"""Rendering of the world's items: focal recordings, soundscapes (with their event lists) and general-audio
clips. Each item draws only from generators keyed by its own key, so any subset renders identically.

Levels: a call is rendered at unit nominal RMS; SNRs are set against nominal powers (not measured ones),
so a call above the band limit (a bat at 16 kHz) stays absent instead of being amplified.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy.signal import oaconvolve

from avexlab.synth.config import BACKGROUNDS, SynthConfig
from avexlab.synth.dsp import absorption_db, background, recorder_response, reverb_ir, synth_call, texture
from avexlab.synth.general import GENERAL_CLASSES
from avexlab.synth.seeding import rng_for
from avexlab.synth.taxonomy import Species, signature

SCENE_LEVEL = 0.03
"""Output RMS of a soundscape's default background bed (before the recorder response)."""
RENDITION_F_SD = 0.02
"""Pitch variation between renditions of one call type by one individual (standard deviation, fraction)."""
RENDITION_T_SD = 0.08
"""Duration/tempo variation between renditions (standard deviation, fraction)."""
FOCAL_LEVEL = 0.08
"""Nominal output RMS of a focal recording (±6 dB per recording)."""


@dataclass(frozen=True)
class FocalItem:
    """A focal recording: one individual of one species calling a few times in ``cfg.clip_s`` seconds.

    ``call_types`` restricts the calls to these repertoire indices (None: any); ``max_calls`` caps the
    number of calls (1 for a segmented call, as in call-type datasets). ``session`` keys the recording
    conditions (recorder response); several recordings may share one session."""

    key: str
    species: str
    individual: str
    session: str
    call_types: tuple[int, ...] | None = None
    max_calls: int = 8


@dataclass(frozen=True)
class SceneItem:
    """A soundscape of ``duration_s`` seconds; its community and events derive from its key."""

    key: str
    duration_s: float


@dataclass(frozen=True)
class GeneralItem:
    """A general-audio (non-animal) clip of class ``label``."""

    key: str
    label: str


Item = FocalItem | SceneItem | GeneralItem


@dataclass(frozen=True)
class Event:
    """One call in a soundscape. ``onset_s``/``offset_s`` in seconds from the scene start; ``snr_db`` at
    10 m, ``distance_m``; ``low_hz``/``high_hz`` the call's band; ``jitter`` its rendition shifts."""

    index: int
    onset_s: float
    offset_s: float
    species: str
    individual: str
    call_type: int
    snr_db: float
    distance_m: float
    low_hz: float
    high_hz: float
    f_jitter: float
    t_jitter: float


def _u_range(u: float, lo_hi: tuple[float, float]) -> float:
    return float(lo_hi[0] + u * (lo_hi[1] - lo_hi[0]))


def _log_range(u: float, lo_hi: tuple[float, float]) -> float:
    lo, hi = np.log(lo_hi[0]), np.log(lo_hi[1])
    return float(np.exp(lo + u * (hi - lo)))


def scene_events(
    item: SceneItem, cfg: SynthConfig, seed: int, species: dict[str, Species], terrestrial: list[str]
) -> list[Event]:
    """The events of a soundscape, sorted by onset. Every random draw is made whatever the knobs are;
    the knobs (``snr_db``, ``distance_m``, ``overlap``) only map the draws, so two worlds that differ in
    one of them have the same calls (species, individual, call type, rendition) in the same order."""
    rng = rng_for(seed, f"{item.key}/events")
    k = min(cfg.community_size, len(terrestrial))
    community = [terrestrial[i] for i in np.sort(rng.choice(len(terrestrial), size=k, replace=False))]
    abundance = rng.dirichlet(np.ones(k))
    # each community member has one or two individuals singing in this scene
    n_ev = max(1, int(rng.poisson(cfg.events_per_minute * item.duration_s / 60.0)))
    who = rng.choice(k, size=n_ev, p=abundance)
    ind_pick = rng.integers(0, 2, size=n_ev)
    ct_u = rng.random(n_ev)
    u_onset = rng.random(n_ev)
    n_clusters = max(1, int(round(item.duration_s / 15.0)))
    centres = rng.random(n_clusters)
    member = rng.integers(0, n_clusters, size=n_ev)
    spread = rng.normal(0.0, 1.0, size=n_ev) * (2.0 / item.duration_s)
    u_snr, u_dist = rng.random(n_ev), rng.random(n_ev)
    f_jit, t_jit = rng.normal(0.0, RENDITION_F_SD, n_ev), rng.normal(0.0, RENDITION_T_SD, n_ev)
    ind_offsets = rng.integers(0, 10_000, size=k)

    ov = cfg.overlap
    pos = (1.0 - ov) * u_onset + ov * np.clip(centres[member] + spread, 0.0, 1.0)
    events = []
    for j in range(n_ev):  # metadata only (a few dozen per scene), no audio here
        sp = species[community[who[j]]]
        ind = sp.individuals[(ind_offsets[who[j]] + ind_pick[j]) % len(sp.individuals)]
        ct_i = int(ct_u[j] * len(sp.call_types))
        ct = sp.call_types[ct_i]
        sig = signature(seed, ind)
        dur = ct.dur_s * sig.tempo * (1 + t_jit[j])
        onset = float(pos[j] * max(item.duration_s - dur, 0.0))
        lo, hi = ct.band_hz(sig.f_scale * (1 + f_jit[j]))
        events.append(
            Event(
                j,
                onset,
                onset + dur,
                sp.name,
                ind,
                ct_i,
                _u_range(u_snr[j], cfg.snr_db),
                _log_range(u_dist[j], cfg.distance_m),
                lo,
                min(hi, cfg.sample_rate / 2),
                float(f_jit[j]),
                float(t_jit[j]),
            )
        )
    return sorted(events, key=lambda e: (e.onset_s, e.index))


BANK_S = 20.0
"""Length of each pre-rendered background texture, seconds."""
BANK_MIXES = 8
"""Number of habitat mixes in the background bank (each a weighted sum of the background types)."""


@functools.lru_cache(maxsize=8)
def background_bank(seed: int, kinds: tuple[str, ...], sr: int) -> np.ndarray:
    """``[BANK_MIXES, BANK_S * sr]`` float32 background textures, RMS 1 each, rendered once per process.

    Each mix is a pink floor plus a random weighting of two variants of every background type. Weights are
    drawn for all of ``BACKGROUNDS`` whatever ``kinds`` holds, so removing one type (the ``background``
    knob) leaves the other types' contributions unchanged."""
    n = int(BANK_S * sr)
    comps = {
        kind: [background(kind, rng_for(seed, f"bank/{kind}/{v}"), n, sr) for v in range(2)]
        for kind in ("pink", *kinds)
    }
    bank = np.zeros((BANK_MIXES, n), dtype=np.float32)
    for m in range(BANK_MIXES):
        rng = rng_for(seed, f"bank/mix/{m}")
        x = 0.3 * comps["pink"][int(rng.integers(0, 2))]
        for kind in BACKGROUNDS:
            w, v = rng.random() ** 2, int(rng.integers(0, 2))
            if kind in kinds:
                x = x + np.float32(w) * comps[kind][v]
        bank[m] = x / (np.sqrt(np.mean(x * x)) + 1e-9)
    bank.setflags(write=False)
    return bank


def _background_mix(seed: int, key: str, kinds: tuple[str, ...], n: int, sr: int) -> np.ndarray:
    """The background of item ``key``: ``[n]`` float32, RMS about 1, cut from one habitat mix of the bank."""
    bank = background_bank(seed, tuple(sorted(kinds)), sr)
    rng = rng_for(seed, f"{key}/bg")
    return texture(bank[int(rng.integers(0, len(bank)))], n, sr, rng)


@functools.lru_cache(maxsize=64)
def _ir_spectrum(seed: int, sr: int, m: int, rt60_s: float) -> np.ndarray:
    """rfft (size ``m``) of a focal room response: the direct path plus a quarter-amplitude reverberant
    tail of ``rt60_s`` seconds (one of 12 levels per world, so it is computed once per process)."""
    ir = 0.25 * reverb_ir(rng_for(seed, f"ir/{rt60_s:.4f}"), sr, rt60_s)
    ir[0] += 1.0
    out = sfft.rfft(ir, m).astype(np.complex64)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=16)
def _rfft_freqs(m: int, sr: int) -> np.ndarray:
    return np.fft.rfftfreq(m, 1.0 / sr).astype(np.float32)


def _response(rng: np.random.Generator, strength_db: float, sr: int, m: int) -> np.ndarray | float:
    """The recorder response on the rfft grid of size ``m`` (evaluated on 256 log-spaced points, then
    interpolated), or 1.0 when ``strength_db`` is 0."""
    if strength_db <= 0:
        return 1.0
    grid = np.geomspace(10.0, sr / 2, 256)
    g = recorder_response(rng, strength_db)(grid)
    return np.interp(_rfft_freqs(m, sr), grid, g).astype(np.float32)


def _limit(x: np.ndarray) -> np.ndarray:
    """Scale a clip down (never up) so its peak is at most 0.99 (a deterministic limiter, no clipping)."""
    peak = float(np.max(np.abs(x)))
    return (x * np.float32(0.99 / peak) if peak > 0.99 else x).astype(np.float32)


def _colour(x: np.ndarray, sr: int, response_rng: np.random.Generator, strength_db: float) -> np.ndarray:
    """``x`` through a recording session's response (see :func:`recorder_response`)."""
    if strength_db <= 0:
        return x
    n = len(x)
    m = sfft.next_fast_len(n, real=True)
    return sfft.irfft(sfft.rfft(x, m) * _response(response_rng, strength_db, sr, m), m)[:n].astype(np.float32)


def _soft_clip(x: np.ndarray) -> np.ndarray:
    """Sample-wise soft knee above 0.9 full scale (stays below 1.0). Local, so the level of the rest of a
    soundscape does not depend on its loudest call (shift sweeps keep the background identical)."""
    mag = np.abs(x)
    over = mag > 0.9
    if over.any():
        x = x.copy()
        x[over] = np.sign(x[over]) * (0.9 + 0.0999 * np.tanh((mag[over] - 0.9) / 0.1))
    return x.astype(np.float32)


def render_focal(item: FocalItem, cfg: SynthConfig, seed: int, species: dict[str, Species]) -> np.ndarray:
    """A focal recording ``[clip_s * sample_rate]`` float32 in [-1, 1]: the individual's calls, a light
    reverberant tail (RT60 a quarter of the ``rt60_s`` knob, on 12 levels), background at the focal SNR,
    all through the session's recorder response."""
    sr = cfg.sample_rate
    n = int(round(cfg.clip_s * sr))
    sp = species[item.species]
    sig = signature(seed, item.individual)
    harm = np.asarray(sig.harm_gain)
    rng = rng_for(seed, item.key)
    allowed = item.call_types if item.call_types is not None else tuple(range(len(sp.call_types)))
    dry = np.zeros(n, dtype=np.float32)
    t, energy, active = float(rng.uniform(0.05, 0.6)), 0.0, 0
    for _ in range(item.max_calls):
        ct = sp.call_types[allowed[int(rng.integers(0, len(allowed)))]]
        f_j, t_j = rng.normal(0, RENDITION_F_SD), rng.normal(0, RENDITION_T_SD)
        gain = 10 ** (rng.uniform(-3, 3) / 20)
        call = synth_call(
            ct, sr, rng, f_scale=sig.f_scale * (1 + f_j), tempo=sig.tempo * (1 + t_j), harm_gain=harm
        )
        i0 = int(round(t * sr))
        seg = call[: max(0, n - i0)]
        dry[i0 : i0 + len(seg)] += np.float32(gain) * seg
        energy += gain**2 * len(seg)
        active += len(seg)
        t += len(call) / sr + float(rng.uniform(0.15, 0.8))
        if t > cfg.clip_s - 0.1:
            break
    u_snr, u_rt, u_level = rng.random(3)
    p_sig = energy / max(active, 1)  # nominal power while calling
    snr = _u_range(u_snr, cfg.focal_snr_db)
    lo, hi = cfg.rt60_s
    rt60 = round((lo + (np.floor(u_rt * 12) + 0.5) / 12 * (hi - lo)) / 4.0, 4)
    m = sfft.next_fast_len(n + int(rt60 * sr) + 16, real=True)
    bg = _background_mix(seed, item.key, cfg.background, n, sr)
    p_bg = p_sig / 10 ** (snr / 10)
    # calls and background share the place (and its reverberation) and the recorder: one FFT pass
    dry += bg * np.float32(np.sqrt(p_bg))
    spec = sfft.rfft(dry, m)
    spec *= _ir_spectrum(seed, sr, m, rt60)
    spec *= _response(rng_for(seed, f"session/{item.session}"), cfg.recorder_response_db, sr, m)
    mix = sfft.irfft(spec, m)[:n]
    level = FOCAL_LEVEL * 10 ** ((12 * u_level - 6) / 20) / np.sqrt(p_sig * active / n + p_bg + 1e-12)
    return _limit(mix * np.float32(level))


def render_scene(
    item: SceneItem, events: list[Event], cfg: SynthConfig, seed: int, species: dict[str, Species]
) -> np.ndarray:
    """A soundscape ``[duration_s * sample_rate]`` float32 in [-1, 1]: background bed, each event at its
    SNR (re 10 m), spreading loss and absorption for its distance, a shared reverberant tail whose share
    grows with distance, then the recorder response."""
    sr = cfg.sample_rate
    n = int(round(item.duration_s * sr))
    rng = rng_for(seed, f"{item.key}/scene")
    u_rt = rng.random()
    bed = _background_mix(seed, item.key, cfg.background, n, sr)
    bed *= np.float32(10 ** (cfg.background_level_db / 20))
    dry = np.zeros(n, dtype=np.float32)
    wet = np.zeros(n, dtype=np.float32)
    for ev in events:  # one short FFT per call
        sp = species[ev.species]
        sig = signature(seed, ev.individual)
        call = synth_call(
            sp.call_types[ev.call_type],
            sr,
            rng_for(seed, f"{item.key}/ev{ev.index}"),
            f_scale=sig.f_scale * (1 + ev.f_jitter),
            tempo=sig.tempo * (1 + ev.t_jitter),
            harm_gain=np.asarray(sig.harm_gain),
        )
        m = sfft.next_fast_len(len(call), real=True)
        att = 10 ** (-absorption_db(np.fft.rfftfreq(m, 1.0 / sr), ev.distance_m) / 20)
        call = sfft.irfft(sfft.rfft(call, m) * att, m)[: len(call)]
        amp = 10 ** (ev.snr_db / 20) * min(10.0 / ev.distance_m, 2.0)
        i0 = int(round(ev.onset_s * sr))
        seg = call[: max(0, n - i0)] * amp
        dry[i0 : i0 + len(seg)] += seg
        wet[i0 : i0 + len(seg)] += seg * (ev.distance_m / (ev.distance_m + 20.0))
    rt60 = _u_range(u_rt, cfg.rt60_s)
    tail = oaconvolve(wet, reverb_ir(rng_for(seed, f"{item.key}/ir"), sr, rt60))[:n].astype(np.float32)
    mix = bed + dry + tail
    mix = _colour(mix, sr, rng_for(seed, f"session/{item.key}"), cfg.recorder_response_db)
    return _soft_clip(mix * np.float32(SCENE_LEVEL))


def render_general(item: GeneralItem, cfg: SynthConfig, seed: int) -> np.ndarray:
    """A general-audio clip ``[clip_s * sample_rate]`` float32 in [-1, 1], with a light background and
    the recorder response of its own session."""
    sr = cfg.sample_rate
    n = int(round(cfg.clip_s * sr))
    rng = rng_for(seed, item.key)
    x = GENERAL_CLASSES[item.label](rng, n, sr)
    u_snr, u_level = rng.random(2)
    bg = _background_mix(seed, item.key, cfg.background, n, sr)
    snr = _u_range(u_snr, cfg.focal_snr_db)
    mix = x + np.float32(10 ** (-snr / 20)) * bg
    mix = _colour(mix, sr, rng_for(seed, f"session/{item.key}"), cfg.recorder_response_db)
    return _limit(mix * np.float32(FOCAL_LEVEL * 10 ** ((12 * u_level - 6) / 20)))
