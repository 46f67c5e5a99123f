"""Wall time of every marimo notebook run top to bottom at one scale (default ``workshop``).

Each notebook runs in a fresh process (``python notebooks/NN_x.py``: marimo executes every cell and
exits 1 if one fails), as a user opening it would. The baseline, run in the same invocation, is a
process that only imports what every notebook imports (marimo, torch, avexlab.viz): the difference is
the notebook's own work. Target (issue 6): each notebook under 5 minutes at workshop scale on 2 cores.

    .venv/bin/python benchmarks/bench_notebooks.py --scale workshop [notebooks/05_call_types.py ...]

Prints one markdown row per notebook (for benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "import marimo, torch, avexlab.viz, avexlab.viz.player"


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t0, proc.returncode, (proc.stdout + proc.stderr)[-2000:]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.py")
    parser.add_argument("--scale", default="workshop", choices=["smoke", "workshop", "paper"])
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per notebook")
    args = parser.parse_args()
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.py"))
    env = {**os.environ, "AVEXLAB_SCALE": args.scale}

    base_s, rc, out = _run([sys.executable, "-c", BASELINE], env, args.timeout)
    if rc != 0:
        print(out, file=sys.stderr)
        return rc
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    today = dt.date.today().isoformat()
    print(f"baseline (imports only): {base_s:.1f} s")
    print("| notebook | scale | wall (s) | minus imports (s) | status | machine | date |")
    print("|---|---|---|---|---|---|---|")
    failed = 0
    for nb in notebooks:
        try:
            wall, rc, out = _run([sys.executable, str(nb)], env, args.timeout)
            status = "ok" if rc == 0 else f"FAILED (exit {rc})"
        except subprocess.TimeoutExpired:
            wall, status, out = args.timeout, f"TIMEOUT (> {args.timeout:.0f} s)", ""
        failed += status != "ok"
        print(
            f"| {nb.name} | {args.scale} | {wall:.1f} | {wall - base_s:.1f} | {status} | {machine} | {today} |"
        )
        if status != "ok":
            print(out, file=sys.stderr)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
