"""Embedding throughput (clips/s) and peak memory per encoder, size and execution path.

Every measurement embeds 5 s clips (white noise, no padding, ``embed(layer=-1, pooling="mean")``) in a
fresh spawned process, so that its peak resident memory (``ru_maxrss``, CPU) or peak CUDA allocation
(``torch.cuda.max_memory_allocated``) belongs to that measurement alone. clips/s is the best of
``--repeats`` timed windows (the one least disturbed by other processes on a shared machine). Rows:

- ``eager-fp32``: avexlab as built (the in-process baseline every ratio is taken against);
- ``channels-last``: EfficientNet with ``channels_last=True``;
- ``bf16`` (GPU, or ``--bf16`` on CPU): bf16 autocast around the same model;
- ``compile`` (``--compile``): ``torch.compile`` of the model's forward, on top of the fastest other path;
- ``torchvision+ref-frontend``: for EfficientNet-B0, the reference implementation's path (the reference
  frontend written with torch.stft + torchaudio MelScale, then torchvision's efficientnet_b0 features and
  average pool), with the SAME weights, so the difference column also checks that avexlab computes the
  same thing;
- ``avex``: the ``avex`` package's BEATs / EfficientNet (base) with random weights, when ``import avex``
  works in this interpreter (it is not a dependency of avexlab; otherwise the row says why it was skipped).
  avex pins its own environment; one way is a throwaway venv that sees this project's packages
  (``python -m venv /tmp/avexvenv``, a ``.pth`` file in it naming ``.venv``'s site-packages,
  ``pip install --no-deps avex`` plus the few modules it then asks for) and
  ``PYTHONPATH=. /tmp/avexvenv/bin/python benchmarks/bench_embed.py``.

The last column compares each path's embeddings of a fixed 2-clip batch with ``eager-fp32``'s (same seed,
same weights): max |difference| relative to the largest |value| of the eager embeddings. With
``--interleave`` all paths of one encoder/size share a process and are timed round-robin, which keeps the
ratios fair when other processes load the machine (memory is then not reported).
Writes a markdown table (``--out``, a .json beside it) and prints it.

Usage:
    .venv/bin/python benchmarks/bench_embed.py --device cpu --threads 2 --sizes tiny,small,base
    .venv/bin/python benchmarks/bench_embed.py --device cuda --batch-size 64 --compile --out runs/bench/embed_gpu.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path
from typing import Any

SR = 16000


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _reference_b0_embedder(state_dict: dict, device: str) -> Any:
    """The reference EfficientNet path: torch.stft/MelScale frontend + torchvision efficientnet_b0."""
    import torch
    import torchaudio
    import torchvision

    model = torchvision.models.efficientnet_b0(weights=None)
    model.load_state_dict(state_dict, strict=False)  # the backbone; the classifier is not used
    model = model.to(device).eval()
    mel = torchaudio.transforms.MelScale(n_mels=128, sample_rate=SR, n_stft=401).to(device)
    window = torch.hann_window(800, device=device)

    def embed(wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, 800, 160, 800, window=window, center=True, return_complex=True).abs().pow(2)
        x = torch.log(mel(spec) + 1e-6)
        lo, hi = x.amin(dim=(-2, -1), keepdim=True), x.amax(dim=(-2, -1), keepdim=True)
        x = ((x - lo) / (hi - lo + 1e-8))[:, None].repeat(1, 3, 1, 1)
        return torch.flatten(model.avgpool(model.features(x)), 1)

    return embed


def _avex_embedder(name: str, device: str) -> Any:
    """avex's own model with random weights (raises ImportError when avex is not installed)."""
    import torch
    from avex.configs import AudioConfig

    if name == "efficientnet":
        from avex.models.efficientnet import Model

        cfg = AudioConfig(sample_rate=SR, n_fft=800, hop_length=160, win_length=800, n_mels=128)
        model = Model(num_classes=None, pretrained=False, device=device, audio_config=cfg).eval()

        def embed(wave: torch.Tensor) -> torch.Tensor:
            return model(wave).mean(dim=(2, 3))

        return embed
    if name == "beats":
        from avex.models.beats_model import Model

        model = Model(num_classes=None, pretrained=False, device=device, return_features_only=True).eval()

        def embed(wave: torch.Tensor) -> torch.Tensor:
            out = model(wave)
            return (out[0] if isinstance(out, tuple) else out).mean(dim=1)

        return embed
    raise ImportError(f"no avex baseline for {name}")


