"""All GPU speed checks of issue 7 in one run (< 8 minutes on an H100/H200), JSON to ``$OUT``.

For BEATs-base (batch 64), EAT-base (64) and EfficientNet-B0 (256), 10 s clips, random weights:

- SL training step (encoder + linear head + BCE + AdamW) and embedding throughput (``inference_mode``)
  for ``avexlab-eager`` (fp32, SDPA, no compile, plain AdamW), ``avexlab-fast`` (bf16 autocast,
  ``set_fast_path()``: FlexAttention + compiled layers, EfficientNet channels_last, fused AdamW),
  ``avexlab-fast-sdpa`` (BEATs: the same with SDPA, so a FlexAttention failure still leaves a fast
  figure) and ``avex`` (the PyPI package, bf16 autocast; needs ``--avex-path``, see gpu_check.sh);
  clips/s, ratios, MFU (3 x forward FLOPs x clips/s / 989 TFLOP/s) and peak memory;
- numerics: bf16 fast path vs fp32 eager embeddings (relative error), FlexAttention vs SDPA on a padded
  fp32 batch (outputs and the gradients of every parameter, incl. the relative-bias table and gates).

Every row is written to the JSON file as soon as it is measured; a failing row records its error and the
run goes on; rows that would start after ``--budget-s`` are skipped (recorded as such).

``--smoke``: tiny sizes, 2 s clips, batch 2, 2 steps, on whatever device there is (CPU here) — proves
the script runs end to end (tests/models/test_fast_paths.py runs it).

Usage (GPU host, via benchmarks/gpu_check.sh):  python benchmarks/bench_speed_gpu.py --out $OUT/speed_gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from bench_train import (
    SR,
    add_ratios,
    build_avex,
    build_avexlab,
    forward_flops,
    import_avex,
    machine,
    markdown,
    measure_train,
    peak_flops,
    sync,
    time_steps,
)


def measure_embed(
    name: str, size: str, path: str, *, device: str, batch: int, seconds: float, warmup: int, steps: int
) -> dict[str, Any]:
    """Embedding clips/s of one path (bf16 autocast except ``avexlab-eager``)."""
    cuda = device.startswith("cuda")
    row: dict[str, Any] = {"task": "embed", "encoder": name, "size": size, "path": path, "batch": batch}
    bf16 = path != "avexlab-eager" and cuda
    if path == "avex":
        model = build_avex(name, device, None).eval()

        def run(w: torch.Tensor) -> torch.Tensor:
            out = model(w)
            return out.mean(dim=1) if out.dim() == 3 else out.mean(dim=(2, 3))
    else:
        backend = "sdpa" if path == "avexlab-fast-sdpa" else "auto"
        enc = build_avexlab(
            name, size, device, fast=path != "avexlab-eager", attention_backend=backend
        ).eval()

        def run(w: torch.Tensor) -> torch.Tensor:
            return enc.embed(w)

    wave = (0.1 * torch.randn(batch, int(seconds * SR), generator=torch.Generator().manual_seed(1))).to(
        device
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        with torch.inference_mode(), torch.autocast(device.split(":")[0], torch.bfloat16, enabled=bf16):
            run(wave)

    sec = sorted(time_steps(step, device, warmup, steps))[steps // 2]
    row.update(clips_per_s=batch / sec, batch_s=sec, bf16=bf16)
    if cuda:
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    peak = peak_flops(device)
    if peak is not None and path != "avex":
        row["mfu"] = forward_flops(name, size, seconds) * row["clips_per_s"] / peak
    return row


def numerics(name: str, size: str, device: str, seconds: float) -> dict[str, Any]:
    """bf16 fast path vs fp32 eager (embeddings); for BEATs also flex vs sdpa outputs and gradients."""
    from avexlab.models import build_encoder

    cuda = device.startswith("cuda")
    torch.manual_seed(0)
    enc = build_encoder(name, size).to(device)
    n = int(seconds * SR)
    g = torch.Generator().manual_seed(2)
    wave = (0.1 * torch.randn(4, n, generator=g)).to(device)
    mask = torch.zeros(4, n, dtype=torch.bool)
    mask[1, n // 2 :] = True
    mask[3, n // 3 :] = True
    mask = mask.to(device)
    row: dict[str, Any] = {
        "task": "numerics",
        "encoder": name,
        "size": size,
        "path": "fast-vs-eager",
        "batch": 4,
    }
    enc.eval()
    with torch.no_grad():
        if hasattr(enc, "set_fast_path"):
            kw = {"attention_backend": "sdpa"} if name == "beats" else {}
            enc.set_fast_path(compile=False, **kw)
        ref = enc.embed(wave, mask).float()
        if hasattr(enc, "set_fast_path"):
            enc.set_fast_path(compile=False)  # auto backend
        with torch.autocast(device.split(":")[0], torch.bfloat16, enabled=True):
            fast = enc.embed(wave, mask).float()
    row["bf16_embed_rel_err"] = float((fast - ref).norm() / ref.norm())
    if name == "beats":
        enc.train()
        grads = {}
        outs = {}
        for backend in ("sdpa", "flex"):
            if backend == "flex" and not cuda:
                break  # FlexAttention has no CPU backward
            enc.set_fast_path(attention_backend=backend, compile=False)
            enc.zero_grad(set_to_none=True)
            out = enc(wave, mask).tokens
            out.float().pow(2).mean().backward()
            outs[backend] = out.detach()
            grads[backend] = {
                k: p.grad.detach().clone() for k, p in enc.named_parameters() if p.grad is not None
            }
        if "flex" in outs:
            row["flex_vs_sdpa_out_max_abs"] = float((outs["flex"] - outs["sdpa"]).abs().max())
            worst = max(
                (float((grads["flex"][k] - v).norm() / v.norm().clamp_min(1e-30)), k)
                for k, v in grads["sdpa"].items()
            )
            row["flex_vs_sdpa_grad_worst_rel_err"], row["flex_vs_sdpa_grad_worst_param"] = worst
            row["flex_grads_missing"] = sorted(set(grads["sdpa"]) - set(grads["flex"]))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 2 s clips, batch 2, 2 steps")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/bench")) / "speed_gpu.json")
    ap.add_argument("--avex-path", default=os.environ.get("AVEX_PATH"))
    ap.add_argument("--budget-s", type=float, default=420.0, help="start no new row after this many seconds")
    ap.add_argument("--encoders", default="beats,eat,efficientnet")
    args = ap.parse_args()
    t_start = time.monotonic()
    device = args.device
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 eager means fp32
    size, seconds, steps, warmup = ("tiny", 2.0, 2, 1) if args.smoke else ("base", 10.0, 10, 3)
    batches = {"beats": 64, "eat": 64, "efficientnet": 256}
    avex_error = import_avex(args.avex_path)
    info = machine(device, torch.get_num_threads())
    info.update(smoke=args.smoke, avex=avex_error or "imported", argv=vars(args) | {"out": str(args.out)})
    rows: list[dict[str, Any]] = []

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        add_ratios(rows)
        args.out.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))

    def run_row(fn: Any, base: dict[str, Any], **kw: Any) -> None:
        if time.monotonic() - t_start > args.budget_s:
            rows.append({**base, "skipped": f"time budget {args.budget_s:.0f} s spent"})
        else:
            t0 = time.monotonic()
            try:
                rows.append(fn(**kw))
            except Exception as exc:  # recorded in the JSON, the run continues
                rows.append(
                    {**base, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
                )
            rows[-1]["wall_s"] = time.monotonic() - t0
            if device.startswith("cuda"):
                sync(device)
                torch.cuda.empty_cache()
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "trace"}), flush=True)
        save()

    for name in args.encoders.split(","):
        batch = 2 if args.smoke else batches[name]
        base = {"encoder": name, "size": size, "batch": batch}
        run_row(numerics, {**base, "task": "numerics", "path": "fast-vs-eager"}, name=name, size=size,
                device=device, seconds=min(seconds, 5.0))  # fmt: skip
        paths = ["avexlab-eager", "avexlab-fast"] + (["avexlab-fast-sdpa"] if name == "beats" else [])
        if name in ("beats", "efficientnet"):
            paths.append("avex")
        for path in paths:
            for task in ("train", "embed"):
                b = {**base, "task": task, "path": path}
                if path == "avex" and (avex_error or args.smoke):
                    rows.append({**b, "skipped": avex_error or "avex has base sizes only"})
                    save()
                    continue
                if task == "embed":
                    run_row(measure_embed, b, name=name, size=size, path=path, device=device, batch=batch,
                            seconds=seconds, warmup=warmup, steps=steps)  # fmt: skip
                else:
                    run_row(measure_train, b, name=name, size=size, path=path, device=device, batch=batch,
                            seconds=seconds, warmup=warmup, steps=steps, bf16_cpu=False,
                            avex_error=avex_error)  # fmt: skip
    save()
    print(f"\n{info}\n\n{markdown([r for r in rows if r['task'] != 'numerics'])}")
    for r in rows:
        if r["task"] == "numerics":
            print(json.dumps({k: v for k, v in r.items() if k != "trace"}))
    print(f"\nwrote {args.out} in {time.monotonic() - t_start:.0f} s")


if __name__ == "__main__":
    main()
