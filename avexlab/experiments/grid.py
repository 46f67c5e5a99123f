"""The ablation grid: architectures x data mixes x paradigms, each trained with several seeds, every
encoder evaluated on the world's suites next to the random-init twins of its seeds, in one tidy results
table plus the per-item outcomes its intervals are computed from (``avexlab grid --profile quick``).

    path = grid("quick", out="runs/grid")   # out/results.parquet, out/items.parquet, out/grid.json

Paradigms: ``sl`` (supervised from scratch), ``ssl`` (BEATs-style for beats, EAT-style for eat),
``sl-ssl`` (supervised post-training of that SSL run), and ``sl-equal``, the equal-total-budget control of
``sl-ssl``: supervised from scratch for as many examples as the SSL run and its post-training together.
Architectures without SSL hooks (EfficientNet) train ``sl`` only, as in the paper; the skipped cells are
listed in ``grid.json``.

Budgets are examples seen (clips drawn by the trainer), the same for every cell a comparison pairs: every
``sl`` and ``ssl`` cell sees ``examples`` clips whatever its architecture or data mix, every ``sl-ssl`` cell
``post_examples`` on top of its SSL parent's, every ``sl-equal`` cell their sum. The rows carry
``examples_seen`` (all the examples behind the encoder), ``ssl_examples`` and ``sl_examples``.

Replicates: each cell trains once per ``train_seeds`` value (initialisation and data order); the
random-init twin of seed ``s`` is the initialisation a cell of seed ``s`` starts from. Every encoder is
probed with every ``probe_seeds`` value. Training and evaluation resume per (cell, seed): a finished run
directory is reused (if it is this grid's), and each encoder's evaluation is kept in ``out/eval/`` under a
key of its weights, the evaluation spec and the world, so a long grid can be run across several sittings.

Released models (``existing``, e.g. ``birdnet``) are evaluated beside the grid as rows of their own
(``paradigm == "existing"``): what the paper's tables put next to its encoders.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from avexlab.config import RunConfig, parse_config, parse_override_value
from avexlab.errors import ConfigError, expected_found
from avexlab.fsutil import atomic_write

__all__ = [
    "GRID_PROFILES",
    "PARADIGMS",
    "GridProfile",
    "cell_objectives",
    "grid",
    "grid_configs",
    "grid_cost",
    "profile_with_sets",
    "random_init",
    "run_finished",
]

SSL_OBJECTIVE = {"beats": "beats_ssl", "eat": "eat_ssl"}
PARADIGMS: tuple[str, ...] = ("sl", "ssl", "sl-ssl", "sl-equal")
_TRAIN_ORDER: tuple[str, ...] = ("ssl", "sl", "sl-ssl", "sl-equal")  # each sl-ssl after its ssl parent


@dataclass(frozen=True)
class GridProfile:
    """One grid's scale and design.

    Attributes:
        world_preset: the world ``(world_preset, seed)`` used for training pools AND suites.
        architectures, mixes, paradigms: the cells (:data:`PARADIGMS`).
        size: encoder size preset.
        examples: examples (clips) seen by every ``sl`` and ``ssl`` cell.
        post_examples: examples of the supervised post-training of an ``sl-ssl`` cell (its SSL parent's
            ``examples`` come first); ``sl-equal`` sees ``examples + post_examples`` from scratch.
        batch_size: global clips per optimiser step (steps = ceil(examples / batch_size)).
        clip_s: training crop length, seconds. lr, warmup_steps: the optimiser's.
        frozen_backbone_epochs: epochs of ``sl-ssl`` post-training with the encoder frozen.
        probe_epochs, probe_recipe, probe_seeds: the evaluation's probes
            (:class:`~avexlab.evaluate.spec.EvalSpec`; k-means uses the probe seeds too).
        train_seeds: training seeds of every cell; the random-init twins are evaluated at the same seeds.
        existing: released encoders evaluated beside the grid (``birdnet``).
        overrides: dotted config keys set in every cell; arch_overrides: per architecture (``"beats"``) or
            per architecture and paradigm (``"beats/ssl"``), applied after them in that order.
        choices: how each setting was chosen (a rule written before running, or a validation run),
            recorded in ``grid.json`` next to the profile.
    """

    world_preset: str = "quick"
    architectures: tuple[str, ...] = ("efficientnet", "beats", "eat")
    mixes: tuple[str, ...] = ("bio", "general", "all")
    paradigms: tuple[str, ...] = PARADIGMS
    size: str = "tiny"
    examples: int = 960
    post_examples: int = 480
    frozen_backbone_epochs: int = 0
    batch_size: int = 16
    clip_s: float = 5.0
    lr: float = 1e-3
    warmup_steps: int = 5
    probe_epochs: int = 30
    probe_recipe: str = "standardized"
    probe_seeds: tuple[int, ...] = (42,)
    train_seeds: tuple[int, ...] = (0,)
    existing: tuple[str, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)
    arch_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("probe_seeds", "train_seeds", "architectures", "mixes", "paradigms", "existing"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = []
        if not self.train_seeds or len(set(self.train_seeds)) != len(self.train_seeds):
            problems.append(("train_seeds", "distinct seeds, at least one", repr(self.train_seeds)))
        if not self.probe_seeds or len(set(self.probe_seeds)) != len(self.probe_seeds):
            problems.append(("probe_seeds", "distinct seeds, at least one", repr(self.probe_seeds)))
        if self.examples < self.batch_size or self.post_examples < self.batch_size:
            problems.append(
                (
                    "examples",
                    f"at least one batch ({self.batch_size})",
                    f"{self.examples}/{self.post_examples}",
                )
            )
        bad = [p for p in self.paradigms if p not in PARADIGMS]
        if bad:
            problems.append(("paradigms", f"some of {list(PARADIGMS)}", repr(bad)))
        if problems:
            what, expected, found = problems[0]
            raise ConfigError(expected_found(f"grid {what}", expected, found, "Fix the profile."))

    def cell_overrides(self, arch: str, paradigm: str) -> dict[str, Any]:
        """The dotted config keys set in the ``arch`` x ``paradigm`` cells: ``overrides``, then
        ``arch_overrides[arch]``, then ``arch_overrides[f"{arch}/{paradigm}"]`` (a later one wins)."""
        return {
            **self.overrides,
            **self.arch_overrides.get(arch, {}),
            **self.arch_overrides.get(f"{arch}/{paradigm}", {}),
        }

    def cell_examples(self, paradigm: str) -> int:
        """Examples the cell's own training run sees (an ``sl-ssl`` run: its post-training only)."""
        if paradigm == "sl-ssl":
            return self.post_examples
        if paradigm == "sl-equal":
            return self.examples + self.post_examples
        return self.examples

    def cell_steps(self, arch: str, paradigm: str) -> int:
        """Optimiser steps of the ``arch`` x ``paradigm`` cells: ``ceil(examples / batch_size)`` unless an
        override sets ``optim.steps``."""
        over = self.cell_overrides(arch, paradigm)
        batch = int(over.get("optim.batch_size", self.batch_size))
        return int(over.get("optim.steps", math.ceil(self.cell_examples(paradigm) / batch)))


