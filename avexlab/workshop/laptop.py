"""Is this laptop ready for the workshop? ``avexlab workshop check``: one pass/fail line per item, offline.

Items, in order: the Python version; every package the course imports (each imported for real, its
version shown); the course folder (``course.json`` of the expected format); every file ``course.json``
lists, against its SHA-256; the world (opened, and one clip of each set read from disk); the embeddings
(each set's file loaded and aligned to its manifest); one forward pass of a course encoder on a real clip
(torch works on this CPU); free disk beside the course; and memory (total and available).

Only the standard library is imported at module level, so the check also runs (and reports the missing
packages) in an environment where the install went wrong.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CheckItem", "IMPORTS", "MIN_AVAILABLE_GB", "MIN_FREE_DISK_GB", "MIN_TOTAL_GB", "check_laptop"]

# (module, what it is for) for every package the sections import.
IMPORTS: tuple[tuple[str, str], ...] = (
    ("numpy", "arrays"),
    ("polars", "tables"),
    ("torch", "the encoders"),
    ("torchaudio", "audio front ends"),
    ("soundfile", "reading FLAC"),
    ("sklearn", "k-means, metrics"),
    ("scipy", "statistics"),
    ("plotly", "figures"),
    ("marimo", "the notebooks"),
    ("anywidget", "the spectrogram player"),
    ("markdown", "exercise feedback"),
    ("avexlab.workshop.exercises", "the exercises"),
)
MIN_FREE_DISK_GB = 1.0
"""Free disk the course still needs beside its folder (embedding caches of your own recordings, logs)."""
MIN_TOTAL_GB = 7.5
"""Memory the course was measured to fit in with room to spare (a laptop sold as 8 GB reports ~7.6)."""
MIN_AVAILABLE_GB = 2.0
"""Memory that must be free when the check runs (the largest section's peak RSS plus the browser)."""


@dataclass(frozen=True)
class CheckItem:
    """One line of the report: ``ok`` (pass/fail), ``item`` (what was checked), ``detail`` (what was found,
    and on a failure what to do)."""

    item: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.item}: {self.detail}"


def _run(item: str, fn: Callable[[], str]) -> CheckItem:
    """``fn`` returns the detail of a pass and raises on a failure (its message is the detail)."""
    try:
        return CheckItem(item, True, fn())
    except Exception as err:  # every failure becomes a FAIL line, never a traceback
        return CheckItem(item, False, f"{type(err).__name__}: {err}")


def _import(module: str) -> str:
    mod = importlib.import_module(module)
    top = sys.modules.get(module.split(".")[0], mod)
    return f"version {getattr(top, '__version__', '?')}"


def _memory_gb() -> tuple[float, float | None]:
    """(total, available) memory in GB; available is None where the platform does not tell."""
    try:
        import psutil

        vm = psutil.virtual_memory()
        return vm.total / 1e9, vm.available / 1e9
    except ImportError:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
        avail = None
        if hasattr(os, "sysconf") and "SC_AVPHYS_PAGES" in os.sysconf_names:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / 1e9
        return total, avail


def check_laptop(course_dir: str | os.PathLike[str], *, imports_only: bool = False) -> list[CheckItem]:
    """Check a laptop for the course at ``course_dir``; returns one :class:`CheckItem` per item (see the
    module docstring). ``imports_only`` stops after the Python and import items (right after installing
    from a wheelhouse, before the course folder is copied)."""
    items = [
        _run(
            "python",
            lambda: _need(
                sys.version_info >= (3, 11), f"{sys.version.split()[0]}", "install Python 3.11 or newer"
            ),
        )
    ]
    for module, why in IMPORTS:
        items.append(_run(f"import {module} ({why})", lambda m=module: _import(m)))
    if imports_only or not all(i.ok for i in items):
        return items
    root = Path(course_dir).expanduser()
    course_item = _run("course folder", lambda: _open_course(root))
    items.append(course_item)
    if not course_item.ok:
        return items
    from avexlab.workshop.course import Course

    course = Course.open(root)
    items.append(_run("course files", lambda: _files(course)))
    items.append(_run("world", lambda: _world(course)))
    items.append(_run("embeddings", lambda: _embeddings(course)))
    items.append(_run("encoder forward pass", lambda: _forward(course)))
    items.append(_run("free disk", lambda: _disk(root)))
    items.append(_run("memory", _memory))
    return items


def _need(ok: bool, found: str, todo: str) -> str:
    if not ok:
        raise RuntimeError(f"{found}; {todo}")
    return found


def _open_course(root: Path) -> str:
    from avexlab.workshop.course import Course

    c = Course.open(root)
    return f"{root} ({c.scale} scale, prepared {c.meta.get('created', '?')} by avexlab {c.meta.get('avexlab_version')})"


def _files(course: Any) -> str:
    problems = course.verify_files()
    n = len(course.meta.get("files", {}))
    if problems:
        shown = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        raise RuntimeError(f"{len(problems)} of {n} files: {shown}. Copy the course folder again.")
    return f"{n} files intact (SHA-256)"


def _world(course: Any) -> str:
    world = course.world()
    audio = course.world_dir / "audio"
    n_files = sum(1 for _ in audio.rglob("*.flac")) if audio.is_dir() else 0
    want = course.meta.get("world", {}).get("audio_items")
    if want is not None and n_files != want:
        raise RuntimeError(f"{n_files} audio files, expected {want}. Copy the course folder again.")
    for name in course.meta["sets"]:
        wave, sr = course.clip(name, 0)
        if wave.size == 0:
            raise RuntimeError(f"the first clip of set {name!r} is empty. Copy the course folder again.")
    return f"{world.config.preset} world, {n_files} audio files, one clip of each set read"


def _embeddings(course: Any) -> str:
    n = 0
    for key in course.encoder_keys:
        for name in course.meta["sets"]:
            emb = course.embeddings(key, name)
            n += emb.array().shape[0]
    return f"{len(course.encoder_keys)} encoders x {len(course.meta['sets'])} sets, {n} embeddings aligned"


def _forward(course: Any) -> str:
    import numpy as np

    from avexlab.evaluate.embed import extract_embeddings

    key = course.encoder_keys[-1]
    one = course.manifest("clf").head(1)
    fresh = extract_embeddings(course.encoder(key), one, root=course.world_dir, progress=False).array()
    stored = course.embeddings(key, "clf").array()[:1]
    scale = float(np.abs(stored).max()) or 1.0
    if not np.allclose(fresh, stored, rtol=1e-4, atol=1e-4 * scale):
        raise RuntimeError(
            f"the encoder {key!r} gives other embeddings here than when the course was prepared (max "
            f"difference {float(np.abs(fresh - stored).max()):.2e}). Check that torch installed from the wheelhouse."
        )
    return f"{key} embeds a clip as the prepared course did ({fresh.shape[1]}-d)"


def _disk(root: Path) -> str:
    free = shutil.disk_usage(root).free / 1e9
    return _need(free >= MIN_FREE_DISK_GB, f"{free:.1f} GB free", f"free at least {MIN_FREE_DISK_GB:g} GB")


def _memory() -> str:
    total, avail = _memory_gb()
    found = f"{total:.1f} GB total" + (f", {avail:.1f} GB available" if avail is not None else "")
    if total < MIN_TOTAL_GB:
        raise RuntimeError(f"{found}; the course needs a laptop with 8 GB")
    if avail is not None and avail < MIN_AVAILABLE_GB:
        raise RuntimeError(f"{found}; close other programs to free {MIN_AVAILABLE_GB:g} GB")
    return found
