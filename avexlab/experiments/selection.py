"""Choosing settings on validation data, never on the test columns that report them.

:func:`validation_suite` turns a suite into one that never reads its test split: the validation split
becomes the held-out split that is scored, and a label-stratified quarter of the training split becomes
the split the probe picks its best epoch on. :func:`validation_scores` evaluates an encoder on those
suites and returns the paper-shaped columns and their mean, the number a choice (a step budget, a learning
rate) is made on.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from avexlab.data.suite import Suite
from avexlab.errors import ConfigError, expected_found
from avexlab.frames import exact_mean
from avexlab.fsutil import atomic_write

TWIN = "random-init"
VALIDATION_FRACTION = 0.25  # of train that becomes the probe's validation split

__all__ = ["TWIN", "choose", "compare_on_validation", "validation_scores", "validation_suite"]


def validation_suite(suite: Suite, *, fraction: float = VALIDATION_FRACTION, seed: int = 0) -> Suite:
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
    twins: bool = True,
) -> pl.DataFrame:
    """Train each ``(arch, mix, paradigm)`` of ``cells`` (``sl`` or ``ssl``) under each candidate setting
    (name -> dotted config keys set on top of the profile's, e.g. ``{"optim.lr": 3e-3}``) and score it on the
    validation suites of the world: ``candidate, cell, <columns>, mean``. Runs land in
    ``out/<candidate>/<cell>/seed-<s>``; a finished run is not trained again, and its scores are kept in
    ``validation.json`` beside it (reused while the evaluation settings are the same), so the comparison
    resumes per (candidate, cell) and several processes can share ``out`` with disjoint cells. With
    ``twins``, the random-init twin of each architecture (the training seed's initialisation) is scored
    too, as candidate ``random-init`` and cell ``<arch>-random-init``: the floor a setting has to clear."""
    from dataclasses import replace as dc_replace

    from avexlab.evaluate.spec import EvalSpec
    from avexlab.models.checkpoints import load_encoder

    from .grid import cell_config, cell_name, random_init, run_finished
    from .worlds import open_world, train_run

    for arch, mix, paradigm in cells:
        if paradigm not in ("sl", "ssl"):
            raise ConfigError(
                expected_found(
                    "a cell to compare settings on",
                    "an sl or ssl cell (sl-ssl and sl-equal start from another run)",
                    cell_name(arch, mix, paradigm),
                    "Compare on the sl and ssl cells; their choice carries over to the cells built on them.",
                )
            )
    world = open_world(profile.world_preset, world_seed, world_dir)
    spec = EvalSpec(
        probe_epochs=profile.probe_epochs,
        probe_recipe=profile.probe_recipe,  # type: ignore[arg-type]
        probe_seeds=tuple(profile.probe_seeds),
    )
    # JSON round trip: the key compared with the one read back from validation.json
    spec_key = json.loads(json.dumps({**spec.result_settings(), "fraction": VALIDATION_FRACTION}))
    suites = list(world.suites.values())

    def scored(cached: Path, key: dict[str, Any], encoder: Any) -> pl.DataFrame:
        kept = json.loads(cached.read_text()) if cached.is_file() else None
        if kept is not None and kept.get("spec") == key:
            return pl.DataFrame([kept["scores"]])
        score = validation_scores(encoder(), suites, spec).drop("encoder")
        atomic_write(cached, json.dumps({"spec": key, "scores": score.row(0, named=True)}, indent=1))
        return score

    rows = []
    for name, overrides in candidates.items():
        prof = dc_replace(profile, overrides={**profile.overrides, **overrides})
        for arch, mix, paradigm in cells:
            cfg = cell_config(
                prof, arch, mix, paradigm, train_seed, Path(out) / name, world_seed, Path(world_dir)
            )
            run = Path(cfg.runtime.out_dir)
            if not run_finished(cfg):
                train_run(cfg, world=world)
                (run / "validation.json").unlink(missing_ok=True)
            score = scored(run / "validation.json", spec_key, lambda run=run: load_encoder(run))
            rows.append(
                score.with_columns(
                    pl.lit(name).alias("candidate"), pl.lit(cell_name(arch, mix, paradigm)).alias("cell")
                )
            )
    if twins:
        for arch in dict.fromkeys(a for a, _, _ in cells):
            twin = Path(out) / TWIN / arch / f"seed-{train_seed}" / "validation.json"
            key = {**spec_key, "encoder": f"{arch}:{profile.size}", "init_seed": train_seed}
            score = scored(twin, key, lambda arch=arch: random_init(arch, profile.size, train_seed))
            rows.append(
                score.with_columns(pl.lit(TWIN).alias("candidate"), pl.lit(f"{arch}-{TWIN}").alias("cell"))
            )
    table = pl.concat(rows, how="diagonal_relaxed")
    return table.select("candidate", "cell", pl.exclude("candidate", "cell", "encoder"))


def choose(table: pl.DataFrame, *, current: str, tie: float = 0.0) -> tuple[str, pl.DataFrame]:
    """The rule a comparison is decided by, written before it runs: the candidate with the highest mean
    over cells of the validation ``mean``; a candidate beats ``current`` (the setting in use) only by more
    than ``tie``. Returns the chosen candidate and ``candidate, cells, mean, vs_current`` (best first).
    Every candidate must have been scored on the same cells; random-init twins' rows are not candidates."""
    table = table.filter(pl.col("candidate") != TWIN)
    cells = table.group_by("candidate").agg(pl.col("cell").sort().alias("cells"))
    if cells["cells"].n_unique() != 1:
        raise ConfigError(
            expected_found(
                "a comparison of candidates on the same cells",
                "the same cells for every candidate",
                str({c: list(v) for c, v in cells.iter_rows()}),
                "Run the comparison over the missing cells (finished runs are reused).",
            )
        )
    per = table.group_by("candidate").agg(pl.len().alias("cells"), exact_mean("mean").alias("mean"))
    if current not in per["candidate"].to_list():
        raise ConfigError(
            expected_found(
                "the current setting among the candidates",
                current,
                str(per["candidate"].to_list()),
                "Add the setting in use to the candidates: the rule compares with it.",
            )
        )
    base = per.filter(pl.col("candidate") == current)["mean"].item()
    per = per.with_columns((pl.col("mean") - base).alias("vs_current")).sort(
        ["mean", "candidate"], descending=[True, False]
    )
    best = per.row(0, named=True)
    chosen = best["candidate"] if best["vs_current"] > tie else current
    return chosen, per


def choose_setting(
    profile: Any,
    key: str,
    values: Sequence[Any],
    cells: Sequence[str],
    out: str | Path,
    *,
    world_dir: str | Path,
    world_seed: int = 0,
    train_seed: int = 0,
    tie: float = 0.0,
) -> dict[str, Any]:
    """Choose the value of config ``key`` (e.g. ``optim.lr``) among ``values`` on the validation suites,
    by :func:`choose`'s rule, training ``cells`` (names ``<arch>-<mix>-<paradigm>``, sl or ssl) once per
    value with ``profile``. The value the profile uses now must be among ``values``. Writes
    ``out/validation.parquet`` (one row per value and cell, and per architecture's random-init twin) and
    ``out/choice.json`` (the setting, the rule, the means, the twins, the choice and provenance) and returns
    the latter."""
    import datetime as dt

    from avexlab.train.provenance import git_commit, package_versions

    from .grid import cell_config, resolve_profile, split_cell_name

    prof = resolve_profile(profile)
    parsed = [split_cell_name(cell) for cell in cells]
    probe = cell_config(prof, *parsed[0], train_seed, Path(out), world_seed, Path(world_dir))
    node: Any = probe
    for part in key.split("."):
        if not hasattr(node, part):
            raise ConfigError(
                expected_found("a config key", "a dotted key of a run's config.yaml, e.g. optim.lr", key, "")
            )
        node = getattr(node, part)
    current = node
    if current not in list(values):
        raise ConfigError(
            expected_found(
                f"the value of {key} in use among the candidates",
                repr(current),
                repr(list(values)),
                "Add it: the rule keeps the setting in use unless another beats it on validation.",
            )
        )
    names = {f"{key}={v}": {key: v} for v in values}
    table = compare_on_validation(
        prof, parsed, names, out, world_dir=world_dir, world_seed=world_seed, train_seed=train_seed
    )
    chosen, per = choose(table, current=f"{key}={current}", tie=tie)
    record = {
        "setting": key,
        "values": list(values),
        "current": current,
        "chosen": names[chosen][key],
        "rule": (
            f"the value with the highest mean over cells of the validation mean (the paper columns measured on "
            f"validation suites, which never read a test split); another value replaces the one in use only "
            f"when it is more than {tie} above it"
        ),
        "cells": list(cells),
        "train_seed": train_seed,
        "profile": {k: v for k, v in dataclasses.asdict(prof).items() if k != "choices"},
        "world": {"preset": prof.world_preset, "seed": world_seed, "dir": str(world_dir)},
        "means": per.to_dicts(),
        "twins": {
            cell.removesuffix(f"-{TWIN}"): mean
            for cell, mean in table.filter(pl.col("candidate") == TWIN).select("cell", "mean").iter_rows()
        },
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git": git_commit(),
        "packages": package_versions(),
    }
    atomic_write(Path(out) / "validation.parquet", lambda t: table.write_parquet(t))
    atomic_write(Path(out) / "choice.json", json.dumps(record, indent=1, default=str))
    return record
