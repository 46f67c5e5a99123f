"""Rendering speed of the synthetic world: five-second clips per second for a preset, against the cost of
generating as many white-noise clips in the same run (the baseline ratio).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_synth.py --preset quick --clips 600 --workers 2

A "clip" is one five-second manifest row: a focal/general clip, or one window of a soundscape (a scene of
60 s renders 12 clips at once). Items are sampled evenly from the world's catalogue so the mix of kinds is
the preset's own. Wall-clock rates depend on what else runs on the machine (its load average is printed);
clips per CPU-second of the single process do not, and N idle cores give about N times that.
Prints a markdown row: command, machine, date, figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import multiprocessing as mp
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from avexlab.synth import World, render_world
from avexlab.synth.render import SceneItem


def _clips_of(world: World, key: str) -> int:
    item = world.items[key]
    if isinstance(item, SceneItem):
        return int(item.duration_s // world.config.clip_s)
    return 1


@functools.lru_cache(maxsize=1)
def _world(preset: str, seed: int) -> World:
    return render_world(preset, seed)


def _render_keys(args: tuple[str, int, list[str]]) -> int:
    preset, seed, keys = args
    world = _world(preset, seed)
    total = 0
    for key in keys:
        x = world.render(key)
        total += x.size
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clips", type=int, default=600, help="about how many 5 s clips to render")
    ap.add_argument("--workers", type=int, default=2, help="processes for the parallel measurement")
    a = ap.parse_args()

    world = render_world(a.preset, a.seed)
    keys = sorted(world.items)
    total_clips = sum(_clips_of(world, k) for k in keys)
    step = max(1, total_clips // a.clips)
    sample = keys[::step]
    n_clips = sum(_clips_of(world, k) for k in sample)
    sr, n = world.config.sample_rate, int(world.config.clip_s * world.config.sample_rate)

    # 1 process, in memory (includes building the background bank once, as any run does)
    t0, c0 = time.perf_counter(), time.process_time()
    _render_keys((a.preset, a.seed, sample))
    t_one, cpu_one = time.perf_counter() - t0, time.process_time() - c0

    # N processes, measured once they are started and have built the world and its background bank
    chunks = [sample[i :: a.workers] for i in range(a.workers)]
    ctx = mp.get_context("spawn")  # fork can deadlock on locks held by torch/BLAS threads
    with ProcessPoolExecutor(max_workers=a.workers, mp_context=ctx) as pool:
        list(pool.map(_render_keys, [(a.preset, a.seed, c[:1]) for c in chunks]))
        t0 = time.perf_counter()
        list(pool.map(_render_keys, [(a.preset, a.seed, c) for c in chunks]))
        t_par = time.perf_counter() - t0

    # baseline: as many white-noise clips, generated in this process
    rng = np.random.default_rng(0)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_clips):
        rng.standard_normal(n, dtype=np.float32)
    t_noise, cpu_noise = time.perf_counter() - t0, time.process_time() - c0

    one, par, noise = n_clips / t_one, n_clips / t_par, n_clips / t_noise
    cpu, cpu_noise_rate = n_clips / cpu_one, n_clips / cpu_noise
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python " + " ".join(sys.argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, load {load:.1f}, Python {platform.python_version()}"
    )
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"preset={a.preset} seed={a.seed} sr={sr} clips={n_clips} ({len(sample)} items of {len(keys)})")
    print(
        f"| command | machine | date | clips/s (1 proc) | clips/s ({a.workers} procs) | clips per CPU-second | "
        "white-noise clips/s | synth / noise (CPU time) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| `{cmd}` | {machine} | {today} | {one:.0f} | {par:.0f} | {cpu:.0f} | {noise:.0f} | "
        f"{cpu_noise_rate / cpu:.1f}x |"
    )


if __name__ == "__main__":
    main()
