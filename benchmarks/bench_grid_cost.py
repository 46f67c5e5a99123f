"""Where a grid cell's time goes: one training step split into its stages, and one encoder's evaluation
split into embedding, probes, retrieval and clustering, on a rendered world.

Training (the trainer's own components, in its order, on the world's ``all`` pool): ``data`` (reading and
cropping the clips and collating them: the DataLoader's ``next``), ``augment`` (noise and mixup on the
batch), ``forward`` (frontend + encoder + objective), ``backward``, ``optimizer`` (clip + AdamW step). The
frontend alone is also timed on the same batch (``frontend``, part of ``forward``). Steps are timed after
``--warmup`` untimed steps; medians over ``--steps`` steps.

Evaluation: one random-init encoder on every suite of the world (``EvalSpec`` of the quick grid),
timing each stage with the evaluators' own functions.

Usage:
    .venv/bin/python benchmarks/bench_grid_cost.py --world worlds/quick-0 --arch beats --objective supervised
    .venv/bin/python benchmarks/bench_grid_cost.py --world worlds/quick-0 --eval --arch eat
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch


def train_stages(world_dir: Path, arch: str, objective: str, steps: int, warmup: int, batch: int) -> dict:
    from avexlab.augment import Augmenter
    from avexlab.config import parse_config
    from avexlab.experiments.worlds import open_world, world_pool_source
    from avexlab.models.registry import build_encoder
    from avexlab.train.data import build_train_data, multi_hot
    from avexlab.train.objectives import build_objective
    from avexlab.train.sampler import StepPlan

    world = open_world(json.loads((world_dir / "world.json").read_text())["preset"], 0, world_dir)
    recipe = "sl" if objective == "supervised" else "ssl"
    cfg = parse_config(
        {
            "recipe": recipe,
            "model": {"name": arch, "size": "tiny"},
            "data": {
                "world_preset": world.config.preset,
                "world_dir": str(world_dir),
                "mix": "all",
                "clip_s": 5.0,
            },
            "objective": {"kind": objective, "eat": {"clones": 4}},
            "optim": {"lr": 1e-3, "steps": steps + warmup, "batch_size": batch},
            "runtime": {"device": "cpu", "progress": False},
        }
    )
    data = build_train_data(cfg, world_pool_source(cfg, world))
    torch.manual_seed(0)
    enc = build_encoder(arch, size="tiny")
    obj = build_objective(cfg, enc, data.num_classes)
    aug = Augmenter(cfg.augment, data.noise_bank)
    params = [p for p in [*enc.parameters(), *obj.parameters()] if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    plan = StepPlan(n=len(data.dataset), batch_size=batch, seed=0, weights=data.weights)
    loader = iter(
        torch.utils.data.DataLoader(
            data.dataset, batch_sampler=list(plan.micro_batches(0, 0)), collate_fn=data.collate
        )
    )
    gen = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = defaultdict(list)
    for step in range(steps + warmup):
        t = [time.perf_counter()]
        raw = next(loader)
        t.append(time.perf_counter())
        batch_d: dict[str, Any] = {"wave": raw["wave"], "padding_mask": raw["padding_mask"]}
        if data.num_classes:
            batch_d["targets"] = multi_hot(raw["label_idx"], data.num_classes)
        res = aug(batch_d["wave"], batch_d["padding_mask"], batch_d.get("targets"), generator=gen)
        batch_d.update(wave=res.wave, padding_mask=res.padding_mask, targets=res.targets, generator=gen)
        t.append(time.perf_counter())
        loss, _ = obj.loss(enc, batch_d)
        t.append(time.perf_counter())
        loss.backward()
        t.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t.append(time.perf_counter())
        with torch.no_grad():
            f0 = time.perf_counter()
            enc.frontend(batch_d["wave"], batch_d["padding_mask"]) if hasattr(enc, "frontend") else None
            f1 = time.perf_counter()
        if step >= warmup:
            for name, a, b in zip(
                ("data", "augment", "forward", "backward", "optimizer"), t, t[1:], strict=False
            ):
                times[name].append(b - a)
            times["step"].append(t[-1] - t[0])
            times["frontend"].append(f1 - f0)
    return {k: statistics.median(v) for k, v in times.items()}


def eval_stages(world_dir: Path, arch: str, probe_seeds: int) -> dict:
    from avexlab.evaluate import clustering, probe, retrieval
    from avexlab.evaluate.embed import extract_embeddings
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.suites import evaluate_embeddings
    from avexlab.models.registry import build_encoder
    from avexlab.synth.world import World

    world = World.open(world_dir)
    torch.manual_seed(0)
    enc = build_encoder(arch, size="tiny")
    spec = EvalSpec(probe_seeds=tuple(range(42, 42 + probe_seeds)))
    spent: dict[str, float] = defaultdict(float)
    wrapped = {}
    for mod, name in (
        (probe.LinearProbe, "fit"),
        (retrieval, "retrieval_scores"),
        (clustering, "clustering_scores"),
    ):
        orig = getattr(mod, name)

        def timed(*a: Any, _orig: Any = orig, _key: str = name, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return _orig(*a, **k)
            finally:
                spent[_key] += time.perf_counter() - t0

        wrapped[(mod, name)] = orig
        setattr(mod, name, timed)
    import avexlab.evaluate.suites as suites_mod

    suites_mod.retrieval_scores = retrieval.retrieval_scores
    suites_mod.clustering_scores = clustering.clustering_scores
    clips = 0
    try:
        for suite in world.suites.values():
            for dataset, manifest in suite.manifests.items():
                t0 = time.perf_counter()
                emb = extract_embeddings(enc, manifest, root=suite.root, progress=False)
                spent["embedding"] += time.perf_counter() - t0
                clips += manifest.height
                t0 = time.perf_counter()
                evaluate_embeddings(
                    emb, benchmark=suite.name, dataset=dataset, task_family=suite.task_family,
                    multi_label=suite.multi_label, spec=spec, items=[],
                )  # fmt: skip
                spent["evaluators (all)"] += time.perf_counter() - t0
    finally:
        for (mod, name), orig in wrapped.items():
            setattr(mod, name, orig)
    spent["probe fits"] = spent.pop("fit", 0.0)
    return {"clips embedded": clips, **spent}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--arch", default="beats")
    ap.add_argument("--objective", default="supervised")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval", action="store_true", help="time one encoder's evaluation instead")
    ap.add_argument("--probe-seeds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.eval:
        res = eval_stages(a.world, a.arch, a.probe_seeds)
    else:
        res = train_stages(a.world, a.arch, a.objective, a.steps, a.warmup, a.batch_size)
    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "args": {k: str(v) for k, v in vars(a).items()},
    }
    for k, v in res.items():
        print(f"{k:>20}: {v:.4f}" if isinstance(v, float) else f"{k:>20}: {v}")
    if a.json:
        a.json.write_text(json.dumps({"meta": meta, "result": res}, indent=2))


if __name__ == "__main__":
    main()
