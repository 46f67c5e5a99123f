"""provenance.json: what a run needs to be understood and rerun without avexlab's help."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

__all__ = ["checkpoint_fingerprint", "git_commit", "input_checkpoints", "package_versions", "provenance"]

_PACKAGES = ("avexlab", "torch", "torchaudio", "numpy", "polars", "safetensors", "pydantic", "soundfile")


def git_commit(path: Path | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository holding this package."""
    where = path or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return {"commit": sha, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def checkpoint_fingerprint(path: str | Path) -> dict[str, Any]:
    """``{"path", "sha256"}`` of a checkpoint a run reads: for an avexlab run directory the SHA-256 of its
    encoder weights (from ``encoder.json``; plus the tokenizer file's when it has one), else of the file."""
    from avexlab.models.checkpoints import CONFIG_FILE, file_sha256

    p = Path(path)
    out: dict[str, Any] = {"path": str(p), "sha256": None}
    if p.is_dir() and (p / CONFIG_FILE).is_file():
        out["sha256"] = json.loads((p / CONFIG_FILE).read_text()).get("weights_sha256")
        from avexlab.train.tokenizer import TOKENIZER_FILE

        if (p / TOKENIZER_FILE).is_file():
            out["tokenizer_sha256"] = file_sha256(p / TOKENIZER_FILE)
    elif p.is_file():
        out["sha256"] = file_sha256(p)
    return out


def input_checkpoints(cfg: Any) -> dict[str, dict[str, Any]]:
    """The checkpoints ``cfg`` reads, by config key, each with :func:`checkpoint_fingerprint`: the weights a
    run starts from, the tokenizer its targets come from, the teacher it distils. A result can then be told
    stale when one of them has been retrained since."""
    keys = {"model.init_checkpoint": cfg.model.init_checkpoint}
    if cfg.objective.kind == "beats_ssl" and cfg.objective.beats.tokenizer != "random_projection":
        keys["objective.beats.tokenizer_checkpoint"] = cfg.objective.beats.tokenizer_checkpoint
    if cfg.objective.kind == "beats_tokenizer":
        keys["objective.tokenizer.teacher_checkpoint"] = cfg.objective.tokenizer.teacher_checkpoint
    return {k: checkpoint_fingerprint(v) for k, v in keys.items() if v is not None}


def provenance(
    cfg: Any, chash: str, data: Any, device: torch.device, world_size: int, previous: Path, step: int
) -> str:
    """The provenance record as JSON text (seed, git commit, versions, manifest hashes, device, config
    hash, world size, skipped clips, the checkpoints it reads with their weights' SHA-256). A run that resumes (``step`` > 0) keeps the first record and appends
    a ``resumes`` entry (step, time, commit, device, world size) so every session of the run is listed."""
    dev = str(device)
    if device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(device)})"
    record = {
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "seed": cfg.runtime.seed,
        "config_hash": chash,
        "git": git_commit(),
        "packages": package_versions(),
        "platform": platform.platform(),
        "device": dev,
        "world_size": world_size,
        "manifest_hashes": dict(data.manifest_hashes),
        "num_clips": len(data.dataset),
        "num_classes": data.num_classes,
        "skipped_clips": list(data.skipped),
        "input_checkpoints": input_checkpoints(cfg),
        "resumes": [],
    }
    if step > 0 and previous.is_file():
        first = json.loads(previous.read_text())
        first.setdefault("resumes", []).append(
            {k: record[k] for k in ("created_utc", "git", "device", "world_size", "packages")}
            | {"step": step}
        )
        record = first
    return json.dumps(record, indent=2, default=str)
