"""Fixtures of the agile-modeling tests: the archive of :mod:`agile_archive` and its store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from agile_archive import HOP_S, WINDOW_S, write_archive  # noqa: E402


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="session")
def built_store(archive: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The archive's store with logmel:tiny (1 s windows, 0.5 s hop, units of 8 windows), built once per
    session. Tests that change a store work on a copy (:func:`store_copy`)."""
    from avexlab.agile.store import build_store

    return build_store(
        archive,
        tmp_path_factory.mktemp("store") / "s",
        "logmel:tiny",
        window_s=WINDOW_S,
        hop_s=HOP_S,
        progress=False,
    )


@pytest.fixture
def store_copy(built_store, tmp_path: Path) -> Path:  # noqa: ANN001
    """A private copy of the session store's folder (same archive root)."""
    import shutil

    return Path(shutil.copytree(built_store.path, tmp_path / "store-copy"))
