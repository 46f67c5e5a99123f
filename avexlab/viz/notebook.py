"""What every notebook shares: the scale selector's choices and its default from the environment.

``smoke`` is for CI (seconds), ``workshop`` for a laptop (minutes), ``paper`` for a GPU. Headless runs
set the default with the environment variable ``AVEXLAB_SCALE``.
"""

from __future__ import annotations

import os
from typing import Literal, cast

from avexlab.errors import ConfigError, expected_found

Scale = Literal["smoke", "workshop", "paper"]
SCALES: tuple[Scale, ...] = ("smoke", "workshop", "paper")
SCALE_ENV = "AVEXLAB_SCALE"

# The synthetic-world preset each scale renders (avexlab.synth presets).
WORLD_PRESET: dict[Scale, str] = {"smoke": "smoke", "workshop": "quick", "paper": "paper"}


def default_scale(fallback: Scale = "workshop") -> Scale:
    """The scale named by ``$AVEXLAB_SCALE``, or ``fallback`` when it is unset or empty."""
    value = os.environ.get(SCALE_ENV, "").strip().lower()
    if not value:
        return fallback
    if value not in SCALES:
        raise ConfigError(
            expected_found(
                SCALE_ENV, f"one of {list(SCALES)}", repr(value), f"Unset it or export {SCALE_ENV}=smoke."
            )
        )
    return cast(Scale, value)


def world_preset(scale: str) -> str:
    """The synthetic-world preset for a notebook scale (``workshop`` renders ``quick``)."""
    if scale not in WORLD_PRESET:
        raise ConfigError(expected_found("scale", f"one of {list(SCALES)}", repr(scale), "Pick one of them."))
    return WORLD_PRESET[cast(Scale, scale)]
