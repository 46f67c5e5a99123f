"""A smoke-scale course prepared once per test session (shared by pytest-xdist workers through a lock in
their common temporary folder), and the environment the sections read it from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parents[2]
GRID = REPO / "results" / "grid"


@pytest.fixture(scope="session")
def smoke_course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``avexlab workshop prepare --scale smoke`` into ``<shared tmp>/workshop-home/smoke``, run once for
    the session (the first worker prepares it, the others wait and reuse it). ``$AVEXLAB_TEST_WORKSHOP_COURSE``
    names a course prepared earlier instead (it must sit in a folder named ``smoke``)."""
    from avexlab.workshop.course import prepare

    reuse = os.environ.get("AVEXLAB_TEST_WORKSHOP_COURSE")
    if reuse:  # a developer's shortcut while iterating (CI never sets it): a smoke course prepared earlier
        return Path(reuse)
    base = tmp_path_factory.getbasetemp()
    # under pytest-xdist each worker's base is <run>/popen-gwN: the run's folder is shared by the workers;
    # without xdist the base is the run's own folder (its parent would be shared with other runs)
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    course = shared / "workshop-home" / "smoke"
    with FileLock(str(shared / "workshop-course.lock")):
        if not (course / "course.json").is_file():
            prepare("smoke", course, grid=GRID, echo=lambda _line: None)
    return course


@pytest.fixture
def workshop_env(
    smoke_course: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The sections' environment: the smoke course as the default course, smoke scale, one thread, caches
    in a temporary folder."""
    env = {
        "AVEXLAB_WORKSHOP_DIR": str(smoke_course.parent),
        "AVEXLAB_SCALE": "smoke",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("xdg-cache")),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AVEXLAB_INSTRUCTOR", raising=False)
    return env
