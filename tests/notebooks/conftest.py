from __future__ import annotations

import pytest


@pytest.fixture
def smoke_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Run notebooks at CI scale (AVEXLAB_SCALE=smoke), single-threaded."""
    env = {"AVEXLAB_SCALE": "smoke", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
