"""Suites and pools: the paper's four task families with train/val/test, valid manifests, pools disjoint
from every test clip, unseen sessions/species/individuals really unseen, windows with empty labels."""

from __future__ import annotations

import math

import polars as pl
import pytest
from tolerance import assert_close_f32, f64_tol

from avexlab.data.manifest import validate_manifest
from avexlab.synth import (
    GENERAL_CLASSES,
    PRESETS,
    SUITE_NAMES,
    TAXON_GROUPS,
    World,
    pool_overlap,
    render_world,
)


def test_every_suite_has_train_val_test_and_valid_manifests(smoke: World) -> None:
    assert set(smoke.suites) == set(SUITE_NAMES)
    for name, suite in smoke.suites.items():
        assert suite.datasets, name
        for ds, df in suite.manifests.items():
            validated = validate_manifest(df, source=f"{name}/{ds}")
            assert validated.height == df.height
            assert set(df["split"].unique()) == {"train", "val", "test"}, (name, ds)
            assert df["clip_id"].n_unique() == df.height
            assert (df["sample_rate"] == smoke.config.sample_rate).all()
    for pool in smoke.pools.values():
        validate_manifest(pool)
    assert smoke.suites["syn-beans-clf"].datasets == [
        f"syn-clf-{g}" for g in ("songbirds", "owls_doves", "frogs", "insects", "cetaceans", "bats")
    ]
    assert smoke.suites["syn-beans-det"].multi_label and not smoke.suites["syn-beans-clf"].multi_label


def test_detection_windows_are_multi_label_with_empty_windows(smoke: World) -> None:
    det = smoke.suites["syn-beans-det"].manifest
    n_labels = det["labels"].list.len()
    assert (n_labels == 0).any() and (n_labels >= 2).any()
    assert (det["domain"] == "soundscape").all()
    assert ((det["end_s"] - det["start_s"]) == smoke.config.clip_s).all()
    # every label of a window is backed by an annotated event overlapping it
    ev = smoke.events
    for row in det.head(20).iter_rows(named=True):
        scene = row["path"].split("?")[0].split("/", 4)[4]
        here = ev.filter(
            (pl.col("recording_id") == scene)
            & (pl.col("offset_s") > row["start_s"])
            & (pl.col("onset_s") < row["end_s"])
        )
        assert set(row["labels"]) <= set(here["species"].to_list())


def test_birdset_trains_on_focal_and_tests_on_soundscapes_of_the_same_species(smoke: World) -> None:
    bs = smoke.suites["syn-birdset"].manifest
    train, test = bs.filter(pl.col("split") == "train"), bs.filter(pl.col("split") == "test")
    assert (train["domain"] == "focal").all() and (test["domain"] == "soundscape").all()
    assert set(test["labels"].explode().drop_nulls()) <= set(train["labels"].explode())


def test_pools_are_disjoint_from_every_test_clip(smoke: World) -> None:
    assert pool_overlap(smoke).height == 0
    tests = pl.concat([s.split("test") for s in smoke.suites.values()], how="diagonal_relaxed")
    assert not set(smoke.pools["all"]["clip_id"]) & set(tests["clip_id"])
    assert not set(smoke.pools["all"]["session"]) & set(tests["session"].drop_nulls())
    assert smoke.pools["all"].height == smoke.pools["bio"].height + smoke.pools["general"].height
    assert (smoke.pools["general"]["domain"] == "general").all()


def test_pool_overlap_detects_a_leak(smoke: World) -> None:
    leaked = smoke.suites["syn-beans-clf"].split("test").head(2)
    bad = World.__new__(World)
    bad.__dict__.update(smoke.__dict__)
    bad.pools = {**smoke.pools, "all": pl.concat([smoke.pools["all"], leaked])}
    assert pool_overlap(bad).height == 2


def test_unseen_species_and_individuals_never_reach_the_pools() -> None:
    w = render_world("smoke", 0, unseen_species=0.5, unseen_individuals=0.5)
    pool = w.pools["bio"]
    assert w.unseen_species and w.unseen_individuals
    assert not set(pool["species"]) & w.unseen_species
    assert not set(pool["individual"]) & w.unseen_individuals
    # ... but unseen species are still evaluated
    assert w.unseen_species <= set(w.suites["syn-beans-clf"].manifest["species"])