# The quick grid's budget and seeds, and why (recorded in grid.json's profile.choices). Written before any
# run on world v2; nothing in it was chosen by looking at a test split.
QUICK_EXAMPLES = 2_560
QUICK_CHOICES: dict[str, str] = {
    "examples": (
        "rule: the largest multiple of 320 examples (20 steps of 16) for which the whole quick grid with one "
        "training seed (27 runs, 3 twins, 3 probe seeds) is predicted to train and evaluate within 55 min on "
        "the 2-core reference machine (5 min of margin under the 60 min target), from the costs measured by "
        "benchmarks/bench_grid_cost.py on world v2: evaluation ~2 min per encoder per core (5,736 distinct "
        "clips), training 0.56-1.05 core-seconds per 16 examples by architecture and objective. Then "
        "measured: benchmarks/RESULTS.md, 'Quick grid cost'."
    ),
    "post_examples": "rule: half of examples, the ratio of the previous profile (500 post-training steps on "
    "1,000); not tuned",
    "sl-equal": "rule: examples + post_examples, the total of an sl-ssl cell and its SSL parent",
    "train_seeds": "rule: 3, the least the findings' intervals need; more would not fit the cost target",
    "probe_seeds": "rule: 3, likewise",
    "warmup_steps": "rule: 5% of the sl and ssl steps (160), rounded: 8",
    "lr": "chosen on validation by a rule fixed before the run (avexlab choose optim.lr=0.0003,0.001,0.003 over "
    "the five sl and ssl cells of the all mix, training seed 0, --tie 0.01; results/choices/lr/choice.json): "
    "1e-3 kept, 3e-3 tied it (-0.0001 on the mean over cells) and 3e-4 was 0.004 below",
    "batch_size, clip_s": "kept from the previous profile (16 crops of 5 s, the world's clip length); not "
    "tuned",
    "objective.eat.clones": "kept from the previous profile (4 masked clones per clip, EAT's 16 at a quarter "
    "of the cost); not tuned",
}


GRID_PROFILES: dict[str, GridProfile] = {
    # The workshop-scale ablation on a CPU; its budgets and seeds are set by the rules in `choices`.
    "quick": GridProfile(
        examples=QUICK_EXAMPLES,
        post_examples=QUICK_EXAMPLES // 2,
        batch_size=16,
        clip_s=5.0,
        warmup_steps=8,
        train_seeds=(0, 1, 2),
        probe_seeds=(42, 43, 44),
        overrides={"objective.eat.clones": 4},
        choices=QUICK_CHOICES,
    ),
    # Seconds per cell: tests and a first look.
    "smoke": GridProfile(
        world_preset="smoke",
        mixes=("all",),
        examples=16,
        post_examples=8,
        batch_size=4,
        clip_s=2.0,
        warmup_steps=0,
        probe_epochs=5,
        choices={"all": "the smallest sizes that exercise every code path (tests)"},
    ),
    # GPU: the paper's shape at small scale.
    "paper": GridProfile(
        world_preset="paper",
        size="base",
        examples=2_560_000,
        post_examples=640_000,
        batch_size=128,
        clip_s=10.0,
        train_seeds=(0, 1, 2),
        probe_seeds=(42, 43, 44),
        choices={"all": "the paper's shape scaled to the paper preset; not run in this repository"},
    ),
}


