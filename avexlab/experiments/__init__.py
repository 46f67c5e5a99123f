"""Experiments: the one room that joins synthetic worlds, training and evaluation.

The trainer (:mod:`avexlab.train`) and the evaluators (:mod:`avexlab.evaluate`) receive data and never open
or render a world; everything that does lives here:

- :func:`open_world`, :func:`world_noise_bank`, :func:`world_pool_source`: a world as training data;
- :func:`train_run`: train a run config whatever its data source (``avexlab train``);
- :func:`evaluate_encoder_on_world`: an encoder on a world's suites (``avexlab evaluate --world``);
- :func:`grid`, :data:`GRID_PROFILES`: the ablation grid (``avexlab grid``);
- :func:`run_demo`: the main job (``avexlab demo`` / ``make demo``);
- :data:`FINDINGS`, :func:`evaluate_findings`: the paper's findings as verdicts on a grid's tables
  (``avexlab findings``).

Names are resolved lazily, so ``import avexlab.experiments`` imports neither torch nor the world.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "open_world": "worlds",
    "world_noise_bank": "worlds",
    "world_pool_source": "worlds",
    "train_run": "worlds",
    "evaluate_encoder_on_world": "worlds",
    "grid": "grid",
    "GRID_PROFILES": "grid",
    "GridProfile": "grid",
    "profile_with_sets": "grid",
    "run_demo": "demo",
    "FINDINGS": "findings",
    "evaluate_findings": "findings",
    "findings_prose": "findings",
    "load_grid_tables": "findings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
