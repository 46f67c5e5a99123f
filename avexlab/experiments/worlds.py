"""The synthetic world joined to training and evaluation: open (or render) a world, turn its pool and its
backgrounds into training data, train a run config on it, evaluate an encoder on its suites.

This module is where worlds meet the trainer and the evaluators; they themselves receive data
(:class:`avexlab.train.data.PoolSource`, :class:`avexlab.data.suite.Suite`) and never open a world.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from avexlab.errors import ConfigError, DataNotFoundError, expected_found

if TYPE_CHECKING:
    from torch import Tensor

    from avexlab.config import RunConfig
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.synth.world import World
    from avexlab.train.data import PoolSource

__all__ = [
    "evaluate_encoder_on_world",
    "open_world",
    "train_run",
    "world_noise_bank",
    "world_pool_source",
]


def open_world(preset: str, seed: int, world_dir: str | os.PathLike[str] | None = None, **kw: Any) -> World:
    """The synthetic world ``(preset, seed)``: in memory when ``world_dir`` is None; else reopened from
    ``world_dir`` when it holds exactly that world (another preset, seed or config there is a
    ConfigError naming the keys that differ), or rendered there once. ``kw`` goes to
    :func:`avexlab.synth.world.open_or_render_world` (``progress``, ``workers``, ``echo``)."""
    from avexlab.synth import render_world
    from avexlab.synth.world import open_or_render_world

    if world_dir is None:
        return render_world(preset, seed)
    return open_or_render_world(preset, seed, Path(world_dir), **kw)


def world_noise_bank(world: World, sample_rate: int, length_s: float) -> Tensor:
    """The world's background types (wind, rain, stream, insect chorus, ... as its ``background`` knob
    lists) as a noise bank ``[K, length_s x sample_rate]`` float32, deterministic by the world's seed."""
    import numpy as np
    import torch

    from avexlab.augment import noise_bank_from_waves
    from avexlab.synth.dsp import background

    n = int(round(length_s * sample_rate))
    kinds = tuple(world.config.background)
    if not kinds:
        raise ConfigError(
            "augment.noise.source='world': the world has no background types (its 'background' knob is "
            "empty). Use augment.noise.source='folder' or augment.noise.enabled=false."
        )
    waves = [
        torch.from_numpy(
            np.asarray(background(k, np.random.default_rng([world.seed, i, 0xB6]), n, sample_rate))
        )
        for i, k in enumerate(kinds)
    ]
    return noise_bank_from_waves(waves)


def world_pool_source(cfg: RunConfig, world: World | None = None) -> PoolSource:
    """The training data of a run config whose ``data`` names a world (``world_preset``, ``world_seed``,
    ``world_dir``): the world's ``all`` pool (the config's ``mix`` and ``split`` pick from it), its root,
    its content hash and, when ``augment.noise`` draws from the world, its noise bank at the encoder's
    rate (``data.sample_rate``)."""
    from avexlab.data.manifest import manifest_hash
    from avexlab.train.data import PoolSource

    d = cfg.data
    if d.world_preset is None:
        raise ConfigError(
            expected_found(
                "data.world_preset",
                "a world preset",
                "none (the config reads data.manifests)",
                "Use train().",
            )
        )
    world = world if world is not None else open_world(d.world_preset, d.world_seed, d.world_dir)
    pool = world.pools["all"]
    noise = cfg.augment.noise
    bank = None
    if noise.enabled and noise.p > 0 and noise.source == "world":
        bank = world_noise_bank(world, int(d.sample_rate), max(d.clip_s, 1.0))
    return PoolSource(
        manifest=pool,
        root=getattr(world, "root", None),
        hashes={f"world:{d.world_preset}/{d.world_seed}/all": manifest_hash(pool)},
        noise_bank=bank,
    )


def train_run(cfg: RunConfig, *, encoder: Any = None, world: World | None = None) -> Path:
    """Train a run config, whatever its data source (the core of ``avexlab train``): a world's pool through
    :func:`world_pool_source`, ``data.manifests`` as the trainer reads them. Returns the run directory."""
    from avexlab.train.trainer import train

    data = None
    if cfg.data.world_preset is not None:
        from avexlab.train.data import build_train_data

        data = build_train_data(cfg, world_pool_source(cfg, world))
    return train(cfg, encoder=encoder, data=data)


def evaluate_encoder_on_world(
    encoder: Any,
    world: str | os.PathLike[str] | World,
    spec: EvalSpec | None = None,
    *,
    suites: Sequence[str] | None = None,
    encoder_name: str | None = None,
    out: str | os.PathLike[str] | None = None,
    items: list[pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """The core of ``avexlab evaluate --world``: evaluate ``encoder`` (an encoder, a checkpoint path,
    ``NAME:SIZE`` or an embeddings file) on the suites of a synthetic world (a rendered folder or a
    World; default: all suites), and, with ``out``, write the table there (replacing earlier rows of the
    same encoder, checkpoint and benchmark) and its per-item outcomes beside it
    (:func:`avexlab.evaluate.report.items_path`). ``items``: a list that also collects them."""
    from avexlab.evaluate.embed import resolve_encoder
    from avexlab.evaluate.report import save_results
    from avexlab.evaluate.suites import evaluate_suite, evaluate_suites
    from avexlab.synth.world import World

    w = world if isinstance(world, World) else World.open(world)
    names = list(w.suites) if suites is None else list(suites)
    unknown = [s for s in names if s not in w.suites]
    if unknown:
        raise DataNotFoundError(
            expected_found("suite", f"one of {sorted(w.suites)}", f"{unknown}", "Pick a suite of this world.")
        )
    source = encoder
    if isinstance(source, str | os.PathLike) and not os.fspath(source).endswith((".npz", ".parquet")):
        source = resolve_encoder(os.fspath(source))  # resolved once: every suite sees the same weights
    kept: list[pl.DataFrame] = [] if items is None else items
    if isinstance(source, str | os.PathLike):  # precomputed embeddings: aligned to each suite
        results = pl.concat(
            [evaluate_suite(source, w.suites[s], spec, encoder_name=encoder_name, items=kept) for s in names]
        )
    else:  # every distinct clip embedded once, whichever suites share it
        results = evaluate_suites(
            source, [w.suites[s] for s in names], spec, encoder_name=encoder_name, items=kept
        )
    if out is not None:
        save_results(
            results, out, append=True, items=pl.concat(kept, how="diagonal_relaxed") if kept else None
        )
    return results
