"""The full workshop wheelhouse, once: build it (``avexlab workshop wheelhouse``), then install it into a fresh
virtual environment with pip's index disabled inside a network namespace (``unshare -n``: no network at all),
and run ``avexlab workshop check`` there (against a prepared course when ``--course`` is given).

Reports the wheelhouse's size and number of wheels, the build and install times, the installed
environment's size and the check's verdict. Needs root (or user namespaces) for ``unshare -n``, and disk
for the wheelhouse plus the environment (several GB on Linux x86_64 with the CUDA torch).

    .venv/bin/python benchmarks/bench_wheelhouse.py --out /tmp/wh [--course ~/avexlab-workshop/workshop]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="work folder (wheelhouse/ and venv/ go there)")
    parser.add_argument("--extras", default="notebooks")
    parser.add_argument("--course", default=None, help="a prepared course to check in the new environment")
    args = parser.parse_args()
    work = Path(args.out)
    if work.exists():
        shutil.rmtree(work)
    wh, venv = work / "wheelhouse", work / "venv"

    t0 = time.perf_counter()
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "avexlab.cli",
            "workshop",
            "wheelhouse",
            "--out",
            str(wh),
            "--extras",
            args.extras,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    build_s = time.perf_counter() - t0
    if build.returncode != 0:
        print(build.stdout[-4000:], build.stderr[-4000:], file=sys.stderr)
        return build.returncode
    meta = json.loads((wh / "wheelhouse.json").read_text())

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env["PIP_CONFIG_FILE"] = os.devnull
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    py = str(venv / "bin" / "python")
    offline = ["unshare", "-n"]
    t0 = time.perf_counter()
    install = subprocess.run(
        [
            *offline,
            py,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(wh),
            "-r",
            str(wh / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
    )
    install_s = time.perf_counter() - t0
    if install.returncode != 0:
        print(install.stdout[-4000:], install.stderr[-4000:], file=sys.stderr)
        return install.returncode
    check_cmd = [*offline, str(venv / "bin" / "avexlab"), "workshop", "check"]
    check_cmd += ["--course", args.course] if args.course else ["--imports-only"]
    check = subprocess.run(check_cmd, capture_output=True, text=True, env=env, cwd=work)
    print(check.stdout)

    load = os.getloadavg()[0]
    machine = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores"
    print(
        "| wheels | wheelhouse (GB) | build (s) | offline install (s) | environment (GB) | check | machine | date |"
    )
    print("|---|---|---|---|---|---|---|---|")
    verdict = check.stdout.strip().splitlines()[-1] if check.stdout.strip() else f"exit {check.returncode}"
    print(
        f"| {meta['wheels']} | {meta['total_bytes'] / 1e9:.2f} | {build_s:.0f} | {install_s:.0f} | "
        f"{_size(venv) / 1e9:.2f} | {verdict} | {machine}, load {load:.1f} | {dt.date.today()} |"
    )
    biggest = sorted(meta["files"].items(), key=lambda kv: -kv[1]["bytes"])[:6]
    print("largest wheels: " + ", ".join(f"{n} {f['bytes'] / 1e6:.0f} MB" for n, f in biggest))
    print(f"command: {Path(sys.executable).name} {' '.join(sys.argv)}")
    return check.returncode


if __name__ == "__main__":
    raise SystemExit(main())
