"""The workshop kit: a three-hour course on laptops, offline, with exercises that check themselves.

- :mod:`avexlab.workshop.course`: :func:`prepare` (``avexlab workshop prepare``) renders the course's world
  and precomputes every embedding and result the six sections read, into one relocatable folder;
  :class:`Course` opens that folder for the notebooks and the checks.
- :mod:`avexlab.workshop.exercises`: the exercise registry (:data:`EXERCISES`), each with its check, its
  hint, its known mistakes and its solution; :class:`Tracker` checks a learner's answers in a notebook
  (hint on the second wrong try, the solution only in instructor mode, ``AVEXLAB_INSTRUCTOR=1``).
- :mod:`avexlab.workshop.laptop`: :func:`check_laptop` (``avexlab workshop check``): imports, course files,
  caches, free disk and memory, one pass/fail line per item.
- :mod:`avexlab.workshop.wheelhouse`: :func:`build_wheelhouse` (``make wheelhouse``): every wheel the
  course's environment needs, for laptops that install from a USB stick with pip's index disabled.

Names resolve lazily, so ``import avexlab.workshop`` (and ``avexlab --help``) imports neither torch nor the
world.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Course": "course",
    "prepare": "course",
    "locate_course": "course",
    "workshop_home": "paths",
    "EXERCISES": "exercises",
    "Exercise": "exercises",
    "Feedback": "exercises",
    "Tracker": "exercises",
    "instructor_mode": "exercises",
    "check_laptop": "laptop",
    "build_wheelhouse": "wheelhouse",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
