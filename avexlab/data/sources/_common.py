"""Helpers shared by the source adapters."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from avexlab.audio.io import AudioInfo, audio_info
from avexlab.data.schema import EVENT_SCHEMA
from avexlab.errors import AudioError

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg")


def read_headers(root: Path, rel_paths: list[str]) -> dict[str, AudioInfo]:
    """Header of every distinct file; one AudioError listing every unreadable file."""
    infos: dict[str, AudioInfo] = {}
    errors: list[str] = []
    for rel in sorted(set(rel_paths)):
        try:
            infos[rel] = audio_info(root / rel)
        except AudioError as e:
            errors.append(str(e))
    if errors:
        shown = "\n".join(f"  - {e}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise AudioError(
            f"{len(errors)} audio file(s) under {str(root)!r} cannot be read:\n{shown}{more}\n"
            "Fix or remove them before preparing the manifest."
        )
    return infos


def relative_to(root: Path, path: str | os.PathLike[str]) -> str:
    """``path`` relative to ``root`` with forward slashes."""
    return Path(path).resolve().relative_to(root.resolve()).as_posix()


def events_frame(rows: dict[str, list], extra: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    """An events table with the EVENT_SCHEMA columns (+ ``extra``), missing ones as nulls."""
    schema = {**EVENT_SCHEMA, **(extra or {})}
    n = len(next(iter(rows.values()))) if rows else 0
    data = {c: rows.get(c, [None] * n) for c in schema}
    return pl.DataFrame(data, schema=schema)
