"""Training checkpoints: atomic, never unpickling code, enough for an exact resume.

Layout under the run directory::

    checkpoints/step-00000040/weights.safetensors   encoder.* and objective.* tensors (safetensors)
    checkpoints/step-00000040/state.pt              optimiser, scheduler, step/epoch, RNG states, config hash
                                                    (plain tensors / dicts; ``torch.load(weights_only=True)``)
    checkpoints/latest                              the name of the newest COMPLETE checkpoint directory

A checkpoint directory is written as ``step-N.tmp`` (each file and the directory fsynced) and renamed when
complete, then ``latest`` is replaced (:func:`avexlab.fsutil.atomic_write`). A reader only follows
``latest``, so a run killed at any point leaves either the old or the new checkpoint, never half of one, and
the switch survives a power cut (the renames are fsynced). Older checkpoints beyond ``keep`` are removed
after the switch.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from avexlab.errors import CheckpointError
from avexlab.fsutil import atomic_write, fsync_dir

__all__ = ["TrainCheckpoint", "latest_checkpoint", "read_checkpoint", "write_checkpoint"]


@dataclass
class TrainCheckpoint:
    """A loaded training checkpoint: ``weights`` (flat name -> tensor) and ``state`` (plain data)."""

    path: Path
    weights: dict[str, Tensor]
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def write_checkpoint(
    run_dir: Path, step: int, weights: dict[str, Tensor], state: dict[str, Any], keep: int = 2
) -> Path:
    """Write ``checkpoints/step-<step>`` atomically and point ``latest`` at it; keep the newest ``keep``."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f"step-{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    # Clone: safetensors refuses tensors that share storage (e.g. a position table shared by layers).
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in weights.items()}
    atomic_write(tmp / "weights.safetensors", lambda t: save_file(flat, str(t)))
    atomic_write(tmp / "state.pt", lambda t: torch.save(state, t))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    fsync_dir(root)
    atomic_write(root / "latest", final.name)
    old = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
    for p in old[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint directory of ``run_dir``, or None when there is none."""
    pointer = Path(run_dir) / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    target = pointer.parent / pointer.read_text().strip()
    if not target.is_dir():
        raise CheckpointError(
            f"{pointer}: expected it to name a checkpoint directory, found {target.name!r} missing. "
            "The run directory was edited by hand; remove checkpoints/ to start over."
        )
    return target


def read_checkpoint(path: Path) -> TrainCheckpoint:
    """Load a checkpoint directory (safetensors + weights-only torch file; never unpickles code)."""
    path = Path(path)
    try:
        weights = load_file(str(path / "weights.safetensors"))
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated or not ours
        raise CheckpointError(
            f"{path}: expected a training checkpoint (weights.safetensors + state.pt), could not read it "
            f"({type(err).__name__}: {err}). Delete this directory to resume from the previous one."
        ) from None
    for key in ("step", "config_hash", "optimizer", "scheduler"):
        if key not in state:
            raise CheckpointError(f"{path}/state.pt: expected key {key!r}, found keys {sorted(state)}.")
    return TrainCheckpoint(path, weights, state)
