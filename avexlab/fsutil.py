"""Durable file writes: one helper for every file avexlab writes that a crash must not leave half-written.

:func:`atomic_write` writes to a temporary file beside the target, flushes and fsyncs it, renames it over
the target (atomic on POSIX: a reader sees the old file or the new one, never part of one) and fsyncs the
directory, so the rename itself survives a power cut. A failed write leaves the old file untouched and no
temporary file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir"]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory, so that renames and new entries in it are on disk (a no-op where the platform
    has no directory file descriptors)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes | str | Callable[[Path], object],
    *,
    encoding: str = "utf-8",
) -> Path:
    """Write ``data`` to ``path`` atomically and durably; returns ``path``.

    ``data``: the bytes (or text, encoded with ``encoding``) to write, or a callable ``write(tmp_path)``
    that writes the file itself (e.g. ``lambda t: df.write_parquet(t)``). The temporary file keeps the
    target's suffix, so writers that pick a format from the suffix choose the target's. The parent
    directory is created when missing.
    """
    target = Path(path)
    payload = None if callable(data) else data.encode(encoding) if isinstance(data, str) else bytes(data)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}"
    )
    tmp = Path(tmp_name)
    try:
        if payload is None:
            os.close(fd)
            data(tmp)  # type: ignore[operator]
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
        with open(tmp, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return target
