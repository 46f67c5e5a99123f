"""Shared small worlds for the synthetic-world tests (in memory: building one costs well under a second)."""

from __future__ import annotations

import pytest

from avexlab.synth import World, render_world


@pytest.fixture(scope="session")
def smoke() -> World:
    """The smoke world of seed 0 at 16 kHz, in memory (audio renders on demand)."""
    return render_world("smoke", 0)
