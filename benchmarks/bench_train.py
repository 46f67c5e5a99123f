"""Training-step throughput (clips/s, MFU on GPU) of avexlab's encoders against in-process baselines.

One step = encoder + linear head on the mean-pooled last layer + BCE on random multi-hot targets + AdamW,
random weights, 10 s clips (white noise, no padding). Paths, all built and timed in the same process on
the same data:

- ``avexlab-eager``: avexlab as built, fp32, SDPA attention, nothing compiled, plain AdamW: the baseline
  every ratio is taken against;
- ``avexlab-fast``: ``set_fast_path()`` (BEATs: FlexAttention on CUDA; layers compiled on CUDA),
  EfficientNet in channels_last, bf16 autocast and fused AdamW on CUDA (fp32 on CPU unless ``--bf16``);
- ``avex``: the ``avex`` package (earthspecies, PyPI 1.4.0) with random weights and its own head:
  ``avex.models.beats_model.Model`` and ``avex.models.efficientnet.Model(pretrained=False)``, the same
  autocast as ``avexlab-fast``. avex is not an avexlab dependency: point ``--avex-path`` at a folder it
  was installed into (``pip install --no-deps --target DIR avex`` plus what it imports); when it cannot
  be imported the row records the exact error and the script measures the eager baseline only.

MFU = 3 x forward FLOPs per clip (``Encoder.flops_per_clip(10.0)``) x clips/s / the card's dense bf16
peak (989 TFLOP/s for H100/H200 SXM). Printed as a markdown table; ``--json`` writes every row.

Usage:
    .venv/bin/python benchmarks/bench_train.py --device cpu --threads 2 --sizes tiny --batch-size 4
    .venv/bin/python benchmarks/bench_train.py --device cuda --sizes base --avex-path /tmp/avexlib
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SR = 16000
NUM_CLASSES = 512
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense, per card


def peak_flops(device: str) -> float | None:
    """Dense bf16 peak FLOP/s of the CUDA card (None on CPU or an unknown card)."""
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


@functools.cache
def forward_flops(name: str, size: str, seconds: float) -> int:
    """``Encoder.flops_per_clip(seconds)`` of ``name``/``size`` (counted once per process, on the CPU)."""
    from avexlab.models import build_encoder

    return build_encoder(name, size).flops_per_clip(seconds)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def autocast(device: str, bf16: bool) -> Any:
    return torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if bf16 else nullcontext()


def import_avex(avex_path: str | None) -> str | None:
    """Make ``avex`` importable; returns None when it imports, else the reason it does not."""
    if avex_path:
        sys.path.insert(0, avex_path)
    try:
        import avex.models.beats_model  # noqa: F401
        import avex.models.efficientnet  # noqa: F401
    except Exception as exc:  # any import failure is reported, not hidden
        return f"avex not importable ({type(exc).__name__}: {exc})"
    return None


def build_avexlab(
    name: str, size: str, device: str, fast: bool, attention_backend: str = "auto"
) -> nn.Module:
    """avexlab encoder with random weights (seed 0): eager fp32 baseline (SDPA, no compile) or the fast
    path (``set_fast_path(attention_backend=...)``: compiled layers on CUDA; EfficientNet channels_last with
    its BatchNorms folded in eval mode, not compiled)."""
    from avexlab.models import build_encoder

    torch.manual_seed(0)
    overrides = {"channels_last": True} if (fast and name == "efficientnet") else {}
    enc = build_encoder(name, size, **overrides).to(device)
    if name == "efficientnet":
        if fast:  # BatchNorm folded in eval (training is unaffected), channels_last, not compiled
            enc.set_fast_path(compile=False)
    elif fast:
        kwargs = {"attention_backend": attention_backend} if name == "beats" else {}
        enc.set_fast_path(**kwargs)  # compile: auto (on CUDA only)
    else:
        kwargs = {"attention_backend": "sdpa"} if name == "beats" else {}
        enc.set_fast_path(compile=False, **kwargs)
    return enc


def build_avex(name: str, device: str, num_classes: int | None) -> nn.Module:
    """avex's BEATs / EfficientNet-B0 with random weights (no hub), its head when ``num_classes``."""
    torch.manual_seed(0)
    if name == "beats":
        from avex.models.beats_model import Model

        return Model(num_classes=num_classes, pretrained=False, device=device).to(device)
    if name == "efficientnet":
        from avex.configs import AudioConfig
        from avex.models.efficientnet import Model

        cfg = AudioConfig(sample_rate=SR, n_fft=800, hop_length=160, win_length=800, n_mels=128)
        return Model(num_classes=num_classes, pretrained=False, device=device, audio_config=cfg).to(device)
    raise KeyError(f"no avex baseline for {name!r}")


class AvexlabClassifier(nn.Module):
    """Encoder -> mean-pooled last layer -> Linear(D, C): ``[B, T]`` -> logits ``[B, C]``."""

    def __init__(self, encoder: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.embed_dim, num_classes).to(next(encoder.parameters()).device)

    def forward(self, wave: Tensor) -> Tensor:
        out = self.encoder(wave)
        return self.head(self.encoder.pool(out))


