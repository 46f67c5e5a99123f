"""Choosing settings on validation data, never on the test columns that report them.

:func:`validation_suite` turns a suite into one that never reads its test split: the validation split
becomes the held-out split that is scored, and a label-stratified quarter of the training split becomes
the split the probe picks its best epoch on. :func:`validation_scores` evaluates an encoder on those
suites and returns the paper-shaped columns and their mean, the number a choice (a step budget, a learning
rate) is made on.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from avexlab.data.suite import Suite

__all__ = ["compare_on_validation", "validation_scores", "validation_suite"]


def validation_suite(suite: Suite, *, fraction: float = 0.25, seed: int = 0) -> Suite:
    """``suite`` without its test rows: ``val`` -> ``test``, a stratified ``fraction`` of ``train`` (by
    label set, seeded by ``seed`` and the dataset) -> ``val``, the rest stays ``train``. Soundscape windows
    of one recording may fall on both sides of the new train/val cut (the choice compares settings on the
    same footing; its scores are not reported as results)."""
    manifests = {}
    for dataset, m in suite.manifests.items():
        train = m.filter(pl.col("split") == "train")
        rng = np.random.default_rng([seed, zlib.crc32(dataset.encode())])
        strata = train["labels"].list.sort().list.join("|").fill_null("").to_numpy().astype(str)
        # systematic stratified draw: each stratum's rows in a seeded order get keys (rank + .5) / size; the
        # round(fraction x n) rows with the smallest keys (at least one) move: every stratum keeps its share
        key = np.empty(train.height)
        for label_set in np.unique(strata):
            idx = np.flatnonzero(strata == label_set)
            key[rng.permutation(idx)] = (np.arange(idx.size) + 0.5) / idx.size
        k = max(1, int(round(fraction * train.height))) if train.height > 1 else 0
        to_val = np.zeros(train.height, dtype=bool)
        to_val[np.argsort(key, kind="stable")[:k]] = True
        train = train.with_columns(pl.Series("split", np.where(to_val, "val", "train"), dtype=pl.String))
        val = m.filter(pl.col("split") == "val").with_columns(pl.lit("test").alias("split"))
        manifests[dataset] = pl.concat([train, val], how="diagonal_relaxed")
    return replace(suite, name=f"{suite.name} (validation)", manifests=manifests)


def validation_scores(
    encoder: Any,
    suites: Sequence[Suite],
    spec: Any = None,
    *,
    encoder_name: str | None = None,
) -> pl.DataFrame:
    """The paper-shaped columns of ``encoder`` on the validation suites of ``suites`` (their test rows
    never read) and ``mean``, the mean over the measured columns."""
    from avexlab.evaluate.suites import evaluate_suites
    from avexlab.evaluate.tables import paper_columns, paper_table

    results = evaluate_suites(encoder, [validation_suite(s) for s in suites], spec, encoder_name=encoder_name)
    table = paper_table(results)
    cols = [c for c in paper_columns() if c in table.columns and table[c].null_count() < table.height]
    return table.select("encoder", *cols).with_columns(pl.mean_horizontal(cols).alias("mean"))


def compare_on_validation(
    profile: Any,
    cells: Sequence[tuple[str, str, str]],
    candidates: dict[str, dict[str, Any]],
    out: str | Path,
    *,
    world_dir: str | Path,
    world_seed: int = 0,
    train_seed: int = 0,
) -> pl.DataFrame:
    """Train each ``(arch, mix, paradigm)`` of ``cells`` (``sl`` or ``ssl``) under each candidate setting
    (name -> dotted config keys set on top of the profile's, e.g. ``{"optim.lr": 3e-3}``) and score it on the
    validation suites of the world: ``candidate, cell, <columns>, mean``. Runs land in
    ``out/<candidate>/<cell>`` and are reused when finished (a rerun only evaluates)."""
    from dataclasses import replace as dc_replace

    from avexlab.evaluate.spec import EvalSpec

    from .grid import cell_config, cell_name
    from .worlds import open_world, train_run

    world = open_world(profile.world_preset, world_seed, world_dir)
    spec = EvalSpec(
        probe_epochs=profile.probe_epochs,
        probe_recipe=profile.probe_recipe,  # type: ignore[arg-type]
        probe_seeds=tuple(profile.probe_seeds),
    )
    rows = []
    for name, overrides in candidates.items():
        prof = dc_replace(profile, overrides={**profile.overrides, **overrides})
        for arch, mix, paradigm in cells:
            if paradigm not in ("sl", "ssl"):
                raise ValueError(f"compare_on_validation trains sl or ssl cells, found {paradigm!r}")
            cfg = cell_config(
                prof, arch, mix, paradigm, train_seed, Path(out) / name, world_seed, Path(world_dir)
            )
            run = Path(cfg.runtime.out_dir)
            if not (run / "encoder.json").is_file():
                train_run(cfg, world=world)
            from avexlab.models.checkpoints import load_encoder

            score = validation_scores(load_encoder(run), list(world.suites.values()), spec)
            rows.append(
                score.with_columns(
                    pl.lit(name).alias("candidate"), pl.lit(cell_name(arch, mix, paradigm)).alias("cell")
                )
            )
    table = pl.concat(rows, how="diagonal_relaxed")
    return table.select("candidate", "cell", pl.exclude("candidate", "cell", "encoder"))