def _build(job: dict[str, Any]) -> Any:
    """The embedding function ``[B, T] -> [B, D]`` of one path (raises ImportError for a missing avex)."""
    import torch

    from avexlab.models import build_encoder

    name, size, path, device = job["name"], job["size"], job["path"], job["device"]
    torch.manual_seed(0)
    if path == "avex":
        embed_fn = _avex_embedder(name, device)
    else:
        overrides = {"channels_last": True} if "channels-last" in path else {}
        enc = build_encoder(name, size, **overrides)
        tv = None
        if name == "efficientnet" and size == "base":
            # shared weights with the reference path, so their embeddings can be compared
            import torchvision

            torch.manual_seed(0)
            tv = torchvision.models.efficientnet_b0(weights=None).state_dict()
            enc.load_state_dict({k: v for k, v in tv.items() if not k.startswith("classifier.")})
        enc = enc.to(device).eval()
        if path.startswith("torchvision+ref-frontend"):
            embed_fn = _reference_b0_embedder(tv, device)
        else:
            forward = torch.compile(enc) if "compile" in path else enc

            def embed_fn(wave: torch.Tensor) -> torch.Tensor:
                return enc.pool(forward(wave), layer=-1, pooling="mean")

    use_bf16 = "bf16" in path

    def run(x: torch.Tensor) -> torch.Tensor:
        with (
            torch.inference_mode(),
            torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16),
        ):
            return embed_fn(x)

    return run


def _inputs(job: dict[str, Any]) -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(1)
    n = int(job["seconds"] * SR)
    batch = (0.1 * torch.randn(job["batch_size"], n, generator=g)).to(job["device"])
    probe = (0.1 * torch.randn(2, n, generator=g)).to(job["device"])
    return batch, probe


def _window(run: Any, batch: Any, job: dict[str, Any]) -> float:
    """clips/s over one timed window of at least ``min_batches`` batches and ``min_time / repeats`` s."""
    import torch

    n_batches, start = 0, time.perf_counter()
    while n_batches < job["min_batches"] or time.perf_counter() - start < job["min_time"] / job["repeats"]:
        run(batch)
        n_batches += 1
    if job["device"] == "cuda":
        torch.cuda.synchronize()
    return n_batches * job["batch_size"] / (time.perf_counter() - start)


