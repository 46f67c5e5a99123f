"""The main job (``make demo`` / ``avexlab demo``): the whole pipeline once, at a laptop's scale.

1. render the synthetic world of ``(preset, seed)`` (reused when already rendered in ``out/world``);
2. evaluate the baselines on every suite: the non-learned log-mel statistics encoder and the random-init
   twins of EfficientNet-B0, BEATs and EAT (tiny), so every later number shows what learning added;
3. train one tiny encoder supervised on the ``all`` pool for a few minutes and evaluate it the same way;
4. print the paper-shaped table and the focal -> soundscape gaps; write ``results.parquet`` and an HTML
   report.

Every step calls the same library functions as the CLI and the notebooks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

BASELINES: tuple[str, ...] = ("logmel:base", "efficientnet:tiny", "beats:tiny", "eat:tiny")


def demo_train_config(world_dir: Path, preset: str, seed: int, out_dir: Path, steps: int) -> Any:
    """A short supervised run of tiny EfficientNet-B0 on the ``all`` pool (the paper's best data mix)."""
    from avexlab.config import parse_config

    return parse_config(
        {
            "recipe": "sl",
            "model": {"name": "efficientnet", "size": "tiny"},
            "data": {
                "world_preset": preset,
                "world_seed": seed,
                "world_dir": str(world_dir),
                "mix": "all",
                "clip_s": 5.0,
            },
            "optim": {"lr": 2e-3, "steps": steps, "batch_size": 16, "warmup_steps": 10},
            "runtime": {"seed": seed, "device": "auto", "out_dir": str(out_dir), "checkpoint_every": 50},
        },
        source="demo",
    )


def run_demo(
    preset: str = "quick",
    seed: int = 0,
    out: str | Path = "runs/demo",
    *,
    train_steps: int = 150,
    echo: Callable[[str], Any] = print,
    show: Callable[..., Any] | None = None,
) -> pl.DataFrame:
    """Run the main job; returns the tidy results table (also ``out/results.parquet``)."""
    from avexlab.evaluate.report import save_results, write_html_report
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.tables import ood_report, paper_table

    from .worlds import evaluate_encoder_on_world, open_world, train_run

    show = show or (lambda df, title=None: echo(f"{title or ''}\n{df}"))
    out = Path(out)
    world_dir = out / "world"
    world = open_world(preset, seed, world_dir, progress=True, workers=min(4, os.cpu_count() or 1), echo=echo)
    show(world.summary(), title=f"synthetic world {preset!r}, seed {seed}")

    spec = EvalSpec(probe_seeds=(seed,), cache_dir=out / "embedding-cache")
    frames = []
    items: list[pl.DataFrame] = []  # per-item outcomes: `avexlab report` computes intervals from them
    for enc in BASELINES:
        echo(f"evaluating baseline {enc} on every suite ...")
        name = enc.split(":")[0] + ("" if enc.startswith("logmel") else f"-{enc.split(':')[1]} (random init)")
        frames.append(evaluate_encoder_on_world(enc, world, spec, encoder_name=name, items=items))

    if train_steps > 0:
        run_dir = out / "train-efficientnet-tiny-sl-all"
        echo(f"training tiny EfficientNet-B0 (SL, pool 'all', {train_steps} steps) into {run_dir} ...")
        run_dir = train_run(demo_train_config(world_dir, preset, seed, run_dir, train_steps), world=world)
        echo("evaluating the trained encoder on every suite ...")
        frames.append(
            evaluate_encoder_on_world(
                str(run_dir), world, spec, encoder_name="efficientnet-tiny SL all (demo)", items=items
            )
        )

    results = pl.concat(frames, how="diagonal_relaxed")
    save_results(
        results, out / "results.parquet", append=False, items=pl.concat(items, how="diagonal_relaxed")
    )
    show(paper_table(results), title="paper-shaped table (synthetic suites; rows: encoders)")
    gaps = ood_report(results)
    if gaps.height:
        show(gaps, title="focal -> soundscape gap")
    write_html_report(results, out / "report.html")
    echo(f"results: {out / 'results.parquet'}; report: {out / 'report.html'}")
    return results
