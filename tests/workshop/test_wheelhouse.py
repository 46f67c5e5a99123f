"""A wheelhouse of a small subset (avexlab's own wheel and typer's closure, pinned to this environment) installs
into a fresh virtual environment with pip's index disabled, inside a network namespace with no network at
all; a package that is not in the folder cannot be installed; avexlab's command line then runs there and
``avexlab workshop check`` names what is missing. The full wheelhouse is measured by
benchmarks/bench_wheelhouse.py (figures in benchmarks/RESULTS.md)."""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from avexlab.workshop.wheelhouse import build_wheelhouse, install_command

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _offline_env() -> dict[str, str]:
    """No pip configuration (this machine's points at local indexes), no PYTHONPATH (the fresh environment
    must import what it installed, not this checkout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def _no_network() -> list[str]:
    """The command prefix that runs a command with no network at all; skips (saying why) where this machine
    does not let an unprivileged user make a network namespace."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("needs `unshare` (util-linux) to take the network away from pip; it is not on PATH")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(
            f"`unshare -n` is not permitted here ({probe.stderr.strip()}); pip's network cannot be removed"
        )
    return [unshare, "-n"]


def _index_reachable(tmp_path: Path) -> None:
    """Building a wheelhouse downloads wheels (that is its job): skip where pip reaches no package index,
    so a machine without one reports why instead of failing in the build."""
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(tmp_path / "probe")]
        + [f"typer=={md.version('typer')}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if probe.returncode != 0:
        last = (probe.stdout + probe.stderr).strip().splitlines()[-1:]
        pytest.skip(f"building the wheelhouse needs pip to reach a package index, and it cannot here: {last}")


def test_subset_wheelhouse_installs_with_no_network(tmp_path: Path) -> None:
    offline = _no_network()
    _index_reachable(tmp_path)
    wh = build_wheelhouse(tmp_path / "wheelhouse", requirements=["typer"], echo=lambda _line: None)
    wheels = {p.name.split("-")[0].lower().replace("_", "-"): p.name for p in wh.glob("*.whl")}
    assert {"avexlab", "typer", "rich"} <= set(wheels), wheels  # rich: one of typer's own dependencies
    assert wheels["typer"].split("-")[1] == md.version("typer"), "pinned to this environment's version"
    assert (wh / "requirements.txt").read_text().split() == ["typer"]
    with zipfile.ZipFile(wh / wheels["avexlab"]) as wheel:
        shipped = {n for n in wheel.namelist() if n.endswith(".py")}
    assert shipped == {p.relative_to(REPO).as_posix() for p in (REPO / "avexlab").rglob("*.py")}, (
        "avexlab's wheel ships exactly the checkout's modules (none left over from an earlier build)"
    )

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_offline_env())
    py = str(venv / "bin" / "python")

    def run(*cmd: str) -> subprocess.CompletedProcess:
        # cwd outside the checkout: `python -c` puts the working folder first on sys.path
        return subprocess.run(
            [*offline, *cmd], capture_output=True, text=True, timeout=300, env=_offline_env(), cwd=tmp_path
        )

    installed = run(*install_command(wh, py))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    version = run(py, "-c", "import typer; print(typer.__version__)")
    assert version.stdout.strip() == md.version("typer"), version.stderr

    absent = run(py, "-m", "pip", "install", "--no-index", "--find-links", str(wh), "polars")
    assert absent.returncode != 0 and "No matching distribution" in absent.stdout + absent.stderr

    own = run(py, "-m", "pip", "install", "--no-index", "--find-links", str(wh), "--no-deps", "avexlab")
    assert own.returncode == 0, own.stdout + own.stderr
    check = run(str(venv / "bin" / "avexlab"), "workshop", "check", "--imports-only")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "PASS  python" in check.stdout and "FAIL  import torch (the encoders)" in check.stdout
    assert str(venv) in run(py, "-c", "import avexlab; print(avexlab.__file__)").stdout