def _has_ssl(arch: str) -> bool:
    return arch in SSL_OBJECTIVE


def cell_name(arch: str, mix: str, paradigm: str) -> str:
    return f"{arch}-{mix}-{paradigm}"


def split_cell_name(cell: str) -> tuple[str, str, str]:
    """``(arch, mix, paradigm)`` of a cell name (:func:`cell_name`; the paradigm may hold a dash: ``sl-ssl``)."""
    parts = cell.split("-", 2)
    if len(parts) != 3 or not all(parts):
        raise ConfigError(
            expected_found("a cell name", "<arch>-<mix>-<paradigm>, e.g. beats-all-ssl", repr(cell), "")
        )
    return parts[0], parts[1], parts[2]


def run_dir_of(out: Path, cell: str, train_seed: int) -> Path:
    """Where the grid trains ``cell`` with ``train_seed``: ``out/<cell>/seed-<s>``."""
    return out / cell / f"seed-{train_seed}"


def grid_configs(
    profile: GridProfile, out: Path, seed: int = 0, world_dir: Path | None = None
) -> list[RunConfig]:
    """The run configs of ``profile``, one per (cell, training seed), in a valid training order (each
    ``sl-ssl`` after its ``ssl`` parent of the same seed). ``seed`` is the world's seed."""
    _check_arch_overrides(profile)
    if ("sl-ssl" in profile.paradigms or "sl-equal" in profile.paradigms) and "ssl" not in profile.paradigms:
        raise ConfigError(
            "grid: paradigms 'sl-ssl' and 'sl-equal' need 'ssl' in the same grid (sl-ssl post-trains it; "
            "sl-equal is its equal-budget control)."
        )
    cfgs = []
    for arch in profile.architectures:
        for mix in profile.mixes:
            for paradigm in _TRAIN_ORDER:
                if paradigm not in profile.paradigms or (paradigm != "sl" and not _has_ssl(arch)):
                    continue
                for train_seed in profile.train_seeds:
                    cfgs.append(cell_config(profile, arch, mix, paradigm, train_seed, out, seed, world_dir))
    return cfgs


def cell_config(
    profile: GridProfile,
    arch: str,
    mix: str,
    paradigm: str,
    train_seed: int,
    out: Path,
    world_seed: int,
    world_dir: Path | None,
) -> RunConfig:
    cell = cell_name(arch, mix, paradigm)
    run_dir = run_dir_of(out, cell, train_seed)
    raw: dict[str, Any] = {
        "recipe": "sl" if paradigm == "sl-equal" else paradigm,
        "model": {"name": arch, "size": profile.size},
        "data": {
            "world_preset": profile.world_preset,
            "world_seed": world_seed,
            "world_dir": None if world_dir is None else str(world_dir),
            "mix": mix,
            "clip_s": profile.clip_s,
        },
        "objective": {"kind": SSL_OBJECTIVE[arch] if paradigm == "ssl" else "supervised"},
        "optim": {
            "lr": profile.lr,
            "steps": profile.cell_steps(arch, paradigm),
            "batch_size": profile.batch_size,
            "warmup_steps": profile.warmup_steps,
            "frozen_backbone_epochs": profile.frozen_backbone_epochs if paradigm == "sl-ssl" else 0,
        },
        "runtime": {"seed": train_seed, "out_dir": str(run_dir), "progress": False},
    }
    if paradigm == "sl-ssl":
        raw["model"]["init_checkpoint"] = str(run_dir_of(out, cell_name(arch, mix, "ssl"), train_seed))
    for key, value in profile.cell_overrides(arch, paradigm).items():
        node = raw
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return parse_config(raw, source=f"grid cell {cell} (seed {train_seed})")


def _paradigm_of(cfg: RunConfig) -> str:
    """The grid paradigm of a cell's config (its run directory's parent is named after the cell)."""
    return split_cell_name(Path(cfg.runtime.out_dir).parent.name)[2]


def resolve_profile(profile: str | GridProfile) -> GridProfile:
    """``profile`` itself, or the named one of :data:`GRID_PROFILES` (ConfigError naming them otherwise)."""
    if isinstance(profile, GridProfile):
        return profile
    if profile not in GRID_PROFILES:
        raise ConfigError(f"grid profile {profile!r}: expected one of {sorted(GRID_PROFILES)}.")
    return GRID_PROFILES[profile]


def profile_with_sets(profile: str | GridProfile, sets: Sequence[str]) -> GridProfile:
    """``profile`` with ``avexlab grid --set`` items on top of its own overrides: ``key=value`` sets a config
    key in every cell, ``ARCH:key=value`` in that architecture's cells, ``ARCH/PARADIGM:key=value`` in those
    (values parsed as ``avexlab train --set`` parses them). E.g. ``beats/ssl:objective.kind=masked_spec``
    trains BEATs' SSL cells with masked-spectrogram reconstruction. Keys and architectures are validated with
    the cells (:func:`grid_configs`), before any work."""
    prof = resolve_profile(profile)
    overrides = dict(prof.overrides)
    arch_overrides = {k: dict(v) for k, v in prof.arch_overrides.items()}
    for item in sets:
        target, key, value = _split_set(item)
        if target:
            arch_overrides.setdefault(target, {})[key] = value
        else:
            overrides[key] = value
    return replace(prof, overrides=overrides, arch_overrides=arch_overrides)


