"""The workshop's JupyterLab twin runs under nbval in instructor mode at smoke scale, and its checks pass
with the solutions filled in (the twin is a plain percent-format Python file, so it also runs as a script)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from avexlab.workshop.exercises import section_exercises

pytest.importorskip("jupytext")
pytest.importorskip("nbval")

TWINS = sorted((Path(__file__).resolve().parents[2] / "notebooks" / "workshop" / "jupyter").glob("s*.py"))

pytestmark = pytest.mark.slow


def test_there_are_twins() -> None:
    assert TWINS


@pytest.mark.parametrize("path", TWINS, ids=[p.stem for p in TWINS])
def test_twin_runs_in_jupyter_with_every_check_passing(
    path: Path, workshop_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AVEXLAB_INSTRUCTOR", "1")
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
            str(ipynb),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "AVEXLAB_INSTRUCTOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout

    tracker = runpy.run_path(str(path))["tracker"]
    wanted = {ex.id for ex in section_exercises(int(path.name[1]))}
    assert set(tracker.latest) == wanted
    assert all(fb.status == "right" and fb.filled for fb in tracker.latest.values()), tracker.latest