@pytest.mark.parametrize("unseen", [True, False])
def test_individual_test_sessions_are_unseen_in_training_only_when_asked(unseen: bool) -> None:
    w = render_world("smoke", 0, unseen_sessions=unseen)
    for df in w.suites["syn-individual"].manifests.values():
        train = set(df.filter(pl.col("split") == "train")["session"])
        test = set(df.filter(pl.col("split") == "test")["session"])
        assert test
        assert (not train & test) if unseen else bool(train & test)
        # every test individual was seen in training (closed-set identification)
        assert set(df.filter(pl.col("split") == "test")["individual"]) <= set(
            df.filter(pl.col("split") == "train")["individual"]
        )


def test_repertoire_clips_hold_one_call_type(smoke: World) -> None:
    for ds, df in smoke.suites["syn-repertoire"].manifests.items():
        assert (df["labels"].list.len() == 1).all()
        assert (df["labels"].list.first() == df["call_type"]).all()
        assert df["call_type"].n_unique() == smoke.config.call_types_per_species, ds


def test_summary_counts_clips_classes_and_hours(smoke: World) -> None:
    s = smoke.summary()
    assert s.columns == ["suite", "dataset", "split", "clips", "classes", "hours"]
    clf_test = s.filter((pl.col("dataset") == "syn-clf-frogs") & (pl.col("split") == "test"))
    n = smoke.suites["syn-beans-clf"].split("test", "syn-clf-frogs").height
    assert clf_test["clips"][0] == n
    want = n * smoke.config.clip_s / 3600  # a sum of n durations and a division, in float64
    assert_close_f32(clf_test["hours"][0], want, f64_tol(want, ops=n + 1), what="hours")
    assert set(s["suite"]) == set(SUITE_NAMES) | {"pool-bio", "pool-general"}


def test_quick_sizes_follow_the_rules_written_in_the_preset() -> None:
    w = World(PRESETS["quick"], 0)  # the catalogue only: nothing is rendered
    cfg = w.config
    # classification column: binomial SE at worst case p = .5 at most .02 on the pooled test set; the
    # datasets are equal in size, so the mean of their accuracies has that SE too
    clf = w.suites["syn-beans-clf"].split("test")
    assert clf.height >= 625 and math.sqrt(0.25 / clf.height) <= 0.02
    assert clf.group_by("dataset").len()["len"].n_unique() == 1
    # detection and BirdSet windows: at least 30 test recordings each, every one cut into whole windows
    for suite in ("syn-beans-det", "syn-birdset"):
        per_recording = w.suites[suite].split("test").group_by("session").len()["len"]
        assert per_recording.len() >= 30, suite
        assert (per_recording == int(cfg.scene_duration_s // cfg.clip_s)).all(), suite
    # general pool: at least twice the bio pool in clips, at least 50 classes, more than the bio pool has
    bio, general = w.pools["bio"], w.pools["general"]
    assert general.height >= 2 * bio.height
    assert general["labels"].explode().n_unique() == len(GENERAL_CLASSES) >= 50
    assert len(GENERAL_CLASSES) > bio["labels"].explode().n_unique()
    # individual ID keeps its 96 test clips per dataset; repertoire its 30 clips per call type
    for df in w.suites["syn-individual"].manifests.values():
        assert df.filter(pl.col("split") == "test").height >= 96
    for df in w.suites["syn-repertoire"].manifests.values():
        assert (df.group_by("call_type").len()["len"] == 30).all()
    assert pool_overlap(w).height == 0


def test_paper_general_pool_is_twice_its_bio_pool() -> None:
    cfg = PRESETS["paper"]  # never built in tests: the pool sizes follow from the config
    seen = cfg.species_per_group - int(round(cfg.unseen_species * cfg.species_per_group))
    bio = len(TAXON_GROUPS) * seen * cfg.pool_focal_per_species
    assert len(GENERAL_CLASSES) * cfg.general_per_class >= 2 * bio