def time_steps(step: Callable[[], Any], device: str, warmup: int, steps: int) -> list[float]:
    """Seconds per call of ``step`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def train_step_fn(
    model: nn.Module, device: str, batch: int, seconds: float, bf16: bool, fused: bool
) -> Callable[[], float]:
    """A closure running one optimisation step on a fixed random batch; returns nothing heavy."""
    g = torch.Generator(device="cpu").manual_seed(1)
    wave = (0.1 * torch.randn(batch, int(seconds * SR), generator=g)).to(device)
    target = (torch.rand(batch, NUM_CLASSES, generator=g) < 0.01).float().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=fused or None)
    model.train()

    def step() -> None:
        with autocast(device, bf16):
            logits = model(wave)
        loss = F.binary_cross_entropy_with_logits(logits.float(), target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def measure_train(
    name: str,
    size: str,
    path: str,
    *,
    device: str,
    batch: int,
    seconds: float,
    warmup: int,
    steps: int,
    bf16_cpu: bool,
    avex_error: str | None,
) -> dict[str, Any]:
    """One row: clips/s (median step), MFU, peak CUDA memory, or the reason it was skipped.

    ``path``: ``avexlab-eager``, ``avexlab-fast``, ``avexlab-fast-sdpa`` (fast with SDPA attention) or ``avex``.
    """
    cuda = device.startswith("cuda")
    row: dict[str, Any] = {"task": "train", "encoder": name, "size": size, "path": path, "batch": batch}
    if path == "avex" and (avex_error or size != "base" or name not in ("beats", "efficientnet")):
        row["skipped"] = avex_error or "avex has only base-size BEATs / EfficientNet-B0"
        return row
    fast = path != "avexlab-eager"
    bf16 = fast and (cuda or bf16_cpu)
    if path == "avex":
        model = build_avex(name, device, NUM_CLASSES)
    else:
        backend = "sdpa" if path == "avexlab-fast-sdpa" else "auto"
        model = AvexlabClassifier(build_avexlab(name, size, device, fast, backend), NUM_CLASSES)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    step = train_step_fn(model, device, batch, seconds, bf16, fused=fast and cuda)
    times = time_steps(step, device, warmup, steps)
    sec = statistics.median(times)
    row.update(clips_per_s=batch / sec, step_s=sec, bf16=bf16)
    if cuda:
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    peak = peak_flops(device)
    if peak is not None and path != "avex":
        flops = forward_flops(name, size, seconds)
        row["fwd_gflop_per_clip"] = flops / 1e9
        row["mfu"] = 3 * flops * row["clips_per_s"] / peak
    del model, step
    if cuda:
        torch.cuda.empty_cache()
    return row


def add_ratios(rows: list[dict[str, Any]], key: str = "clips_per_s") -> None:
    """``x_eager`` and ``x_avex``: each row's throughput over the same task/encoder/size baseline rows."""
    base = {(r["task"], r["encoder"], r["size"], r["path"]): r.get(key) for r in rows}
    for r in rows:
        if r.get(key) is None:
            continue
        for ref in ("avexlab-eager", "avex"):
            b = base.get((r["task"], r["encoder"], r["size"], ref))
            if b:
                r["x_" + ref.split("-")[-1]] = r[key] / b


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| task | encoder | size | path | batch | clips/s | x eager | x avex | MFU | peak GiB | note |"
    lines = [head, "|" + "---|" * 11]

    def f(v: Any, spec: str) -> str:
        return "" if v is None else format(v, spec)

    for r in rows:
        lines.append(
            f"| {r['task']} | {r['encoder']} | {r['size']} | {r['path']} | {r['batch']} "
            f"| {f(r.get('clips_per_s'), '.2f')} | {f(r.get('x_eager'), '.2f')} | {f(r.get('x_avex'), '.2f')} "
            f"| {f(r.get('mfu'), '.1%')} | {f(r.get('peak_mem_gib'), '.1f')} | {r.get('skipped', '')} |"
        )
    return "\n".join(lines)


def machine(device: str, threads: int) -> dict[str, Any]:
    info = {
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "threads": threads,
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--encoders", default="beats,eat,efficientnet")
    ap.add_argument("--sizes", default="tiny")
    ap.add_argument("--paths", default="avexlab-eager,avexlab-fast,avex")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for the fast/avex paths on CPU too")
    ap.add_argument("--avex-path", default=None, help="folder holding the avex package (not a dependency)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    avex_error = import_avex(args.avex_path) if "avex" in args.paths.split(",") else None
    if avex_error:
        print(f"avex baseline skipped: {avex_error}")
    rows = []
    for size in args.sizes.split(","):
        for name in args.encoders.split(","):
            for path in args.paths.split(","):
                row = measure_train(
                    name,
                    size,
                    path,
                    device=args.device,
                    batch=args.batch_size,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    steps=args.steps,
                    bf16_cpu=args.bf16,
                    avex_error=avex_error,
                )
                rows.append(row)
                print(json.dumps(row), flush=True)
    add_ratios(rows)
    info = machine(args.device, args.threads)
    print(f"\n{info}\n\n{markdown(rows)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
