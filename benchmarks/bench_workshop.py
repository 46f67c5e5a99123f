"""The workshop's two budgets on this machine: ``avexlab workshop prepare`` (target <= 10 min on 2 cores) and
each section run top to bottom after it (target <= 30 s at workshop scale), with the peak memory of the
whole process tree (target: fits an 8 GB laptop).

Every measured command runs in a fresh process, as a person would run it; its process tree's resident
memory is sampled every 0.2 s (render workers included) and the peak of the sum reported. A section runs
as ``python notebooks/workshop/sN_*.py`` (marimo executes every cell and exits 1 if one fails), once in
learner mode (what a learner waits for) and once in instructor mode (every exercise answered, so the cells
after the checks run too). The baseline is a process that only does the sections' imports.

    .venv/bin/python benchmarks/bench_workshop.py prepare --out /tmp/course   # the course, from scratch
    .venv/bin/python benchmarks/bench_workshop.py sections --course /tmp/course

Prints markdown rows for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "import marimo, numpy, polars, torch, avexlab.viz, avexlab.viz.player, avexlab.workshop.exercises"


def measure(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[float, float, int, str]:
    """``(wall s, peak RSS of the process tree in GB, exit code, output tail)`` of one command."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while proc.poll() is None:
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            break
        try:
            procs = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out = proc.stdout.read() if proc.stdout else ""
    return time.perf_counter() - t0, peak / 1e9, proc.wait(), out[-3000:]


def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} cores, load {load:.1f} at start"


def cmd_prepare(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and args.fresh:
        shutil.rmtree(out)
    env = {**os.environ}
    cmd = [
        sys.executable,
        "-m",
        "avexlab.cli",
        "workshop",
        "prepare",
        "--scale",
        args.scale,
        "--out",
        str(out),
    ]
    machine = _machine()
    wall, peak, rc, tail = measure(cmd, env, args.timeout)
    print(tail)
    print("| step | scale | wall (s) | peak RSS, process tree (GB) | status | machine | date |")
    print("|---|---|---|---|---|---|---|")
    status = "ok" if rc == 0 else f"FAILED (exit {rc})"
    print(f"| prepare | {args.scale} | {wall:.0f} | {peak:.2f} | {status} | {machine} | {dt.date.today()} |")
    print(f"command: {' '.join(cmd)}")
    return rc


def cmd_sections(args: argparse.Namespace) -> int:
    course = Path(args.course).resolve()
    home = course.parent / f"bench-home-{os.getpid()}"
    home.mkdir()
    (home / args.scale).symlink_to(course, target_is_directory=True)
    env = {**os.environ, "AVEXLAB_WORKSHOP_DIR": str(home), "AVEXLAB_SCALE": args.scale}
    env.pop("AVEXLAB_INSTRUCTOR", None)
    try:
        base, base_peak, rc, out = measure([sys.executable, "-c", BASELINE], env, args.timeout)
        if rc != 0:
            print(out, file=sys.stderr)
            return rc
        print(f"baseline (imports only): {base:.1f} s, {base_peak:.2f} GB; {_machine()}")
        print("| section | mode | wall (s) | minus imports (s) | peak RSS (GB) | status | date |")
        print("|---|---|---|---|---|---|---|")
        failed = 0
        for nb in sorted((ROOT / "notebooks" / "workshop").glob("s[1-6]_*.py")):
            for mode in ("learner", "instructor"):
                run_env = {**env, **({"AVEXLAB_INSTRUCTOR": "1"} if mode == "instructor" else {})}
                wall, peak, rc, out = measure([sys.executable, str(nb)], run_env, args.timeout)
                status = "ok" if rc == 0 else f"FAILED (exit {rc})"
                failed += rc != 0
                print(
                    f"| {nb.stem} | {mode} | {wall:.1f} | {wall - base:.1f} | {peak:.2f} | {status} | "
                    f"{dt.date.today()} |"
                )
                if rc != 0:
                    print(out, file=sys.stderr)
        print(f"command: {Path(sys.executable).name} {' '.join(sys.argv)}")
        return 1 if failed else 0
    finally:
        shutil.rmtree(home)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", required=True)
    p.add_argument("--scale", default="workshop")
    p.add_argument("--fresh", action=argparse.BooleanOptionalAction, default=True, help="delete --out first")
    p.add_argument("--timeout", type=float, default=1800.0)
    s = sub.add_parser("sections")
    s.add_argument("--course", required=True)
    s.add_argument("--scale", default="workshop")
    s.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    return cmd_prepare(args) if args.what == "prepare" else cmd_sections(args)


if __name__ == "__main__":
    raise SystemExit(main())
