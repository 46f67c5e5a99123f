"""What every notebook shares: the scale selector (choices, default from the environment), user-error
messages instead of tracebacks, label columns of a manifest, and loading one clip.

``smoke`` is for CI (seconds), ``workshop`` for a laptop (minutes), ``paper`` for a GPU. Headless runs
set the default with the environment variable ``AVEXLAB_SCALE``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import numpy as np
import polars as pl

from avexlab.errors import AvexlabError, ConfigError, expected_found

Scale = Literal["smoke", "workshop", "paper"]
SCALES: tuple[Scale, ...] = ("smoke", "workshop", "paper")
SCALE_ENV = "AVEXLAB_SCALE"

# The synthetic-world preset each scale renders (avexlab.synth presets).
WORLD_PRESET: dict[Scale, str] = {"smoke": "smoke", "workshop": "quick", "paper": "paper"}
# The grid profile (avexlab.experiments.grid.GRID_PROFILES) each scale trains.
GRID_PROFILE_OF_SCALE: dict[Scale, str] = {"smoke": "smoke", "workshop": "quick", "paper": "paper"}


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


T = TypeVar("T")


def catch_user_error(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T | None, str | None]:
    """Call ``fn``; return ``(result, None)``, or ``(None, message)`` when it raises an
    :class:`~avexlab.errors.AvexlabError` (a problem with the user's input: a folder without audio, an
    unreadable file, a checkpoint of the wrong kind). Any other exception is a bug and propagates.

    Notebooks show the message (``mo.callout``) instead of a traceback.
    """
    try:
        return fn(*args, **kwargs), None
    except AvexlabError as exc:
        return None, f"{type(exc).__name__}: {exc}"


def open_recordings(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None, *, dataset: str = "my-folder"
) -> tuple[pl.DataFrame, str]:
    """Your own recordings for a notebook: ``path`` is a folder (one sub-folder per label, one clip per file:
    :func:`~avexlab.data.sources.prepare_audiofolder`) or a manifest file (``.parquet``/``.csv``/``.jsonl``,
    e.g. from ``avexlab data from-raven``) whose audio lies under ``root`` (default: the manifest's
    folder). Returns ``(manifest, data root)``; every file is checked to exist. Raises DataNotFoundError
    for a path that is neither, and the adapters' errors for bad content."""
    from avexlab.data.manifest import read_manifest
    from avexlab.data.sources import prepare_audiofolder
    from avexlab.errors import DataNotFoundError

    where = Path(path).expanduser()
    if where.is_dir():
        if root is not None and Path(root).expanduser().resolve() != where.resolve():
            raise ConfigError(
                expected_found(
                    "data root",
                    f"none, or the folder itself ({where})",
                    f"{root}",
                    "A folder is its own root: clear the root, or pass a manifest file with that root.",
                )
            )
        return prepare_audiofolder(where, dataset=dataset), str(where)
    if where.is_file():
        base = Path(root).expanduser() if root is not None else where.parent
        return read_manifest(where, root=base, check_files=True), str(base)
    raise DataNotFoundError(
        expected_found(
            "recordings",
            "a folder of recordings (<label>/<file>) or a manifest file (.parquet, .csv, .jsonl)",
            f"nothing at {where}",
            "Check the path; `avexlab data from-folder | from-raven | from-sonic-visualiser` make manifests.",
        )
    )


LABEL_COLUMNS: tuple[str, ...] = ("call_type", "individual", "species", "taxon_group")


def label_columns(manifest: pl.DataFrame, candidates: Sequence[str] = LABEL_COLUMNS) -> pl.DataFrame:
    """The per-clip label columns a map can be coloured by and clusters scored against: each of
    ``candidates`` that is set on every row with at least two distinct values, plus ``label`` (the clip's
    only label) when every row of the ``labels`` list column holds exactly one and it repeats no other
    column. ``[N]`` rows, strings."""
    cols = [
        pl.col(c).cast(pl.String)
        for c in candidates
        if c in manifest.columns and manifest[c].null_count() == 0 and manifest[c].n_unique() >= 2
    ]
    out = manifest.select(cols) if cols else pl.DataFrame(height=manifest.height)
    if "labels" in manifest.columns and manifest.height and (manifest["labels"].list.len() == 1).all():
        single = manifest["labels"].list.first().alias("label")
        if single.n_unique() >= 2 and not any(single.equals(out[c], check_names=False) for c in out.columns):
            out = out.with_columns(single)
    return out


def load_clip(
    manifest: pl.DataFrame, row: int, root: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, int]:
    """The audio of manifest row ``row`` (its ``[start_s, end_s)`` segment) as ``([T] float32, Hz)`` at the
    file's own rate; relative paths resolve against ``root`` (default the current folder), ``synth://``
    and other registered URIs load directly."""
    from avexlab.audio.io import is_uri, load_audio

    rec = manifest.row(row, named=True)
    path = rec["path"] if is_uri(rec["path"]) else str(Path(root or ".") / rec["path"])
    wave, sr = load_audio(path, start_s=rec.get("start_s") or 0.0, end_s=rec.get("end_s"))
    return wave.numpy(), sr