def _split_set(item: str) -> tuple[str, str, Any]:
    lhs, eq, value = item.partition("=")
    target, colon, key = lhs.rpartition(":")
    if not eq or not key.strip() or (colon and not target.strip()):
        raise ConfigError(
            expected_found(
                "grid --set",
                "key.sub=value, ARCH:key.sub=value or ARCH/PARADIGM:key.sub=value",
                repr(item),
                "E.g. --set optim.lr=0.001 or --set beats/ssl:objective.kind=masked_spec.",
            )
        )
    return target.strip(), key.strip(), parse_override_value(value)


def run_finished(cfg: RunConfig) -> bool:
    """A run is finished when its encoder, its weights and all its steps are there. A run folder kept
    without its weights (a merged grid's record, :func:`avexlab.experiments.grid_merge.merge_grids`) is
    trained again."""
    enc = Path(cfg.runtime.out_dir) / "encoder.json"
    if not enc.is_file():
        return False
    weights = json.loads(enc.read_text()).get("weights_file", "checkpoint.safetensors")
    return (enc.parent / weights).is_file() and not _unfinished(cfg)


def _unfinished(cfg: RunConfig) -> bool:
    m = Path(cfg.runtime.out_dir) / "metrics.parquet"
    if not m.is_file():
        return True
    steps = pl.read_parquet(m)["step"]
    return steps.len() == 0 or int(steps.max()) < int(cfg.optim.steps or 0)


def _check_arch_overrides(profile: GridProfile) -> None:
    from avexlab.models.registry import list_encoders

    known = sorted(list_encoders())
    for key in profile.arch_overrides:
        arch, sep, paradigm = key.partition("/")
        if arch not in known or (sep and paradigm not in PARADIGMS):
            raise ConfigError(
                expected_found(
                    "grid arch_overrides key (or the ARCH[/PARADIGM]: prefix of a --set)",
                    f"an architecture ({', '.join(known)}) or ARCH/PARADIGM with PARADIGM one of "
                    f"{', '.join(PARADIGMS)}",
                    repr(key),
                    "Fix the key; an override under a key no cell has would be silently ignored.",
                )
            )


GRID_WORLD_KEYS: tuple[str, ...] = (
    "preset",
    "seed",
    "world_version",
    "config",
    "avexlab_version",
    "manifest_sha256",
    "audio_sha256",
)
"""What ``grid.json`` records of the world its cells were trained and evaluated on (from ``world.json``)."""


def random_init(arch: str, size: str, seed: int) -> Any:
    """The random-init twin: ``build_encoder(arch, size)`` under ``torch.manual_seed(seed)`` (the same
    initialisation a run of that seed starts from)."""
    import torch

    from avexlab.models.registry import build_encoder

    torch.manual_seed(seed)
    return build_encoder(arch, size=size)


def grid(
    profile: str | GridProfile = "quick",
    *,
    out: str | Path = "runs/grid",
    seed: int = 0,
    world: str | Path | None = None,
    evaluate: bool = True,
    progress: bool = True,
    workers: int = 1,
    **profile_overrides: Any,
) -> Path:
    """Train every (cell, training seed) of the grid and, with ``evaluate``, evaluate every trained
    encoder, the random-init twins of the training seeds and the profile's released models on every suite
    of the world. Finished runs and evaluations are reused (resume per (cell, seed)).

    Writes ``out/results.parquet`` (the tidy results table plus ``architecture``, ``mix``, ``paradigm``,
    ``objective``, ``ssl_objective``, ``ssl_examples``, ``sl_examples``), ``out/items.parquet`` (the
    per-item outcomes, :data:`avexlab.evaluate.stats.ITEM_SCHEMA`, that intervals and findings resample)
    and ``out/grid.json`` (profile and how its settings were chosen, cells, skipped cells, the world, and
    the cost: wall time of every run and evaluation; what earlier sittings in the folder cost, and the
    parts it was merged from, under ``earlier``). ``seed``: the world's seed. ``world``: a folder for
    the rendered world (default ``out/world``; reused when it holds the profile's world). ``workers``:
    training runs (ready ones, an ``sl-ssl`` after its parent) and then encoder evaluations in parallel
    processes, each with ``cpu_count // workers`` torch threads. Returns the path of ``results.parquet``
    (of ``grid.json`` without ``evaluate``)."""
    from .worlds import open_world

    prof = resolve_profile(profile)
    prof = replace(prof, **profile_overrides) if profile_overrides else prof
    out = Path(out)
    wdir = Path(world) if world is not None else out / "world"
    cfgs = grid_configs(prof, out, seed, wdir)  # every cell validated before any training
    _check_existing(prof)
    _check_reusable(cfgs)
    skipped = [
        {"architecture": a, "paradigm": p, "reason": f"{a} has no SSL hooks (the paper trains it SL only)"}
        for a in prof.architectures
        for p in prof.paradigms
        if p != "sl" and not _has_ssl(a)
    ]
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    world_obj = open_world(prof.world_preset, seed, wdir)  # render (or check) the world once, before training
    render_s = time.perf_counter() - t0
    record: dict[str, Any] = {
        "profile": asdict(prof),
        "seed": seed,
        "cells": sorted({Path(c.runtime.out_dir).parent.name for c in cfgs}, key=_cell_order(cfgs)),
        "runs": [f"{Path(c.runtime.out_dir).parent.name}/{Path(c.runtime.out_dir).name}" for c in cfgs],
        "skipped": skipped,
        # which world the table was measured on: a preset's sizes can change between versions
        "world": {k: world_obj.meta.get(k) for k in GRID_WORLD_KEYS},
        "cost": {"world_open_s": round(render_s, 3), "workers": workers, "cpu_count": os.cpu_count()},
    }
    earlier = _earlier_sittings(out / "grid.json")
    if earlier:
        record["earlier"] = earlier
    t0 = time.perf_counter()
    _train_all(cfgs, wdir, prof, seed, workers, progress)
    record["cost"]["training_wall_s"] = round(time.perf_counter() - t0, 3)
    record["cost"]["runs"] = _run_costs(cfgs)
    _write_record(out, record)
    if not evaluate:
        return out / "grid.json"
    t0 = time.perf_counter()
    evals = _evaluate_grid(prof, cfgs, wdir, out, seed, workers, progress)
    record["cost"]["evaluation_wall_s"] = round(time.perf_counter() - t0, 3)
    record["cost"]["evaluations"] = evals
    _write_record(out, record)
    return out / "results.parquet"


