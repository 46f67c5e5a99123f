"""Tables computed from a grid's tables, kept beside them and reused while nothing they depend on changed.

The findings' and the cells' bootstrap intervals take minutes on a full grid; notebooks that show them should
not make every reader wait again. :func:`memo_table` keeps such a table in ``<folder>/analysis/`` under a key
made of everything that determines it: the input tables' bytes, the settings, the source of the modules that
compute it and the versions of polars, numpy and scipy. Any change gives another key, so a stale table is
never read; the table of an older key is removed when a new one is written.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from avexlab.fsutil import atomic_write

__all__ = ["ANALYSIS_DIR", "memo_key", "memo_table"]

ANALYSIS_DIR = "analysis"


def _frame_digest(frame: pl.DataFrame) -> str:
    buf = io.BytesIO()
    frame.write_ipc(buf, compression="uncompressed")  # deterministic bytes for a given polars version
    return hashlib.sha256(buf.getvalue()).hexdigest()


def memo_key(
    name: str, frames: Sequence[pl.DataFrame], settings: dict[str, Any], modules: Sequence[str]
) -> str:
    """The 16-hex-digit key of a table ``name`` computed from ``frames`` with ``settings`` by ``modules``."""
    import numpy
    import scipy

    h = hashlib.sha256()
    h.update(json.dumps({"name": name, "settings": settings}, sort_keys=True, default=str).encode())
    h.update(f"polars {pl.__version__} numpy {numpy.__version__} scipy {scipy.__version__}".encode())
    for mod in modules:
        source = inspect.getsourcefile(importlib.import_module(mod))
        h.update(mod.encode() + Path(str(source)).read_bytes())
    for frame in frames:
        h.update(_frame_digest(frame).encode())
    return h.hexdigest()[:16]


def memo_table(
    folder: str | Path | None,
    name: str,
    frames: Sequence[pl.DataFrame],
    settings: dict[str, Any],
    modules: Sequence[str],
    compute: Callable[[], pl.DataFrame],
) -> pl.DataFrame:
    """``compute()``, or the table kept in ``folder/analysis/<name>-<key>.parquet`` by an earlier call with the
    same inputs (:func:`memo_key`). ``folder`` None computes without keeping anything; a folder that cannot
    be written to (a read-only copy) computes and keeps nothing, without an error."""
    if folder is None:
        return compute()
    d = Path(folder) / ANALYSIS_DIR
    path = d / f"{name}-{memo_key(name, frames, settings, modules)}.parquet"
    if path.is_file():
        return pl.read_parquet(path)
    table = compute()
    try:
        d.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: table.write_parquet(tmp))
    except OSError:
        return table
    for old in d.glob(f"{name}-*.parquet"):
        if old != path and len(old.stem) == len(name) + 17:
            old.unlink(missing_ok=True)
    return table
