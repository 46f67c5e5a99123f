from __future__ import annotations

import pytest


@pytest.fixture
def smoke_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run notebooks at CI scale (AVEXLAB_SCALE=smoke), single-threaded, with caches in a temp folder
    (notebooks cache embeddings under $XDG_CACHE_HOME; tests must not write to the user's home)."""
    env = {
        "AVEXLAB_SCALE": "smoke",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("xdg-cache")),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
