"""Bit-identical rendering: across fresh worlds, in any order, from URIs, on disk; different seeds differ."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from avexlab.audio.io import load_audio
from avexlab.synth import World, render_world

SAMPLE_KEYS = ("focal/son01/r002", "general/siren/r000", "rep/cet03/whistle-1/c004", "pool/fro02/r000")


def _some_keys(w: World) -> list[str]:
    keys = [k for k in SAMPLE_KEYS if k in w.items]
    keys += [next(k for k in w.items if k.startswith(p)) for p in ("indiv/", "scene/det/test/")]
    return keys


def test_two_renders_are_bit_identical(smoke: World) -> None:
    fresh = render_world("smoke", 0)
    for key in _some_keys(smoke):
        a, b = smoke.render(key), fresh.render(key)
        assert a.dtype == np.float32 and a.ndim == 1 and len(a) > 0
        assert np.array_equal(a, b), key


def test_rendering_order_does_not_matter(smoke: World) -> None:
    keys = _some_keys(smoke)
    forward = {k: smoke.render(k) for k in keys}
    other = render_world("smoke", 0)
    backward = {k: other.render(k) for k in reversed(keys)}
    for k in keys:
        assert np.array_equal(forward[k], backward[k]), k


def test_a_different_seed_gives_a_different_world(smoke: World) -> None:
    other = render_world("smoke", 1)
    assert smoke.taxonomy["species"].to_list() != other.taxonomy["species"].to_list()
    a = smoke.render("general/siren/r000")
    b = other.render("general/siren/r000")
    assert a.shape == b.shape and not np.allclose(a, b)


def test_knob_change_keeps_the_taxonomy_and_the_catalogue(smoke: World) -> None:
    hi = render_world("smoke", 0, sample_rate=32000, snr_db=(10.0, 10.0))
    assert hi.taxonomy.equals(smoke.taxonomy)
    assert set(hi.items) == set(smoke.items)
    x, sr = hi.load("focal/son01/r002")
    assert sr == 32000 and len(x) == int(32000 * hi.config.clip_s)


def test_synth_uri_loads_through_load_audio_like_world_load(smoke: World) -> None:
    det = smoke.suites["syn-beans-det"].split("test")
    row = det.row(1, named=True)
    wave, sr = load_audio(row["path"], start_s=row["start_s"], end_s=row["end_s"])
    ref, ref_sr = smoke.load(row["clip_id"])
    assert sr == ref_sr == smoke.config.sample_rate
    assert np.array_equal(wave.numpy(), ref)
    # a knobbed world's URI re-renders that world, from the URI alone
    knobbed = render_world("smoke", 0, rt60_s=2.0)
    clip = knobbed.suites["syn-beans-clf"].manifest.row(0, named=True)
    wave_k, _ = load_audio(clip["path"])
    assert np.array_equal(wave_k.numpy(), knobbed.load(clip["clip_id"])[0])
    assert not np.array_equal(wave_k.numpy(), smoke.load(clip["clip_id"])[0])


def test_written_subset_equals_in_memory_render_and_reopens(smoke: World, tmp_path) -> None:
    keys = _some_keys(smoke)
    smoke.write(tmp_path, keys=keys, audio_format="wav")  # float WAV: exact samples
    opened = World.open(tmp_path)
    assert opened.root == tmp_path and opened.config == smoke.config
    for key in keys:
        x, sr = sf.read(tmp_path / "audio" / f"{key}.wav", dtype="float32")
        assert sr == smoke.config.sample_rate
        assert np.array_equal(x, smoke.render(key)), key
    window = smoke.suites["syn-beans-det"].split("test")["clip_id"][2]
    assert np.array_equal(opened.load(window)[0], smoke.load(window)[0])
    # manifests on disk: relative paths, same rows as in memory
    disk = pl.read_parquet(tmp_path / "syn-beans-clf.parquet")
    assert (
        disk["path"][0].startswith("audio/") and disk.height == smoke.suites["syn-beans-clf"].manifest.height
    )
    assert opened.summary().equals(smoke.summary())
    assert opened.meta["seed"] == 0 and len(opened.meta["audio_sha256"]) == 64


@pytest.mark.slow
def test_parallel_render_equals_items_rendered_alone(smoke: World, tmp_path) -> None:
    # a spread of items (every kind, a soundscape included) written by two worker processes, then the
    # same items rendered alone in this process, and written by one process: identical
    keys = sorted(set(sorted(smoke.items)[::12]) | set(_some_keys(smoke)))
    two, one = tmp_path / "two", tmp_path / "one"
    smoke.write(two, keys=keys, audio_format="wav", workers=2)
    for key in keys:
        x, _ = sf.read(two / "audio" / f"{key}.wav", dtype="float32")
        assert np.array_equal(x, smoke.render(key)), key
    smoke.write(one, keys=keys, audio_format="wav", workers=1)
    meta = [World.open(p).meta for p in (one, two)]
    assert meta[0]["audio_sha256"] == meta[1]["audio_sha256"] and meta[1]["workers"] == 2
    assert meta[1]["audio_items"] == len(keys)
