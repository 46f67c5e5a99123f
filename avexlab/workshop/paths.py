"""Where courses live, with the standard library only (``avexlab workshop check`` must run, and report what
is missing, in an environment whose install went wrong)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HOME_ENV", "workshop_home"]

HOME_ENV = "AVEXLAB_WORKSHOP_DIR"


def workshop_home() -> Path:
    """The folder that holds one course folder per scale: ``$AVEXLAB_WORKSHOP_DIR`` or ``~/avexlab-workshop``."""
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / "avexlab-workshop"
