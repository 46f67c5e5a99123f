"""Training: one trainer (AMP, DDP, exact resume), objectives (SL, BEATs-style and EAT-style SSL), recipes.

Core functions: :func:`train` (``avexlab train``) and :func:`grid` (``avexlab grid``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainingDivergedError", "grid", "train"]


def __getattr__(name: str) -> Any:  # lazy: importing avexlab.train does not import torch
    if name in ("train", "TrainingDivergedError"):
        from avexlab.train import trainer

        return getattr(trainer, name)
    if name == "grid":
        from avexlab.train.grids import grid

        return grid
    raise AttributeError(name)
