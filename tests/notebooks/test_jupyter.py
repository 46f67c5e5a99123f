"""The Jupyter twins (jupytext percent files) become .ipynb notebooks that nbval runs without errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jupytext")
pytest.importorskip("nbval")

JUPYTER_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "jupyter"
TWINS = sorted(JUPYTER_DIR.glob("*.py"))


def test_there_are_twins() -> None:
    assert TWINS, f"no jupytext twins found in {JUPYTER_DIR}"


@pytest.mark.slow
@pytest.mark.parametrize("path", TWINS, ids=[p.name for p in TWINS])
def test_twin_executes_under_nbval(path: Path, smoke_env: dict[str, str], tmp_path: Path) -> None:
    ipynb = tmp_path / f"{path.stem}.ipynb"
    conv = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupytext",
            "--to",
            "ipynb",
            "--set-kernel",
            "python3",
            "-o",
            str(ipynb),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert conv.returncode == 0, conv.stderr
    # The twins read the committed grid (results/grid) relative to where they run, as from a clone.
    (tmp_path / "results").symlink_to(JUPYTER_DIR.parents[1] / "results", target_is_directory=True)
    # A separate pytest, rooted in tmp_path, so this repository's pytest options do not apply to it.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "--nbval-cell-timeout=300",
            str(ipynb),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, **smoke_env},
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
