"""The general-audio pool as an AudioSet stand-in: >= 50 classes in a three-level ontology with an animal
branch of its own (wild animals under coarse labels, voiced by the world's call physics), leaf labels in
the manifests, deterministic renderers, and classes a log-mel baseline can tell apart."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from avexlab.errors import ConfigError
from avexlab.synth import GENERAL_CLASSES, PRESETS, World, general_label_at, general_ontology
from avexlab.synth.baseline import general_pool_scores
from avexlab.synth.seeding import rng_for


def test_ontology_has_fifty_classes_in_branches_with_an_animal_branch() -> None:
    onto = general_ontology()
    assert onto.columns == ["class", "parent", "branch"]
    assert onto.height >= 50 and onto["class"].n_unique() == onto.height
    assert onto["class"].to_list() == list(GENERAL_CLASSES)
    assert set(onto["branch"]) == {"Human sounds", "Animal", "Music", "Natural sounds", "Sounds of things"}
    animal = onto.filter(pl.col("branch") == "Animal")
    assert set(animal["parent"]) == {"Domestic animals", "Livestock", "Wild animals"}
    wild = set(animal.filter(pl.col("parent") == "Wild animals")["class"])
    assert wild == {"bird", "frog", "insect", "whale"}  # coarse labels, as AudioSet's
    # every parent belongs to exactly one branch (a tree), and holds more than one class but a few at most
    per_parent = onto.group_by("parent").agg(pl.col("branch").n_unique().alias("b"), pl.len().alias("n"))
    assert (per_parent["b"] == 1).all() and per_parent["n"].max() <= 8
    # the twelve classes of world version 1 keep their names
    old = {"engine", "siren", "speech_babble", "music", "knock", "alarm_beep", "applause", "electrical_hum"}
    assert old | {"traffic", "rain", "wind", "water_stream"} <= set(onto["class"])


def test_labels_read_at_each_level() -> None:
    assert general_label_at("dog_bark", "class") == "dog_bark"
    assert general_label_at("dog_bark", "parent") == "Domestic animals"
    assert general_label_at("dog_bark", "branch") == "Animal"
    assert general_label_at("siren", "parent") == "Alarm"
    assert general_label_at("frog", "parent") == "Wild animals"
    with pytest.raises(ConfigError, match="expected one of"):
        general_label_at("dog_bark", "genus")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="a leaf class"):
        general_label_at("Animal", "branch")


def test_manifest_labels_are_leaf_classes_only(smoke: World) -> None:
    gen = smoke.pools["general"]
    assert (gen["labels"].list.len() == 1).all()  # no propagation to parents (see the module docstring)
    assert set(gen["labels"].explode()) == set(GENERAL_CLASSES)
    assert gen.height == len(GENERAL_CLASSES) * smoke.config.general_per_class
    assert not set(gen["labels"].explode()) & set(smoke.taxonomy["species"])


def test_every_renderer_is_deterministic_and_depends_on_its_generator() -> None:
    sr, n = 16000, 16000 * 2
    for name, render in GENERAL_CLASSES.items():
        a = render(rng_for(0, f"general/{name}/r000"), n, sr)
        b = render(rng_for(0, f"general/{name}/r000"), n, sr)
        c = render(rng_for(0, f"general/{name}/r001"), n, sr)
        assert a.dtype == np.float32 and a.shape == (n,), name
        assert np.isfinite(a).all() and np.array_equal(a, b), name
        assert not np.array_equal(a, c), name


def _band_share(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(p[(f >= lo) & (f < hi)].sum() / p.sum())


def test_wild_animals_are_voiced_by_the_world_call_physics() -> None:
    # insects call at 3-7 kHz, owls/doves and songbirds above 250 Hz, whales' moans and upsweeps low:
    # the coarse classes inherit their group's bands (dry renders, 32 kHz so nothing is cut)
    sr, n = 32000, 32000 * 5
    for r in range(6):
        insect = GENERAL_CLASSES["insect"](rng_for(0, f"general/insect/r{r:03d}"), n, sr)
        bird = GENERAL_CLASSES["bird"](rng_for(0, f"general/bird/r{r:03d}"), n, sr)
        assert _band_share(insect, sr, 2500, 16000) > 0.9, r
        assert _band_share(bird, sr, 200, 16000) > 0.9, r
    # two clips of one coarse class are different voices (no species behind them)
    a = GENERAL_CLASSES["frog"](rng_for(0, "general/frog/r000"), n, sr)
    b = GENERAL_CLASSES["frog"](rng_for(0, "general/frog/r001"), n, sr)
    assert not np.allclose(a, b)


@pytest.mark.slow
def test_a_log_mel_probe_tells_the_classes_apart() -> None:
    # the smoke world with 12 clips per general class (9 to train on, 3 held out per class)
    world = World(dataclasses.replace(PRESETS["smoke"], general_per_class=12), 0)
    scores = {r["level"]: r for r in general_pool_scores(world).iter_rows(named=True)}
    leaf = scores["class"]
    assert leaf["classes"] == len(GENERAL_CLASSES) and leaf["n_test"] == 3 * len(GENERAL_CLASSES)
    # "well above chance": chance is 1/65 (0.015); more than half the held-out clips right is 30x that
    assert leaf["value"] > 0.5, leaf
    # coarser levels: a linear probe trained on a parent's mixed classes is weaker than the leaf probe, yet
    # above the majority label's share (Sounds of things holds 23 of the 65 classes)
    for level in ("parent", "branch"):
        assert scores[level]["value"] > scores[level]["chance"], scores[level]
