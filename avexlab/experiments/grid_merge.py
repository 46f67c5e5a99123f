"""Merge grid folders that ran the same grid with different training seeds (``avexlab grid-merge``).

A replicated grid is long: its seeds can run in several folders, on several machines or sittings
(``avexlab grid --train-seeds 1 --out runs/grid-s1``). :func:`merge_grids` puts them into one new folder
that is what ``avexlab grid`` would have written had it run every seed there:

- every part must be the same grid (profile but for ``train_seeds`` and ``existing``, world seed, world) and
  the parts' training seeds must not overlap; anything else is refused before a file is written;
- each run directory is copied to ``out/<cell>/seed-<s>`` (without ``checkpoints/``, the resume state of a
  run that has finished), and the paths its ``config.yaml`` and
  ``provenance.json`` hold (its own, its SSL parent's) are rewritten to the new folder, so a later
  ``avexlab grid --out OUT`` with the merged seeds finds every run finished and its own;
- each kept evaluation (``eval/``) is copied with its ``checkpoint`` column and its key rewritten the same
  way, so that rerun also reuses every evaluation; a released model evaluated in several parts must carry
  the same key in each (same weights, spec and world) and is kept once;
- ``results.parquet`` and ``items.parquet`` are rebuilt from the copied evaluations: twins by
  architecture and seed, runs by cell and seed, then released models, and ``grid.json`` records the
  merged profile and each part's cost.

Weights may be left out (``weights=False``) for a lighter record: the runs' configs, metrics and provenance
are kept, and a rerun trains them again (the evaluations are reused when the weights come out the same).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from avexlab.errors import ConfigError, DataNotFoundError, expected_found
from avexlab.fsutil import atomic_write

from .grid import dict_diff, eval_key

__all__ = ["merge_grids"]

# profile fields that may differ between the parts of one grid
_PER_PART = ("train_seeds", "existing")
_WEIGHTS = "checkpoint.safetensors"
_LEFT_OUT = ("checkpoints",)


def merge_grids(parts: Sequence[str | Path], out: str | Path, *, weights: bool = True) -> Path:
    """Merge the grid folders ``parts`` (each a finished ``avexlab grid`` run) into the new folder ``out``;
    returns ``out/results.parquet``. See the module docstring for what is checked and rewritten."""
    from avexlab.config import load_config, save_config

    parts = [Path(p) for p in parts]
    out = Path(out)
    if len(parts) < 2:
        raise ConfigError(
            expected_found("grid-merge parts", "two or more grid folders", str(len(parts)), "Name each part.")
        )
    if out.exists() and any(out.iterdir()):
        raise ConfigError(
            expected_found(
                "grid-merge output",
                "a new or empty folder",
                f"{out}, which holds files",
                "Pass another --out; merging never writes over a folder.",
            )
        )
    records = [_record(p) for p in parts]
    _check_same_grid(parts, records)

    # every run of every part: where it was trained (its config's out_dir) and where it goes
    moves: dict[str, tuple[Path, str]] = {}  # old out_dir -> (source dir, run name "cell/seed-s")
    for part, rec in zip(parts, records, strict=True):
        for run in rec["runs"]:
            src = part / run
            if not (src / "encoder.json").is_file():
                raise DataNotFoundError(
                    expected_found(
                        f"run {run} of {part}",
                        "a finished run (encoder.json)",
                        f"no {src / 'encoder.json'}",
                        f"Finish that grid first: rerun `avexlab grid` with --out {part}.",
                    )
                )
            moves[str(load_config(src / "config.yaml").runtime.out_dir)] = (src, run)
    renamed = {old: str(out / run) for old, (_, run) in moves.items()}
    evaluations = _evaluations(parts, records)

    out.mkdir(parents=True, exist_ok=True)
    for old, (src, run) in moves.items():
        dst = out / run
        # a finished run's resume state (checkpoints/: weights, optimiser, scheduler) is not part of it
        shutil.copytree(
            src, dst, ignore=shutil.ignore_patterns(*_LEFT_OUT, *(() if weights else (_WEIGHTS,)))
        )
        cfg = load_config(dst / "config.yaml")
        init = cfg.model.init_checkpoint
        model = cfg.model.model_copy(update={"init_checkpoint": renamed.get(str(init), init)})
        runtime = cfg.runtime.model_copy(update={"out_dir": renamed[old]})
        save_config(cfg.model_copy(update={"model": model, "runtime": runtime}), dst / "config.yaml")
        prov_p = dst / "provenance.json"
        if prov_p.is_file():
            prov = json.loads(prov_p.read_text())
            for rec in prov.get("input_checkpoints", {}).values():
                if isinstance(rec, dict) and rec.get("path") in renamed:
                    rec["path"] = renamed[rec["path"]]
            atomic_write(prov_p, json.dumps(prov, indent=2))

    (out / "eval").mkdir()
    for stem, src_stem in evaluations.items():
        _copy_evaluation(src_stem, out / "eval" / stem, renamed)
    stems = sorted(evaluations, key=_job_order(records[0], out))
    results = pl.concat(
        [pl.read_parquet(out / "eval" / f"{s}.results.parquet") for s in stems], how="diagonal_relaxed"
    )
    items = pl.concat(
        [pl.read_parquet(out / "eval" / f"{s}.items.parquet") for s in stems], how="diagonal_relaxed"
    )
    atomic_write(out / "results.parquet", lambda tmp: results.write_parquet(tmp))
    atomic_write(out / "items.parquet", lambda tmp: items.write_parquet(tmp))
    atomic_write(
        out / "grid.json", json.dumps(_merged_record(parts, records, weights), indent=2, default=str)
    )
    return out / "results.parquet"


def _record(part: Path) -> dict[str, Any]:
    path = part / "grid.json"
    if not path.is_file() or not (part / "eval").is_dir():
        raise DataNotFoundError(
            expected_found(
                f"grid folder {part}",
                "a finished `avexlab grid` run (grid.json, eval/, the run folders)",
                "no grid.json" if not path.is_file() else "no eval/ folder",
                "Name the folder an `avexlab grid --out` wrote, after it finished.",
            )
        )
    rec = json.loads(path.read_text())
    if "evaluations" not in rec.get("cost", {}):
        raise DataNotFoundError(
            expected_found(
                f"grid folder {part}",
                "a grid that evaluated its encoders (grid.json cost.evaluations)",
                "a grid.json without evaluations (trained only, or interrupted while evaluating)",
                f"Rerun `avexlab grid --out {part}` to finish it (it resumes).",
            )
        )
    return rec


def _check_same_grid(parts: list[Path], records: list[dict[str, Any]]) -> None:
    def design(rec: dict[str, Any]) -> dict[str, Any]:
        prof = {k: v for k, v in rec["profile"].items() if k not in _PER_PART}
        return {"profile": prof, "seed": rec["seed"], "world": rec["world"], "cells": rec["cells"]}

    base = design(records[0])
    for part, rec in zip(parts[1:], records[1:], strict=True):
        other = design(rec)
        if other != base:
            diff = dict_diff(base, other, limit=3)
            raise ConfigError(
                expected_found(
                    f"grid-merge part {part}",
                    f"the grid of {parts[0]} (same profile but for training seeds and released models, same "
                    "world, same cells)",
                    f"another grid ({diff})",
                    "Merge only folders of one grid; run the missing seeds with the same profile and world.",
                )
            )
    seen: dict[int, Path] = {}
    for part, rec in zip(parts, records, strict=True):
        for s in rec["profile"]["train_seeds"]:
            if s in seen:
                raise ConfigError(
                    expected_found(
                        "grid-merge training seeds",
                        "each training seed in one part only",
                        f"seed {s} in both {seen[s]} and {part}",
                        "Leave one of them out, or rerun one part without that seed (--train-seeds).",
                    )
                )
            seen[s] = part


def _evaluations(parts: list[Path], records: list[dict[str, Any]]) -> dict[str, Path]:
    """Each evaluation the parts' tables were built from (stem -> source stem); one released model in
    several parts must have the same key in each."""
    chosen: dict[str, Path] = {}
    keys: dict[str, str] = {}
    for part, rec in zip(parts, records, strict=True):
        for ev in rec["cost"]["evaluations"]:
            src = part / "eval" / ev["name"]
            meta = src.with_suffix(".json")
            missing = [
                p for p in (meta, src.with_suffix(".results.parquet"), src.with_suffix(".items.parquet"))
                if not p.is_file()
            ]  # fmt: skip
            if missing:
                raise DataNotFoundError(
                    expected_found(
                        f"evaluation {ev['name']} of {part}",
                        "its .json, .results.parquet and .items.parquet in eval/",
                        f"missing {', '.join(p.name for p in missing)}",
                        f"Rerun `avexlab grid --out {part}` to evaluate it again.",
                    )
                )
            key = json.loads(meta.read_text())["key"]
            if ev["name"] in chosen:
                if keys[ev["name"]] != key:
                    raise ConfigError(
                        expected_found(
                            f"evaluation {ev['name']}",
                            "the same key in every part that evaluated it (same weights, spec and world)",
                            f"{keys[ev['name']]} in {chosen[ev['name']].parent.parent}, {key} in {part}",
                            "Evaluate that model in one part only, or rerun the parts with one version.",
                        )
                    )
                continue
            chosen[ev["name"]], keys[ev["name"]] = src, key
    return chosen


def _copy_evaluation(src: Path, dst: Path, renamed: dict[str, str]) -> None:
    """One kept evaluation, its checkpoint paths renamed and its key recomputed from what it describes
    (the key :func:`avexlab.experiments.grid._evaluate_job` computes for the same encoder in ``out``)."""
    meta = json.loads(src.with_suffix(".json").read_text())
    described = meta["described"]
    cols = described.get("columns", {})
    if cols.get("checkpoint") in renamed:
        cols["checkpoint"] = renamed[cols["checkpoint"]]
    meta["key"] = eval_key(described)
    for suffix in (".results.parquet", ".items.parquet"):
        frame = pl.read_parquet(src.with_suffix(suffix))
        if "checkpoint" in frame.columns:
            frame = frame.with_columns(pl.col("checkpoint").replace(renamed))
        atomic_write(dst.with_suffix(suffix), lambda tmp, f=frame: f.write_parquet(tmp))
    atomic_write(dst.with_suffix(".json"), json.dumps(meta, indent=2, default=str))


def _job_order(record: dict[str, Any], out: Path) -> Any:
    """Sort key of a kept evaluation (its stem in ``out/eval``) in the grid's job order, read from what the
    evaluation describes: twins (architecture, seed), runs (cell, seed), then released models."""
    archs, cells = list(record["profile"]["architectures"]), list(record["cells"])

    def key(stem: str) -> tuple[int, int, int, str]:
        described = json.loads((out / "eval" / f"{stem}.json").read_text())["described"]
        cols, name = described["columns"], described["name"]
        if cols["paradigm"] == "random-init":
            return (0, archs.index(described["arch"]), int(cols["train_seed"]), "")
        if cols["paradigm"] == "existing":
            return (2, 0, 0, name)
        return (1, cells.index(name), int(cols["train_seed"]), "")

    return key


def _merged_record(parts: list[Path], records: list[dict[str, Any]], weights: bool) -> dict[str, Any]:
    base = records[0]
    seeds = sorted({s for r in records for s in r["profile"]["train_seeds"]})
    existing: list[str] = []
    for r in records:
        existing += [e for e in r["profile"]["existing"] if e not in existing]
    cells = list(base["cells"])
    runs = sorted(
        {run for r in records for run in r["runs"]},
        key=lambda run: (cells.index(run.split("/")[0]), int(run.rsplit("-", 1)[1])),
    )
    costs = [r["cost"] for r in records]
    return {
        **{k: v for k, v in base.items() if k != "earlier"},
        "profile": {**base["profile"], "train_seeds": seeds, "existing": existing},
        "runs": runs,
        "merged_from": [
            {"part": str(p), "train_seeds": r["profile"]["train_seeds"], "existing": r["profile"]["existing"]}
            for p, r in zip(parts, records, strict=True)
        ],
        "weights": "kept" if weights else "left out (checkpoint.safetensors); a rerun trains them again",
        "cost": {
            # wall times of the sittings, added: what the whole grid took, one part after another
            "training_wall_s": round(sum(c.get("training_wall_s", 0.0) for c in costs), 3),
            "evaluation_wall_s": round(sum(c.get("evaluation_wall_s", 0.0) for c in costs), 3),
            "workers": base["cost"].get("workers"),
            "cpu_count": base["cost"].get("cpu_count"),
            "runs": [row for c in costs for row in c.get("runs", [])],
            "evaluations": [row for c in costs for row in c.get("evaluations", [])],
            "parts": [
                {"part": str(p), **c, **({"earlier": r["earlier"]} if r.get("earlier") else {})}
                for p, c, r in zip(parts, costs, records, strict=True)
            ],
        },
    }