def _measure(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in a spawned child: build, warm up, time, and report throughput, memory and probe embeddings."""
    import torch

    torch.set_num_threads(job["threads"])
    rss0 = _peak_rss_mib()
    try:
        run = _build(job)
    except ImportError as err:
        return {**job, "skipped": f"{type(err).__name__}: {err}"}
    batch, probe = _inputs(job)
    probe_out = run(probe).float().cpu()
    for _ in range(job["warmup"]):
        run(batch)
    if job["device"] == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rates = [_window(run, batch, job) for _ in range(job["repeats"])]
    result = {
        **job,
        "clips_per_s": max(rates),  # best window: the least disturbed by other processes
        "clips_per_s_windows": rates,
        "peak_rss_mib": _peak_rss_mib() - rss0,
        "probe": probe_out.numpy().tolist(),
    }
    if job["device"] == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _measure_interleaved(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs in a spawned child: every path of one encoder/size in the same process, timed round-robin
    (A B C A B C ...), so that a shared machine's varying load hits all of them alike. No memory figures."""
    import torch

    torch.set_num_threads(jobs[0]["threads"])
    runs: dict[int, Any] = {}
    results: list[dict[str, Any]] = []
    for i, job in enumerate(jobs):
        try:
            runs[i] = _build(job)
        except ImportError as err:
            results.append({**job, "skipped": f"{type(err).__name__}: {err}"})
    batch, probe = _inputs(jobs[0])
    probes = {i: run(probe).float().cpu() for i, run in runs.items()}
    for run in runs.values():
        for _ in range(jobs[0]["warmup"]):
            run(batch)
    rates: dict[int, list[float]] = {i: [] for i in runs}
    for _ in range(jobs[0]["repeats"]):
        for i, run in runs.items():
            rates[i].append(_window(run, batch, jobs[i]))
    for i in runs:
        results.append(
            {
                **jobs[i],
                "clips_per_s": max(rates[i]),
                "clips_per_s_windows": rates[i],
                "probe": probes[i].numpy().tolist(),
            }
        )
    return results


def _paths(name: str, size: str, device: str, args: argparse.Namespace) -> list[str]:
    paths = ["eager-fp32"]
    bf16 = device == "cuda" or args.bf16
    if name == "efficientnet":
        paths.append("channels-last")
        if bf16:
            paths.append("bf16+channels-last")
    elif bf16:
        paths.append("bf16")
    if args.compile:
        paths.append(paths[-1] + "+compile")
    if name == "efficientnet" and size == "base":
        paths.append("torchvision+ref-frontend")
        if bf16:
            paths.append("torchvision+ref-frontend+bf16")
    if size == "base" and name in ("efficientnet", "beats") and not args.no_avex:
        paths.append("avex")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads per measurement")
    parser.add_argument("--batch-size", type=int, default=None, help="default 8 on CPU, 64 on GPU")
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length in seconds")
    parser.add_argument("--encoders", default="", help="comma-separated names (default: all registered)")
    parser.add_argument("--sizes", default="tiny,small,base")
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds of timed batches (at least)")
    parser.add_argument("--min-batches", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed windows per measurement; the best is reported"
    )
    parser.add_argument("--bf16", action="store_true", help="also bf16 autocast on CPU")
    parser.add_argument("--compile", action="store_true", help="also torch.compile")
    parser.add_argument("--no-avex", action="store_true", help="skip the avex rows")
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="time all paths of an encoder/size round-robin in one process (fairer ratios on a loaded "
        "machine; no memory figures)",
    )
    parser.add_argument(
        "--out", default="runs/bench/embed.md", help="markdown table (a .json is written beside)"
    )
    args = parser.parse_args()

    from avexlab.models import list_encoders

    wanted = [e for e in args.encoders.split(",") if e]
    sizes = [s for s in args.sizes.split(",") if s]
    batch_size = args.batch_size or (64 if args.device == "cuda" else 8)
    jobs = []
    for name, available in list_encoders().items():
        if wanted and name not in wanted:
            continue
        for size in (s for s in available if s in sizes):
            for path in _paths(name, size, args.device, args):
                jobs.append(
                    {
                        "name": name,
                        "size": size,
                        "path": path,
                        "device": args.device,
                        "threads": args.threads,
                        "batch_size": batch_size,
                        "seconds": args.seconds,
                        "min_time": args.min_time,
                        "min_batches": args.min_batches,
                        "warmup": args.warmup,
                        "repeats": args.repeats,
                    }
                )
    ctx = mp.get_context("spawn")
    results: list[dict[str, Any]] = []
    if args.interleave:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for job in jobs:
            groups.setdefault((job["name"], job["size"]), []).append(job)
        batches = list(groups.values())
    else:
        batches = [[job] for job in jobs]
    for group in batches:
        with ctx.Pool(1) as pool:
            got = (
                pool.apply(_measure_interleaved, (group,))
                if args.interleave
                else [pool.apply(_measure, group)]
            )
        for res in got:
            results.append(res)
            shown = res.get("skipped") or f"{res['clips_per_s']:.1f} clips/s"
            print(f"{res['name']:>12} {res['size']:>5} {res['path']:<30} {shown}", flush=True)

    import numpy as np

    device_name = platform.processor() or platform.machine()
    if args.device == "cuda":
        import torch

        device_name = torch.cuda.get_device_name(0)
    lines = [
        f"Embedding throughput, {args.seconds:g} s clips, batch {batch_size}, device {args.device} "
        f"({device_name}, {args.threads} CPU threads), {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| encoder | size | path | clips/s | x eager-fp32 | peak "
        + ("CUDA MiB" if args.device == "cuda" else "RSS MiB")
        + " | max abs diff / max abs (vs eager-fp32) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    baseline = {
        (r["name"], r["size"]): r for r in results if r["path"] == "eager-fp32" and "skipped" not in r
    }
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['name']} | {r['size']} | {r['path']} | skipped: {r['skipped']} | | | |")
            continue
        base = baseline.get((r["name"], r["size"]))
        ratio = r["clips_per_s"] / base["clips_per_s"] if base else float("nan")
        mem_mib = r.get("peak_cuda_mib", r.get("peak_rss_mib"))
        mem = "n/a" if mem_mib is None else f"{mem_mib:.0f}"
        diff = "n/a"
        if base and r["path"] != "avex":
            ref = np.array(base["probe"])
            diff = f"{float(np.abs(np.array(r['probe']) - ref).max() / max(np.abs(ref).max(), 1e-30)):.1e}"
        lines.append(
            f"| {r['name']} | {r['size']} | {r['path']} | {r['clips_per_s']:.1f} | {ratio:.2f} | {mem} | {diff} |"
        )
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    out.with_suffix(".json").write_text(
        json.dumps([{k: v for k, v in r.items() if k != "probe"} for r in results], indent=1)
    )
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
