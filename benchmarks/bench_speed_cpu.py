"""CPU embedding throughput: avexlab's fast path vs its eager fp32 path vs the ``avex`` package (issue 7).

Embeds 5 s clips (white noise, seed 1, no padding; ``embed(layer=-1, pooling="mean")``, avex: mean over
its last-layer frames / feature map) with random weights (seed 0) in ONE process. To be fair on a shared
machine the paths are timed interleaved: ``--rounds`` rounds, each timing every path ``--iters`` times;
the figure is the median seconds per batch over all rounds. Paths:

- ``avexlab-eager``: fp32, SDPA attention, no compile (the baseline of ``x eager``);
- ``avexlab-bf16``: the same model under CPU bf16 autocast (oneDNN; fast on CPUs with avx512_bf16/AMX);
- ``avexlab-bf16w``: BEATs/EAT with bf16 weights (``set_fast_path(weights_dtype=torch.bfloat16)``, fbank
  still float32): no per-call weight casts;
- ``avexlab-chlast``: EfficientNet in channels_last, fp32;
- ``avexlab-fast``: the CPU fast path: BEATs/EAT = ``avexlab-bf16w``, EfficientNet =
  ``set_fast_path()`` (fp32, every BatchNorm folded into its convolution, channels_last; bf16 and
  channels_last alone lose on CPU) (+ ``--compile``: compiled layers / stages);
- ``avex``: ``avex.models.beats_model.Model`` / ``avex.models.efficientnet.Model(pretrained=False)``
  in fp32, as avex runs by default (the baseline of ``x avex``).

Also prints the relative error of each path's embeddings against ``avexlab-eager`` on the timed batch.

Usage:
    .venv/bin/python benchmarks/bench_speed_cpu.py --threads 2 --avex-path /tmp/avexlib
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from bench_train import SR, add_ratios, build_avex, build_avexlab, import_avex, machine
from torch import Tensor


def embedder(
    name: str, size: str, path: str, device: str, compile_layers: bool
) -> Callable[[Tensor], Tensor]:
    """A ``[B, T] -> [B, D]`` embedding function for one path (random weights, seed 0)."""
    if path == "avex":
        model = build_avex(name, device, None).eval()

        def run_avex(wave: Tensor) -> Tensor:
            out = model(wave)
            return out.mean(dim=1) if out.dim() == 3 else out.mean(dim=(2, 3))

        return run_avex
    enc = build_avexlab(name, size, device, fast=False).eval()
    if path == "avexlab-chlast":
        enc.set_fast_path(fold_batchnorm=False, channels_last=True, compile=False)
    transformer = name in ("beats", "eat")
    if transformer and path in ("avexlab-bf16w", "avexlab-fast"):
        enc.set_fast_path(compile=False, weights_dtype=torch.bfloat16)
    if transformer and path == "avexlab-fast" and compile_layers:
        enc.set_fast_path(compile=True)
    if name == "efficientnet" and path == "avexlab-fast":
        enc.set_fast_path(compile=compile_layers)  # BatchNorm folded into the convs, channels_last
    bf16 = path == "avexlab-bf16"

    def run(wave: Tensor) -> Tensor:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            return enc.embed(wave).float()

    return run


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--encoders", default="beats,efficientnet")
    ap.add_argument("--size", default="base")
    ap.add_argument(
        "--paths", default="avexlab-eager,avexlab-bf16,avexlab-bf16w,avexlab-chlast,avexlab-fast,avex"
    )
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also compile the fast path's layers")
    ap.add_argument("--avex-path", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = "cpu"
    paths = args.paths.split(",")
    avex_error = import_avex(args.avex_path) if "avex" in paths else None
    if avex_error:
        print(f"avex baseline skipped: {avex_error}")
    g = torch.Generator().manual_seed(1)
    wave = 0.1 * torch.randn(args.batch_size, int(args.seconds * SR), generator=g)
    rows: list[dict[str, Any]] = []
    for name in args.encoders.split(","):
        fns: dict[str, Callable[[Tensor], Tensor]] = {}
        for path in paths:
            if (path == "avexlab-chlast") != (name == "efficientnet") and path in (
                "avexlab-chlast",
                "avexlab-bf16w",
            ):
                continue  # channels_last is EfficientNet's; bf16 weights are the transformers'
            if path == "avex" and avex_error:
                rows.append({"task": "embed", "encoder": name, "size": args.size, "path": path,
                             "batch": args.batch_size, "skipped": avex_error})  # fmt: skip
                continue
            fns[path] = embedder(name, args.size, path, device, args.compile)
        times: dict[str, list[float]] = {p: [] for p in fns}
        embs: dict[str, Tensor] = {}
        with torch.inference_mode():
            for p, fn in fns.items():  # warm-up (and compile) outside the timed rounds
                embs[p] = fn(wave)
            for _ in range(args.rounds):
                for p, fn in fns.items():
                    for _ in range(args.iters):
                        t0 = time.perf_counter()
                        fn(wave)
                        times[p].append(time.perf_counter() - t0)
        ref = embs.get("avexlab-eager")
        for p in fns:
            sec = statistics.median(times[p])
            row = {"task": "embed", "encoder": name, "size": args.size, "path": p, "batch": args.batch_size,
                   "clips_per_s": args.batch_size / sec, "batch_s": sec}  # fmt: skip
            if ref is not None and p.startswith("avexlab") and embs[p].shape == ref.shape:
                row["rel_err_vs_eager"] = float((embs[p] - ref).norm() / ref.norm())
            rows.append(row)
            print(json.dumps(row), flush=True)
    add_ratios(rows)
    info = machine(device, args.threads)
    print(f"\n{info}\n")
    print("| encoder | size | path | batch | clips/s | x eager | x avex | rel. err vs eager | note |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cps = r.get("clips_per_s")
        print(
            f"| {r['encoder']} | {r['size']} | {r['path']} | {r['batch']} | {'' if cps is None else f'{cps:.2f}'} "
            f"| {_fmt(r.get('x_eager'))} | {_fmt(r.get('x_avex'))} | {_fmt(r.get('rel_err_vs_eager'), '.1e')} "
            f"| {r.get('skipped', '')} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