def grid_cost(record: dict[str, Any]) -> dict[str, Any]:
    """What a grid folder cost over all its sittings, from its ``grid.json`` record: ``training_wall_s`` and
    ``evaluation_wall_s`` summed over this sitting, the earlier ones (``earlier``) and those of the parts it
    was merged from, and ``sittings``, how many were added. A rerun that reused everything adds its few
    seconds; the sittings that trained and evaluated are not lost."""
    costs = [e["cost"] for e in record.get("earlier", []) if "cost" in e]
    costs += [record["cost"]] if "cost" in record else []
    for c in list(costs):
        for part in c.get("parts", []):
            costs += [e["cost"] for e in part.get("earlier", []) if "cost" in e]
    total = {"sittings": len(costs)}
    for key in ("training_wall_s", "evaluation_wall_s"):
        total[key] = round(sum(c.get(key, 0.0) for c in costs), 3) if any(key in c for c in costs) else None
    return total


def _earlier_sittings(path: Path) -> list[dict[str, Any]]:
    """What the folder's previous ``grid.json`` recorded of how it was made (its cost, the parts it was
    merged from, its own earlier sittings), oldest first: a resumed or repeated grid measures only what this
    sitting did, so without these the cost of the sitting that trained and evaluated would be lost."""
    if not path.is_file():
        return []
    try:
        prev = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(
            expected_found(
                "the grid folder's record of earlier sittings",
                "a readable grid.json",
                f"{path}: {err}",
                "Restore it from version control or move it away (its cost record would be lost).",
            )
        ) from err
    kept = {k: prev[k] for k in ("cost", "merged_from", "weights") if k in prev}
    return [*prev.get("earlier", []), kept] if kept else list(prev.get("earlier", []))


def eval_key(described: dict[str, Any]) -> str:
    """The key a kept evaluation is reused under: a digest of what it describes (format, weights' hash, name,
    results columns, spec, world, architecture). :func:`avexlab.experiments.grid_merge.merge_grids`
    recomputes it after renaming paths."""
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_record(out: Path, record: dict[str, Any]) -> None:
    atomic_write(out / "grid.json", json.dumps(record, indent=2, default=str))


def _cell_order(cfgs: Sequence[RunConfig]) -> Any:
    order = {Path(c.runtime.out_dir).parent.name: i for i, c in enumerate(cfgs)}
    return lambda name: order[name]


def _check_existing(prof: GridProfile) -> None:
    from avexlab.models.registry import list_encoders

    known = list_encoders()
    bad = [e for e in prof.existing if e not in known]
    if bad:
        raise ConfigError(
            expected_found(
                "grid existing models",
                f"released encoders among {sorted(known)}",
                repr(bad),
                "Fix the names.",
            )
        )


def _run_costs(cfgs: Sequence[RunConfig]) -> list[dict[str, Any]]:
    """Wall time and throughput of every run, as its provenance recorded them."""
    rows = []
    for c in cfgs:
        prov_p = Path(c.runtime.out_dir) / "provenance.json"
        prov = json.loads(prov_p.read_text()) if prov_p.is_file() else {}
        t = prov.get("training", {})
        rows.append(
            {
                "run": f"{Path(c.runtime.out_dir).parent.name}/{Path(c.runtime.out_dir).name}",
                "wall_s": t.get("wall_s"),
                "examples_seen": t.get("examples_seen"),
                "clips_per_s": t.get("clips_per_s"),
            }
        )
    return rows


# ------------------------------------------------------------------------------------------------- train


