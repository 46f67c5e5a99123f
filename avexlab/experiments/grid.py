"""The ablation grid: architectures x data mixes x paradigms, each trained encoder evaluated on the world's
suites next to its random-init twin, in one tidy results table (``avexlab grid --profile quick``).

    results = grid("quick", out="runs/grid")        # polars frame; also out/results.parquet

Paradigms: ``sl`` (supervised from scratch), ``ssl`` (BEATs-style for beats, EAT-style for eat),
``sl-ssl`` (supervised post-training of that SSL run, backbone frozen for the profile's first epochs).
Architectures without SSL hooks (EfficientNet) train ``sl`` only, as in the paper; the skipped cells are
listed in ``grid.json``. The random-init twin of each architecture (``checkpoint == "random-init"``) is
evaluated once, so every trained row has a baseline that differs only in training.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from avexlab.config import RunConfig, parse_config, parse_override_value
from avexlab.errors import ConfigError, expected_found
from avexlab.fsutil import atomic_write

__all__ = ["GRID_PROFILES", "GridProfile", "grid", "grid_configs", "profile_with_sets", "random_init"]

SSL_OBJECTIVE = {"beats": "beats_ssl", "eat": "eat_ssl"}


@dataclass(frozen=True)
class GridProfile:
    """One grid's scale. ``steps`` per run (``sl-ssl`` gets ``post_steps``), global ``batch_size``, crop
    length ``clip_s`` (seconds), the world ``(world_preset, seed)`` used for training pools AND suites;
    ``probe_epochs`` and ``probe_recipe`` (:data:`avexlab.evaluate.spec.PROBE_RECIPES`) of the evaluation's
    linear probes (the evaluation's clustering seed stays the paper's 42). ``twin_seeds``: random-init twins
    evaluated per architecture (init seeds ``seed, seed + 1, ...``; the first is the init every cell starts
    from): two or more measure how far one untrained network lands from another, the yardstick
    :func:`avexlab.evaluate.tables.cells_vs_twins` holds each cell's gain against. ``overrides``: dotted config
    keys set in every cell; ``arch_overrides``: per architecture (key ``"beats"``) or per architecture and
    paradigm (key ``"beats/ssl"``), applied after them in that order (each architecture its own recipe, as in
    the paper)."""

    world_preset: str = "quick"
    architectures: tuple[str, ...] = ("efficientnet", "beats", "eat")
    mixes: tuple[str, ...] = ("bio", "general", "all")
    paradigms: tuple[str, ...] = ("sl", "ssl", "sl-ssl")
    size: str = "tiny"
    steps: int = 60
    post_steps: int = 30
    frozen_backbone_epochs: int = 0
    batch_size: int = 16
    clip_s: float = 5.0
    lr: float = 1e-3
    warmup_steps: int = 5
    probe_epochs: int = 30
    probe_recipe: str = "standardized"
    twin_seeds: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)
    arch_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def cell_overrides(self, arch: str, paradigm: str) -> dict[str, Any]:
        """The dotted config keys set in the ``arch`` x ``paradigm`` cells: ``overrides``, then
        ``arch_overrides[arch]``, then ``arch_overrides[f"{arch}/{paradigm}"]`` (a later one wins)."""
        return {
            **self.overrides,
            **self.arch_overrides.get(arch, {}),
            **self.arch_overrides.get(f"{arch}/{paradigm}", {}),
        }

    def cell_steps(self, arch: str, paradigm: str) -> int:
        """Optimiser steps of the ``arch`` x ``paradigm`` cells."""
        default = self.post_steps if paradigm == "sl-ssl" else self.steps
        return int(self.cell_overrides(arch, paradigm).get("optim.steps", default))


GRID_PROFILES: dict[str, GridProfile] = {
    # CPU, 3-49 minutes per cell at tiny size on one core (5 s random crops, batch 16): the workshop-scale
    # ablation. Measured on the quick world (cells_vs_twins): at 40 steps of batch 8 no cell separated
    # from its random-init twin; at 300 steps the EfficientNet cells did (+.06 to +.15 mean gain) but the
    # then 64-d x 2-layer BEATs/EAT did not (-.02 to +.01); at 1000 steps their SL cells did (+.09 / +.11)
    # and their SSL-only cells stayed level with random init (-.015 to +.010, within the spread of two
    # random-init seeds), hence the wider tiny transformers (see the presets). EfficientNet keeps 300 steps:
    # it separates there and costs ~4x more per step on CPU. At the wider presets, against three random-init
    # seeds (twin_seeds), BEATs-style SSL on mix 'all' gained +.000 at 1000 steps (spread .014) and +.029 at
    # 3000 (its token loss was still falling: 5.26 -> 4.72), hence 3000 BEATs SSL steps; EAT-style SSL gained
    # +.020 at 1000 and +.007 at 3000 (spread .005), so EAT keeps 1000. EAT's own optimiser (Adam betas
    # (0.9, 0.95), weight decay 0.05) for the EAT SSL cells moved them by -.032 to +.010 (bio +.007, general
    # +.000, all -.012 vs -.003 / +.013 / +.020): at this scale their gains are within training noise, so
    # the cells keep the grid's optimiser. With the Indiv. ID suite at 96 test clips (quick world), BEATs
    # SSL on mix 'bio' gained +.005 at 3000 steps (spread .011; token loss still falling, 4.73) and +.036 at
    # 6000 (loss 4.33), hence 6000 BEATs SSL steps for every mix; EAT SSL on 'general' gained +.007 at 1000
    # and +.002 at 2000, so EAT stays at 1000.
    "quick": GridProfile(
        steps=1000,
        post_steps=500,
        batch_size=16,
        clip_s=5.0,
        warmup_steps=20,
        twin_seeds=3,
        overrides={"objective.eat.clones": 4},
        arch_overrides={
            "efficientnet": {"optim.steps": 300},
            "beats/ssl": {"optim.steps": 6000},
        },
    ),
    # Seconds per cell: tests and a first look.
    "smoke": GridProfile(
        world_preset="smoke",
        mixes=("all",),
        steps=4,
        post_steps=2,
        batch_size=4,
        clip_s=2.0,
        warmup_steps=0,
        probe_epochs=5,
    ),
    # GPU: the paper's shape at small scale.
    "paper": GridProfile(
        world_preset="paper", size="base", steps=20000, post_steps=5000, batch_size=128, clip_s=10.0
    ),
}


def _has_ssl(arch: str) -> bool:
    return arch in SSL_OBJECTIVE


def grid_configs(
    profile: GridProfile, out: Path, seed: int = 0, world_dir: Path | None = None
) -> list[RunConfig]:
    """The run configs of ``profile`` in a valid training order (each ``sl-ssl`` after its ``ssl``)."""
    _check_arch_overrides(profile)
    cfgs = []
    for arch in profile.architectures:
        for mix in profile.mixes:
            for paradigm in ("ssl", "sl", "sl-ssl"):
                if paradigm not in profile.paradigms or (paradigm != "sl" and not _has_ssl(arch)):
                    continue
                if paradigm == "sl-ssl" and "ssl" not in profile.paradigms:
                    raise ConfigError(
                        "grid: paradigm 'sl-ssl' needs 'ssl' in the same grid (it post-trains it)."
                    )
                run_dir = out / f"{arch}-{mix}-{paradigm}"
                data = {
                    "world_preset": profile.world_preset,
                    "world_seed": seed,
                    "world_dir": None if world_dir is None else str(world_dir),
                    "mix": mix,
                    "clip_s": profile.clip_s,
                }
                raw: dict[str, Any] = {
                    "recipe": paradigm,
                    "model": {"name": arch, "size": profile.size},
                    "data": data,
                    "objective": {"kind": SSL_OBJECTIVE[arch] if paradigm == "ssl" else "supervised"},
                    "optim": {
                        "lr": profile.lr,
                        "steps": profile.cell_steps(arch, paradigm),
                        "batch_size": profile.batch_size,
                        "warmup_steps": profile.warmup_steps,
                        "frozen_backbone_epochs": profile.frozen_backbone_epochs
                        if paradigm == "sl-ssl"
                        else 0,
                    },
                    "runtime": {"seed": seed, "out_dir": str(run_dir), "progress": False},
                }
                if paradigm == "sl-ssl":
                    raw["model"]["init_checkpoint"] = str(out / f"{arch}-{mix}-ssl")
                for key, value in profile.cell_overrides(arch, paradigm).items():
                    node = raw
                    *path, last = key.split(".")
                    for p in path:
                        node = node.setdefault(p, {})
                    node[last] = value
                cfgs.append(parse_config(raw, source=f"grid cell {run_dir.name}"))
    return cfgs


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


def _check_arch_overrides(profile: GridProfile) -> None:
    from avexlab.models.registry import list_encoders

    known = sorted(list_encoders())
    for key in profile.arch_overrides:
        arch, sep, paradigm = key.partition("/")
        if arch not in known or (sep and paradigm not in ("sl", "ssl", "sl-ssl")):
            raise ConfigError(
                expected_found(
                    "grid arch_overrides key (or the ARCH[/PARADIGM]: prefix of a --set)",
                    f"an architecture ({', '.join(known)}) or ARCH/PARADIGM with PARADIGM one of sl, ssl, "
                    "sl-ssl",
                    repr(key),
                    "Fix the key; an override under a key no cell has would be silently ignored.",
                )
            )


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
    """Train every cell of the grid (resuming finished or interrupted cells from their run dirs) and, with
    ``evaluate``, evaluate each trained encoder and each architecture's random-init twin on every suite of
    the world with :func:`avexlab.evaluate.suites.evaluate_suite`. Writes ``out/results.parquet`` (the
    tidy results table plus ``architecture``, ``mix``, ``paradigm``) and ``out/grid.json`` (profile, cells, skipped
    cells). ``world``: a folder for the rendered world (default ``out/world``; reused when it holds the
    profile's world). ``workers``: encoders evaluated in parallel processes, each with
    ``cpu_count // workers`` torch threads; probes run on one thread, so the rows depend on the worker
    count only through float rounding of embeddings not yet in the cache. Returns the path of ``results.parquet`` (of ``grid.json`` without ``evaluate``)."""
    from .worlds import open_world, train_run

    prof = resolve_profile(profile)
    prof = replace(prof, **profile_overrides) if profile_overrides else prof
    if not isinstance(prof.twin_seeds, int) or prof.twin_seeds < 1:
        raise ConfigError(
            expected_found("grid twin_seeds", "an integer >= 1", repr(prof.twin_seeds), "Set 1 or more.")
        )
    out = Path(out)
    wdir = Path(world) if world is not None else out / "world"
    cfgs = grid_configs(prof, out, seed, wdir)  # every cell validated before any training
    _check_reusable(cfgs)
    skipped = [
        {"architecture": a, "paradigm": p, "reason": f"{a} has no SSL hooks (the paper trains it SL only)"}
        for a in prof.architectures
        for p in prof.paradigms
        if p != "sl" and not _has_ssl(a)
    ]
    out.mkdir(parents=True, exist_ok=True)
    world = open_world(prof.world_preset, seed, wdir)  # render (or check) the world once, before training
    bar = _bar(progress, len(cfgs))
    for cfg in cfgs:
        bar.set_description(Path(cfg.runtime.out_dir).name)
        if not _finished(cfg):
            train_run(cfg, world=world)
        bar.update(1)
    bar.close()
    atomic_write(
        out / "grid.json",
        json.dumps(
            {
                "profile": asdict(prof),
                "seed": seed,
                "cells": [Path(c.runtime.out_dir).name for c in cfgs],
                "skipped": skipped,
                # which world the table was measured on: a preset's sizes can change between versions
                "world": {k: world.meta.get(k) for k in GRID_WORLD_KEYS},
            },
            indent=2,
        ),
    )
    if not evaluate:
        return out / "grid.json"
    _evaluate_grid(prof, cfgs, wdir, out, seed, workers, progress)
    return out / "results.parquet"


GRID_WORLD_KEYS: tuple[str, ...] = (
    "preset",
    "seed",
    "config",
    "avexlab_version",
    "manifest_sha256",
    "audio_sha256",
)
"""What ``grid.json`` records of the world its cells were trained and evaluated on (from ``world.json``)."""


def _finished(cfg: RunConfig) -> bool:
    return (Path(cfg.runtime.out_dir) / "encoder.json").is_file() and not _unfinished(cfg)


def _config_diff(old: RunConfig, new: RunConfig, limit: int = 4) -> str:
    from avexlab.config import config_to_dict

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(config_to_dict(old)), flat(config_to_dict(new))
    diff = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
    diff = [d for d in diff if not d.startswith(("runtime.out_dir", "runtime.progress"))]
    return "; ".join(diff[:limit]) + (f"; +{len(diff) - limit} more" if len(diff) > limit else "")


def _check_reusable(cfgs: Sequence[RunConfig]) -> None:
    """A finished cell is reused only if it is what this grid would train: the same config, and (sl-ssl)
    post-trained from the SSL weights its parent holds now (provenance records their SHA-256). Otherwise a
    ConfigError lists every such cell before any training: reusing it would put another run's numbers under
    this grid's name, and deleting it would lose a result."""
    from avexlab.config import config_hash, load_config
    from avexlab.train.provenance import checkpoint_fingerprint

    finished = {Path(c.runtime.out_dir): _finished(c) for c in cfgs}
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


def _unfinished(cfg: RunConfig) -> bool:
    m = Path(cfg.runtime.out_dir) / "metrics.parquet"
    if not m.is_file():
        return True
    steps = pl.read_parquet(m)["step"]
    return steps.len() == 0 or int(steps.max()) < int(cfg.optim.steps or 0)


def _evaluate_grid(
    prof: GridProfile,
    cfgs: Sequence[RunConfig],
    world_dir: Path,
    out: Path,
    seed: int,
    workers: int = 1,
    progress: bool = True,
) -> pl.DataFrame:
    """Evaluate each architecture's random-init twin and every cell on every suite; one job per encoder,
    in ``workers`` processes (each with ``cpu_count // workers`` torch threads). Rows come back in job
    order whatever the number of workers."""
    jobs = [
        {
            "arch": a,
            "mix": None,
            "paradigm": "random-init",
            "checkpoint": "random-init",
            "init_seed": seed + k,
        }
        for a in prof.architectures
        for k in range(prof.twin_seeds)
    ] + [
        {
            "arch": c.model.name,
            "mix": c.data.mix,
            "paradigm": c.recipe,
            "checkpoint": str(c.runtime.out_dir),
            **cell_objectives(c, cfgs),
        }
        for c in cfgs
    ]
    shared = {
        "profile": asdict(prof),
        "world_dir": str(world_dir),
        "cache": str(out / "embedding-cache"),
        "seed": seed,
    }
    jobs = [{**j, **shared} for j in jobs]
    bar = _bar(progress, len(jobs), "evaluate")
    frames = []
    with contextlib.ExitStack() as stack:
        if workers <= 1:
            done = map(_evaluate_encoder, jobs)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            threads = max(1, (os.cpu_count() or 1) // workers)
            pool = stack.enter_context(
                ProcessPoolExecutor(
                    workers, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(threads,)
                )
            )
            done = pool.map(_evaluate_encoder, jobs)  # results in job order
        for frame in done:
            frames.append(frame)
            bar.update(1)
    bar.close()
    results = pl.concat(frames, how="diagonal_relaxed")
    atomic_write(out / "results.parquet", lambda tmp: results.write_parquet(tmp))
    return results


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


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


@functools.cache
def _open_world_once(preset: str, seed: int, world_dir: str) -> Any:
    """The world, opened once per process (its manifests are read at open), however many encoders it
    evaluates."""
    from .worlds import open_world

    return open_world(preset, seed, Path(world_dir))


def _evaluate_encoder(job: dict[str, Any]) -> pl.DataFrame:
    """One encoder (a random-init twin or a trained cell) on every suite of the world: the tidy table with
    ``checkpoint``, ``architecture``, ``mix``, ``paradigm``, ``objective`` and ``ssl_objective`` columns
    (the last two null for random-init twins)."""
    import torch

    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.suites import evaluate_suite
    from avexlab.models.checkpoints import load_encoder

    prof = job["profile"]
    world = _open_world_once(prof["world_preset"], job["seed"], job["world_dir"])
    if job["checkpoint"] == "random-init":
        encoder = random_init(job["arch"], prof["size"], job["init_seed"])
        name = f"{job['arch']}-random-init"  # the first twin: the init every cell of the grid starts from
        if job["init_seed"] != job["seed"]:
            name += f"-seed{job['init_seed']}"
    else:
        encoder = load_encoder(job["checkpoint"])
        name = f"{job['arch']}-{job['mix']}-{job['paradigm']}"
    spec = EvalSpec(
        probe_epochs=prof["probe_epochs"],
        probe_recipe=prof["probe_recipe"],
        cache_dir=job["cache"],
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    frames = [evaluate_suite(encoder, suite, spec, encoder_name=name) for suite in world.suites.values()]
    return pl.concat(frames, how="diagonal_relaxed").with_columns(
        pl.lit(job["checkpoint"]).alias("checkpoint"),
        pl.lit(job["arch"]).alias("architecture"),
        pl.lit(job["mix"], dtype=pl.String).alias("mix"),
        pl.lit(job["paradigm"]).alias("paradigm"),
        pl.lit(job.get("objective"), dtype=pl.String).alias("objective"),
        pl.lit(job.get("ssl_objective"), dtype=pl.String).alias("ssl_objective"),
    )


def _bar(enabled: bool, total: int, desc: str = "grid") -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="run", disable=not enabled)
