"""Shared by every test folder.

* Puts ``tests/`` on ``sys.path`` so helper modules that are not tests (``tolerance.py``) import as
  ``from tolerance import ...`` whatever folder the test lives in.
* Clears the environment variables that change what avexlab computes, so a developer's shell (or a job
  launcher) cannot change a test's outcome: a ``WORLD_SIZE`` left by torchrun or a cluster job would make
  every in-process ``train`` try to join a process group; ``AVEXLAB_PAPER_DATASETS`` points the dataset
  registry elsewhere; ``AVEXLAB_SCALE`` changes the notebooks' default scale. Tests that need one set it
  themselves (monkeypatch, or a subprocess's own environment).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

OUTSIDE_ENV = (
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "AVEXLAB_PAPER_DATASETS",
    "AVEXLAB_SCALE",
)


@pytest.fixture(autouse=True)
def _no_outside_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OUTSIDE_ENV:
        monkeypatch.delenv(name, raising=False)