def _train_all(
    cfgs: Sequence[RunConfig], world_dir: Path, prof: GridProfile, seed: int, workers: int, progress: bool
) -> None:
    """Train every unfinished run; a run whose ``model.init_checkpoint`` is another run of the grid starts
    once that one has finished. ``workers`` > 1: that many runs at a time in spawned processes."""
    todo = [c for c in cfgs if not run_finished(c)]
    bar = _bar(progress, len(cfgs), "train")
    bar.update(len(cfgs) - len(todo))
    in_grid = {str(c.runtime.out_dir) for c in cfgs}
    done: set[str] = {str(c.runtime.out_dir) for c in cfgs if run_finished(c)}

    def ready(c: RunConfig) -> bool:
        parent = None if c.model.init_checkpoint is None else str(c.model.init_checkpoint)
        return parent is None or parent not in in_grid or parent in done

    if workers <= 1:
        from .worlds import open_world, train_run

        world_obj = open_world(prof.world_preset, seed, world_dir)
        for c in todo:  # grid order is a valid training order
            bar.set_description(f"train {Path(c.runtime.out_dir).parent.name}")
            train_run(c, world=world_obj)
            done.add(str(c.runtime.out_dir))
            bar.update(1)
        bar.close()
        return

    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // workers)
    pending = list(todo)
    running: dict[Any, RunConfig] = {}
    with ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(threads,)
    ) as pool:
        while pending or running:
            for c in [c for c in pending if ready(c)][: workers - len(running)]:
                pending.remove(c)
                running[pool.submit(_train_job, c.model_dump(mode="json"), str(world_dir), seed)] = c
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                c = running.pop(fut)
                fut.result()  # a failed run stops the grid with its own error
                done.add(str(c.runtime.out_dir))
                bar.update(1)
    bar.close()


def _train_job(cfg: dict[str, Any], world_dir: str, seed: int) -> str:
    from .worlds import train_run

    c = parse_config(cfg, source="grid run")
    world_obj = _open_world_once(c.data.world_preset, seed, world_dir)
    return str(train_run(c, world=world_obj))


# ---------------------------------------------------------------------------------------------- evaluate

EVAL_FORMAT = 2  # bump when what an evaluation writes changes, so kept evaluations are redone


