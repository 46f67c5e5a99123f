"""Loading and saving encoder weights. Never unpickles code: ``torch.load(weights_only=True)`` or safetensors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from avexlab.errors import CheckpointError


def load_strict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str | Path) -> None:
    """Load ``state_dict`` into ``model`` requiring exactly the same keys and shapes.

    Raises CheckpointError naming ``source`` and listing missing, unexpected and mis-shaped keys.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or shapes:

        def show(items: list[str]) -> str:
            return ", ".join(items[:12]) + (f" ... (+{len(items) - 12} more)" if len(items) > 12 else "")

        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {show(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {show(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es): {show(shapes)}")
        raise CheckpointError(
            f"{source}: the weights do not fit {type(model).__name__}; " + "; ".join(parts)
            + ". Check that the file is a checkpoint of this architecture and size."
        )
    with torch.no_grad():
        model.load_state_dict(dict(state_dict), strict=True)
