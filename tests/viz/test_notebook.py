from __future__ import annotations

import pytest

from avexlab.errors import ConfigError
from avexlab.viz.notebook import SCALE_ENV, default_scale, world_preset


def test_default_scale_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCALE_ENV, raising=False)
    assert default_scale() == "workshop"
    assert default_scale("smoke") == "smoke"
    monkeypatch.setenv(SCALE_ENV, " Paper ")
    assert default_scale() == "paper"
    monkeypatch.setenv(SCALE_ENV, "huge")
    with pytest.raises(ConfigError, match="AVEXLAB_SCALE"):
        default_scale()


def test_world_preset_per_scale() -> None:
    assert [world_preset(s) for s in ("smoke", "workshop", "paper")] == ["smoke", "quick", "paper"]
    with pytest.raises(ConfigError, match="scale"):
        world_preset("tiny")
