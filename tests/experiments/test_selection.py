"""Settings are chosen on validation suites that never read the test split."""

from __future__ import annotations

import polars as pl

from avexlab.experiments.selection import validation_suite
from avexlab.synth import render_world


def test_validation_suites_never_hold_a_test_clip() -> None:
    world = render_world("smoke", 0)
    for suite in world.suites.values():
        val = validation_suite(suite, fraction=0.25, seed=3)
        assert val.task_family == suite.task_family and val.multi_label == suite.multi_label
        for dataset, m in suite.manifests.items():
            v = val.manifests[dataset]
            test_ids = set(m.filter(pl.col("split") == "test")["clip_id"])
            assert test_ids.isdisjoint(v["clip_id"])  # the test split is never read
            # the old validation split is the new held-out split; train is split, nothing else moves
            assert set(v.filter(pl.col("split") == "test")["clip_id"]) == set(
                m.filter(pl.col("split") == "val")["clip_id"]
            )
            train = set(m.filter(pl.col("split") == "train")["clip_id"])
            assert set(v.filter(pl.col("split") != "test")["clip_id"]) == train
            # a quarter of train (at least one clip) becomes the probe's validation split
            moved = v.filter(pl.col("split") == "val")
            assert moved.height == max(1, round(0.25 * len(train))) < len(train)
        again = validation_suite(suite, fraction=0.25, seed=3)
        assert all(again.manifests[d].equals(val.manifests[d]) for d in suite.manifests)  # seeded