def _evaluate_grid(
    prof: GridProfile,
    cfgs: Sequence[RunConfig],
    world_dir: Path,
    out: Path,
    seed: int,
    workers: int = 1,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate the random-init twins (one per architecture and training seed), every trained run and the
    released models on every suite; one job per encoder, in ``workers`` processes. Each job's rows and items
    are kept in ``out/eval`` under a key of (weights, evaluation spec, world): a rerun evaluates only what
    changed. Writes ``results.parquet`` and ``items.parquet`` in job order whatever the number of workers;
    returns each job's cost (``name``, ``wall_s``, ``reused``)."""
    names = {str(c.runtime.out_dir): c for c in cfgs}
    jobs: list[dict[str, Any]] = [
        {"kind": "twin", "arch": a, "init_seed": s} for a in prof.architectures for s in prof.train_seeds
    ]
    for c in cfgs:
        jobs.append(
            {
                "kind": "run",
                "arch": c.model.name,
                "mix": c.data.mix,
                "paradigm": _paradigm_of(c),
                "checkpoint": str(c.runtime.out_dir),
                "train_seed": c.runtime.seed,
                **cell_objectives(c, cfgs),
                **_budget(c, names),
            }
        )
    jobs += [{"kind": "existing", "arch": e} for e in prof.existing]
    shared = {
        "profile": asdict(prof),
        "world_dir": str(world_dir),
        "cache": str(out / "embedding-cache"),
        "eval_dir": str(out / "eval"),
        "seed": seed,
    }
    jobs = [{**j, **shared} for j in jobs]
    (out / "eval").mkdir(parents=True, exist_ok=True)
    bar = _bar(progress, len(jobs), "evaluate")
    parts = []
    with contextlib.ExitStack() as stack:
        if workers <= 1:
            done = map(_evaluate_job, jobs)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            threads = max(1, (os.cpu_count() or 1) // workers)
            pool = stack.enter_context(
                ProcessPoolExecutor(
                    workers, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(threads,)
                )
            )
            done = pool.map(_evaluate_job, jobs)  # results in job order
        for part in done:
            parts.append(part)
            bar.update(1)
    bar.close()
    results = pl.concat([pl.read_parquet(p["results"]) for p in parts], how="diagonal_relaxed")
    items = pl.concat([pl.read_parquet(p["items"]) for p in parts], how="diagonal_relaxed")
    atomic_write(out / "results.parquet", lambda tmp: results.write_parquet(tmp))
    atomic_write(out / "items.parquet", lambda tmp: items.write_parquet(tmp))
    return [{k: p[k] for k in ("name", "wall_s", "reused")} for p in parts]


def _budget(cfg: RunConfig, runs: dict[str, RunConfig]) -> dict[str, int]:
    """Examples behind a run's encoder: its own (``sl_examples`` or ``ssl_examples``) and, for a
    post-trained run, its SSL parent's."""
    own = int(cfg.optim.steps or 0) * cfg.optim.batch_size
    if cfg.recipe == "ssl":
        return {"examples_seen": own, "ssl_examples": own, "sl_examples": 0}
    if cfg.recipe == "sl-ssl":
        parent = runs.get(str(cfg.model.init_checkpoint))
        ssl = int(parent.optim.steps or 0) * parent.optim.batch_size if parent is not None else 0
        return {"examples_seen": ssl + own, "ssl_examples": ssl, "sl_examples": own}
    return {"examples_seen": own, "ssl_examples": 0, "sl_examples": own}


def cell_objectives(cfg: RunConfig, cfgs: Sequence[RunConfig]) -> dict[str, str | None]:
    """The cell's own ``objective.kind`` and the SSL objective its encoder came from (its own for ``ssl``,
    its parent's for ``sl-ssl``, None for ``sl``), so a grid run with ``--set ...objective.kind=...`` says
    in every row which objective made the encoder."""
    if cfg.recipe == "ssl":
        return {"objective": cfg.objective.kind, "ssl_objective": cfg.objective.kind}
    if cfg.recipe != "sl-ssl":
        return {"objective": cfg.objective.kind, "ssl_objective": None}
    parent = str(cfg.model.init_checkpoint)
    kinds = [c.objective.kind for c in cfgs if str(c.runtime.out_dir) == parent]
    run = Path(parent) if Path(parent).is_dir() else Path(parent).parent
    if not kinds and (run / "config.yaml").is_file():  # a parent outside this grid: what its run recorded
        from avexlab.config import load_config

        kinds = [load_config(run / "config.yaml").objective.kind]
    return {"objective": cfg.objective.kind, "ssl_objective": kinds[0] if kinds else None}


@functools.cache
def _open_world_once(preset: str, seed: int, world_dir: str) -> Any:
    """The world, opened once per process (its manifests are read at open), however many runs or encoders
    it serves."""
    from .worlds import open_world

    return open_world(preset, seed, Path(world_dir))


def _job_encoder(job: dict[str, Any]) -> tuple[Any, str, dict[str, Any]]:
    """The job's encoder, its name in the table and the columns that describe it."""
    from avexlab.models.checkpoints import load_encoder
    from avexlab.models.registry import build_encoder

    prof = job["profile"]
    if job["kind"] == "twin":
        enc = random_init(job["arch"], prof["size"], job["init_seed"])
        cols = {
            "checkpoint": "random-init", "mix": None, "paradigm": "random-init", "train_seed": job["init_seed"],
            "examples_seen": 0, "ssl_examples": 0, "sl_examples": 0,
        }  # fmt: skip
        return enc, f"{job['arch']}-random-init", cols
    if job["kind"] == "existing":
        enc = build_encoder(job["arch"])
        checkpoint = enc.checkpoint_id() if hasattr(enc, "checkpoint_id") else job["arch"]
        cols = {
            "checkpoint": checkpoint, "mix": None, "paradigm": "existing", "train_seed": None,
            "examples_seen": None, "ssl_examples": None, "sl_examples": None,
        }  # fmt: skip
        return enc, job["arch"], cols
    enc = load_encoder(job["checkpoint"])
    cols = {
        k: job[k]
        for k in (
            "checkpoint",
            "mix",
            "paradigm",
            "train_seed",
            "examples_seen",
            "ssl_examples",
            "sl_examples",
        )
    }
    cols.update(objective=job.get("objective"), ssl_objective=job.get("ssl_objective"))
    return enc, cell_name(job["arch"], job["mix"], job["paradigm"]), cols


def _evaluate_job(job: dict[str, Any]) -> dict[str, Any]:
    """One encoder on every suite of the world: its rows (the tidy table plus the grid's columns) and items
    written under ``eval_dir``, or reused when a kept evaluation has the same key."""
    import torch

    from avexlab.evaluate.embed import encoder_hash
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.stats import ITEM_SCHEMA
    from avexlab.evaluate.suites import evaluate_suites

    t0 = time.perf_counter()
    prof = job["profile"]
    world_obj = _open_world_once(prof["world_preset"], job["seed"], job["world_dir"])
    encoder, name, cols = _job_encoder(job)
    spec = EvalSpec(
        probe_epochs=prof["probe_epochs"],
        probe_recipe=prof["probe_recipe"],
        probe_seeds=tuple(prof["probe_seeds"]),
        cache_dir=job["cache"],
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    key_data = {
        "format": EVAL_FORMAT,
        "weights": encoder_hash(encoder),
        "name": name,
        "columns": cols,
        "spec": spec.result_settings(),
        "world": {k: world_obj.meta.get(k) for k in ("world_version", "manifest_sha256", "audio_sha256")},
        "arch": job["arch"],
    }
    key = eval_key(key_data)
    stem = Path(job["eval_dir"]) / f"{name}-s{cols['train_seed']}" if cols["train_seed"] is not None else None
    stem = stem or Path(job["eval_dir"]) / name
    paths = {"results": stem.with_suffix(".results.parquet"), "items": stem.with_suffix(".items.parquet")}
    meta = stem.with_suffix(".json")
    if (
        meta.is_file()
        and json.loads(meta.read_text()).get("key") == key
        and all(p.is_file() for p in paths.values())
    ):
        return {"name": stem.name, "wall_s": json.loads(meta.read_text()).get("wall_s"), "reused": True,
                **{k: str(v) for k, v in paths.items()}}  # fmt: skip
    if hasattr(encoder, "set_fast_path"):  # inference speed-ups that keep the weights (EfficientNet: BN fold)
        encoder.set_fast_path(compile=False)
    items: list[pl.DataFrame] = []
    frames = [evaluate_suites(encoder, list(world_obj.suites.values()), spec, encoder_name=name, items=items)]
    extra = [
        pl.lit(cols["checkpoint"], dtype=pl.String).alias("checkpoint"),
        pl.lit(job["arch"]).alias("architecture"),
        pl.lit(cols["mix"], dtype=pl.String).alias("mix"),
        pl.lit(cols["paradigm"]).alias("paradigm"),
        pl.lit(cols.get("objective"), dtype=pl.String).alias("objective"),
        pl.lit(cols.get("ssl_objective"), dtype=pl.String).alias("ssl_objective"),
        pl.lit(cols["train_seed"], dtype=pl.Int64).alias("train_seed"),
        pl.lit(cols["examples_seen"], dtype=pl.Int64).alias("examples_seen"),
        pl.lit(cols["ssl_examples"], dtype=pl.Int64).alias("ssl_examples"),
        pl.lit(cols["sl_examples"], dtype=pl.Int64).alias("sl_examples"),
    ]
    results = pl.concat(frames, how="diagonal_relaxed").with_columns(extra)
    item_frame = (
        pl.concat(items, how="diagonal_relaxed").with_columns(
            pl.lit(cols["checkpoint"], dtype=pl.String).alias("checkpoint"),
            pl.lit(cols["train_seed"], dtype=pl.Int64).alias("train_seed"),
        )
        if items
        else pl.DataFrame(schema=ITEM_SCHEMA)
    )
    atomic_write(paths["results"], lambda tmp: results.write_parquet(tmp))
    atomic_write(paths["items"], lambda tmp: item_frame.write_parquet(tmp))
    wall = round(time.perf_counter() - t0, 3)
    atomic_write(meta, json.dumps({"key": key, "described": key_data, "wall_s": wall}, indent=2, default=str))
    return {"name": stem.name, "wall_s": wall, "reused": False, **{k: str(v) for k, v in paths.items()}}


def dict_diff(a: dict[str, Any], b: dict[str, Any], limit: int = 4, skip: tuple[str, ...] = ()) -> str:
    """The keys where two nested dicts differ, dotted (``optim.lr: 0.001 -> 0.003``), the first ``limit``
    and a count of the rest; keys starting with one of ``skip`` are left out."""

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    fa, fb = flat(a), flat(b)
    diff = [
        f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}"
        for k in sorted(fa.keys() | fb.keys())
        if fa.get(k) != fb.get(k)
    ]
    diff = [d for d in diff if not d.startswith(skip)] if skip else diff
    return "; ".join(diff[:limit]) + (f"; +{len(diff) - limit} more" if len(diff) > limit else "")


def _config_diff(old: RunConfig, new: RunConfig, limit: int = 4) -> str:
    from avexlab.config import config_to_dict

    return dict_diff(
        config_to_dict(old), config_to_dict(new), limit, skip=("runtime.out_dir", "runtime.progress")
    )


def _check_reusable(cfgs: Sequence[RunConfig]) -> None:
    """A finished cell is reused only if it is what this grid would train: the same config, and (sl-ssl)
    post-trained from the SSL weights its parent holds now (provenance records their SHA-256). Otherwise a
    ConfigError lists every such cell before any training: reusing it would put another run's numbers under
    this grid's name, and deleting it would lose a result."""
    from avexlab.config import config_hash, load_config
    from avexlab.train.provenance import checkpoint_fingerprint

    finished = {Path(c.runtime.out_dir): run_finished(c) for c in cfgs}
    problems = []
    for c in cfgs:
        run = Path(c.runtime.out_dir)
        if not finished[run]:
            continue
        old = load_config(run / "config.yaml")
        if config_hash(old) != config_hash(c):
            problems.append(f"{run}: trained with another config ({_config_diff(old, c)})")
            continue
        init = None if c.model.init_checkpoint is None else Path(c.model.init_checkpoint)
        if init is None:
            continue
        if not finished.get(init, True):
            problems.append(f"{run}: post-trained {init}, which this grid trains again")
            continue
        prov = (
            json.loads((run / "provenance.json").read_text()) if (run / "provenance.json").is_file() else {}
        )
        recorded = prov.get("input_checkpoints", {}).get("model.init_checkpoint", {}).get("sha256")
        now = checkpoint_fingerprint(init)["sha256"]
        if recorded is not None and recorded != now:
            problems.append(
                f"{run}: post-trained {init} when its weights had SHA-256 {recorded[:12]}, now {str(now)[:12]}"
            )
    if problems:
        raise ConfigError(
            "grid: expected finished cells to be this grid's, found cells that are not:\n  - "
            + "\n  - ".join(problems)
            + "\nMove or delete those run directories to retrain them, or pass another --out."
        )


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _bar(enabled: bool, total: int, desc: str = "grid") -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="run", disable=not enabled)
