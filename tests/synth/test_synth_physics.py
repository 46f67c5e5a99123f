"""The audio means what the labels say: events stand above the background in their band, taxon groups
sound different, calls above 8 kHz exist only at high sample rates, general classes differ (their ontology and
learnability: test_general_ontology.py)."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.signal import stft

from avexlab.synth import GENERAL_CLASSES, World, render_world
from avexlab.synth.dsp import synth_call
from avexlab.synth.seeding import rng_for


def _band_power(
    x: np.ndarray, sr: int, hop_s: float = 0.01, nper: int = 512
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f, t, z = stft(x, fs=sr, nperseg=nper, noverlap=nper - int(hop_s * sr), boundary=None)
    return f, t, np.abs(z) ** 2


def _event_contrast(world: World, key: str, shift_s: float = 0.0) -> list[float]:
    """Per audible event: band power inside its span over band power in event-free frames."""
    x = world.render(key)
    sr = world.config.sample_rate
    f, t, p = _band_power(x, sr)
    events = world.events.filter(pl.col("recording_id") == key)
    busy = np.zeros(len(t), dtype=bool)
    for a, b in events.select("onset_s", "offset_s").iter_rows():
        busy |= (t >= a - 0.3) & (t <= b + 2.5)  # calls and their reverberant tails
    out = []
    for e in events.iter_rows(named=True):
        loud = e["snr_db"] + 20 * np.log10(min(10.0 / e["distance_m"], 2.0))
        if loud < 6.0 or e["low_hz"] > 0.4 * sr or e["offset_s"] - e["onset_s"] < 0.05:
            continue
        fb = (f >= e["low_hz"]) & (f <= min(e["high_hz"], 0.45 * sr))
        span = (t >= e["onset_s"] + shift_s) & (t <= e["offset_s"] + shift_s)
        if not fb.any() or not span.any() or (~busy).sum() < 20:
            continue
        inside = p[fb][:, span].mean()
        outside = np.median(p[fb][:, ~busy].mean(axis=0))
        out.append(float(inside / outside))
    return out


def test_annotated_events_stand_above_the_background_in_their_band() -> None:
    world = render_world("smoke", 0, overlap=0.0)
    keys = [k for k in world.items if k.startswith("scene/")]
    ratios = [r for k in keys[:3] for r in _event_contrast(world, k)]
    assert len(ratios) >= 10
    assert np.mean(np.array(ratios) > 2.0) >= 0.9, sorted(ratios)[:10]


def test_spans_moved_off_the_events_do_not_stand_out() -> None:
    # the same measurement on spans shifted into silence: proves the contrast comes from the calls
    world = render_world("smoke", 0, overlap=0.0, snr_db=(15.0, 18.0), distance_m=(5.0, 8.0))
    key = next(k for k in world.items if k.startswith("scene/det/train"))
    on = _event_contrast(world, key)
    assert np.median(on) > 4.0
    events = world.events.filter(pl.col("recording_id") == key)
    x = world.render(key)
    sr = world.config.sample_rate
    f, t, p = _band_power(x, sr)
    busy = np.zeros(len(t), dtype=bool)
    for a, b in events.select("onset_s", "offset_s").iter_rows():
        busy |= (t >= a - 0.3) & (t <= b + 2.5)
    quiet = p[:, ~busy]
    halves = np.array_split(quiet, 2, axis=1)
    assert 0.5 < halves[0].mean() / halves[1].mean() < 2.0  # the background is stationary-ish


def _mean_log_spectrum(x: np.ndarray, sr: int) -> np.ndarray:
    f, _, p = _band_power(x, sr, hop_s=0.02, nper=2048)
    edges = np.geomspace(150, 0.45 * sr, 25)
    bands = np.array([p[(f >= a) & (f < b)].mean() for a, b in zip(edges[:-1], edges[1:], strict=True)])
    return np.log10(bands + 1e-3 * bands.max() + 1e-20)  # 30 dB of dynamic range


def _loo_nearest_centroid(groups: list[str], specs: list[np.ndarray]) -> float:
    """Leave-one-out nearest-centroid accuracy of the group from level-normalised spectra."""
    g, x = np.array(groups), np.array(specs)
    x = x - x.mean(axis=1, keepdims=True)  # spectral shape, not level
    names = sorted(set(groups))
    hits = []
    for i in range(len(g)):
        mask = np.arange(len(g)) != i
        cents = np.stack([x[mask & (g == n)].mean(0) for n in names])
        hits.append(names[int(np.argmin(((cents - x[i]) ** 2).sum(1)))] == g[i])
    return float(np.mean(hits))


def test_taxon_groups_have_distinct_spectra(smoke: World) -> None:
    # the calls themselves (dry): each group's physics gives it its own spectral shape
    groups, specs = [], []
    for sp in smoke.species:
        for k, ct in enumerate(sp.call_types):
            groups.append(sp.group)
            specs.append(_mean_log_spectrum(synth_call(ct, 48000, rng_for(0, f"{sp.code}/{k}")), 48000))
    assert len(set(groups)) == 6
    assert _loo_nearest_centroid(groups, specs) >= 0.7
    # rendered focal recordings (background, reverberation, recorder colouring): still far above 1/6
    clf = smoke.suites["syn-beans-clf"].manifest.filter(pl.col("split") == "train")
    groups, specs = [], []
    for row in clf.group_by("species", maintain_order=True).head(3).iter_rows(named=True):
        x, sr = smoke.load(row["clip_id"])
        groups.append(row["taxon_group"])
        specs.append(_mean_log_spectrum(x, sr))
    assert _loo_nearest_centroid(groups, specs) >= 0.4


def test_call_physics_follow_the_design_ranges(smoke: World) -> None:
    sr = 48000
    peaks: dict[str, list[float]] = {}
    for sp in smoke.species:
        for ct in sp.call_types:
            if ct.noise > 0:
                continue
            x = synth_call(ct, sr, rng_for(0, "test"))
            spec = np.abs(np.fft.rfft(x)) ** 2
            peaks.setdefault(sp.group, []).append(float(np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()]))
    assert max(peaks["owls_doves"]) < 1600
    assert min(peaks["insects"]) > 2500
    assert min(peaks["bats"]) > 3000 and max(peaks["bats"]) > 8000
    assert np.median(peaks["songbirds"]) > 1000
    assert np.median(peaks["cetaceans"]) < np.median(peaks["songbirds"]) or max(peaks["cetaceans"]) > 8000


def test_high_species_need_high_sample_rates(smoke: World) -> None:
    bat = next(sp for sp in smoke.species if sp.group == "bats")
    owl = next(sp for sp in smoke.species if sp.group == "owls_doves")
    assert bat.above_8k and not owl.above_8k
    echo = next(ct for ct in bat.call_types if ct.kind == "echolocation")
    at32 = synth_call(echo, 32000, rng_for(0, "e"))
    at16 = synth_call(echo, 16000, rng_for(0, "e"))
    assert np.sqrt(np.mean(at32**2)) > 0.5  # audible at 32 kHz
    assert np.sqrt(np.mean(at16**2)) < 0.05  # absent, not aliased, at 16 kHz

    hi = render_world("smoke", 0, sample_rate=32000)

    def frac_above_8k(code: str, world: World) -> float:
        out = []
        for k in [k for k in world.items if k.startswith(f"focal/{code}/")][:4]:
            x, sr = world.load(k)
            p = np.abs(np.fft.rfft(x)) ** 2
            f = np.fft.rfftfreq(len(x), 1 / sr)
            out.append(p[f > 8000].sum() / p.sum())
        return float(np.mean(out))

    assert frac_above_8k(bat.code, hi) > 3 * frac_above_8k(owl.code, hi)
    assert frac_above_8k(bat.code, hi) > 0.2


def test_general_pool_classes_render_distinct_spectra(smoke: World) -> None:
    gen = smoke.pools["general"]
    labels = set(gen["labels"].explode().to_list())
    assert len(labels) >= 50 and labels == set(GENERAL_CLASSES)
    assert not labels & set(smoke.taxonomy["species"].to_list())
    specs = {}
    for label in sorted(labels):
        cid = gen.filter(pl.col("labels").list.first() == label)["clip_id"][0]
        x, sr = smoke.load(cid)
        assert np.isfinite(x).all() and np.abs(x).max() <= 1.0 and x.std() > 1e-3
        specs[label] = _mean_log_spectrum(x, sr)
    names = list(specs)
    dists = [np.abs(specs[a] - specs[b]).mean() for i, a in enumerate(names) for b in names[i + 1 :]]
    assert min(dists) > 0.05  # no two classes render the same spectrum
