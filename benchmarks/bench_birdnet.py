"""BirdNET embedding throughput (clips/s) on CPU beside avexlab's EfficientNet-B0 fast path, same clips.

The clips are white noise at 16 kHz (the synthetic world's rate; both models' cost is independent of the
content) of ``--seconds`` each, a batch of ``--batch-size``. Rows, all timed in one process round-robin
(A B C A B C ...: a shared machine's varying load hits every row alike), best of ``--repeats`` windows:

- ``birdnet (48 kHz in)``: ``encoder.embed`` of the clips already at 48 kHz (3 s windows, mean-pooled);
- ``birdnet + load_audio 16->48 kHz``: the same plus reading the 16 kHz files at 48 kHz (``load_audio``'s
  torchaudio sinc kernel), what embedding a 16 kHz world costs;
- ``efficientnet-b0 fast path (16 kHz)``: ``build_encoder("efficientnet", "base").set_fast_path()``
  (BatchNorm folded, channels_last), ``embed`` of the 16 kHz clips;
- ``efficientnet-b0 eager (16 kHz)``: the same model as built.

Then, each in a spawned process of its own (so that its peak RSS is its own), BirdNET on one batch of 64
windows with at most N windows per LiteRT invocation (``MAX_WINDOWS_PER_INVOKE``): windows/s and peak RSS,
the figures behind that constant.

Usage:
    .venv/bin/python benchmarks/bench_birdnet.py --threads 2 --seconds 3 10 --out runs/bench/birdnet.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import platform
import time
from pathlib import Path
from typing import Any

SR_WORLD = 16000


def _rows(seconds: float, batch_size: int, repeats: int, min_time: float) -> list[tuple[str, float]]:
    import torch

    from avexlab.audio.io import load_audio, save_audio
    from avexlab.models import build_encoder

    g = torch.Generator().manual_seed(0)
    clips16 = 0.1 * torch.randn(batch_size, int(seconds * SR_WORLD), generator=g)
    # the loader's resampler, through the loader itself (a file per clip, read at 48 kHz)
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    paths = [save_audio(tmp / f"{i}.wav", c, SR_WORLD, subtype="FLOAT") for i, c in enumerate(clips16)]
    clips48 = torch.stack([load_audio(p, 48000)[0] for p in paths])
    birdnet = build_encoder("birdnet")
    fast = build_encoder("efficientnet", "base").eval().set_fast_path()
    eager = build_encoder("efficientnet", "base").eval()

    def birdnet_resampled() -> Any:
        return birdnet.embed(torch.stack([load_audio(p, 48000)[0] for p in paths]))

    runs = {
        "birdnet (48 kHz in)": lambda: birdnet.embed(clips48),
        "birdnet + load_audio 16->48 kHz": birdnet_resampled,
        "efficientnet-b0 fast path (16 kHz)": lambda: fast.embed(clips16),
        "efficientnet-b0 eager (16 kHz)": lambda: eager.embed(clips16),
    }
    for run in runs.values():  # warm-up: interpreter, kernels, resampler cache
        run()
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            n, start = 0, time.perf_counter()
            while n < 2 or time.perf_counter() - start < min_time / repeats:
                run()
                n += 1
            rates[name].append(n * batch_size / (time.perf_counter() - start))
    return [(name, max(r)) for name, r in rates.items()]


def _invoke_size(job: dict[str, Any]) -> dict[str, Any]:
    """In a spawned child: BirdNET on 64 windows with at most ``size`` windows per invocation."""
    import numpy as np
    import torch

    import avexlab.models.birdnet as birdnet_module
    from avexlab.models import build_encoder

    torch.set_num_threads(job["threads"])
    birdnet_module.MAX_WINDOWS_PER_INVOKE = job["size"]
    windows = (0.1 * np.random.default_rng(0).standard_normal((64, 144000))).astype(np.float32)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _vm("VmRSS")  # torch and avexlab imported
    enc = build_encoder("birdnet")
    build_peak = _vm("VmHWM") - before
    Path("/proc/self/clear_refs").write_text("5")  # building parses the model: reset the peak again
    rss0 = _vm("VmRSS")
    enc.run_windows(windows)
    start = time.perf_counter()
    enc.run_windows(windows)
    rate = 64 / (time.perf_counter() - start)
    return {**job, "windows_per_s": rate, "rss_mib": _vm("VmHWM") - rss0, "build_peak_mib": build_peak}


def _vm(key: str) -> float:
    """``VmRSS`` / ``VmHWM`` (the peak) of this process in MiB, from /proc/self/status (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, nargs="*", default=[3.0, 10.0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=6.0, help="seconds of timed batches per row")
    parser.add_argument("--invoke-sizes", type=int, nargs="*", default=[1, 4, 16, 64])
    parser.add_argument("--out", default="runs/bench/birdnet.md")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    lines = [
        f"BirdNET vs EfficientNet-B0 embedding, batch {args.batch_size}, {args.threads} CPU threads, "
        f"{platform.machine()}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| clip | path | clips/s |",
        "|---|---|---:|",
    ]
    for seconds in args.seconds:
        for name, rate in _rows(seconds, args.batch_size, args.repeats, args.min_time):
            lines.append(f"| {seconds:g} s | {name} | {rate:.2f} |")
            print(lines[-1], flush=True)
    if args.invoke_sizes:
        lines += [
            "",
            "| windows per invocation | windows/s (64 windows) | peak RSS over the built encoder, MiB "
            "| peak RSS of building it, MiB |",
            "|---:|---:|---:|---:|",
        ]
        ctx = mp.get_context("spawn")
        for size in args.invoke_sizes:
            with ctx.Pool(1) as pool:
                r = pool.apply(_invoke_size, ({"size": size, "threads": args.threads},))
            lines.append(
                f"| {size} | {r['windows_per_s']:.2f} | {r['rss_mib']:.0f} | {r['build_peak_mib']:.0f} |"
            )
            print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print("\n" + table + f"wrote {out}")


if __name__ == "__main__":
    main()
