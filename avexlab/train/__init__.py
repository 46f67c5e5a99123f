"""Training: one trainer (AMP, DDP, exact resume), objectives (SL, BEATs-style and EAT-style SSL, masked
spectrogram reconstruction), recipes.

Core function: :func:`train` (the trainer; it receives its data). Training on a synthetic world, and the
ablation grid, live in :mod:`avexlab.experiments` (``experiments.train_run``, ``experiments.grid``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainingDivergedError", "train"]


def __getattr__(name: str) -> Any:  # lazy: importing avexlab.train does not import torch
    if name in ("train", "TrainingDivergedError"):
        from avexlab.train import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
