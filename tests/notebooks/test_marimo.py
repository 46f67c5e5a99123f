"""Every marimo notebook runs top to bottom at smoke scale, and ``marimo check`` finds nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("marimo")

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
# Marimo notebooks only: the Jupyter twins live in notebooks/jupyter/.
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.py"))


def _load(path: Path):  # noqa: ANN202 - returns the notebook's module
    spec = importlib.util.spec_from_file_location(f"_nb_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, f"no marimo notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, smoke_env: dict[str, str], tmp_path: Path) -> None:
    # app.run() executes every cell in dependency order and raises on the first cell that fails.
    module = _load(path)
    outputs, defs = module.app.run()
    assert len(outputs) > 0 and len(defs) > 0


def test_marimo_check_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "marimo", "check", "--strict", *map(str, NOTEBOOKS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
