"""The course's exercises, one module per section, each exercise beside its check, hint, known mistakes and
solution (:mod:`avexlab.workshop.exercises.base` explains the parts).

``EXERCISES`` maps every id (``s<section>-<name>``) to its :class:`Exercise`; a notebook checks answers
through a :class:`Tracker`::

    tracker = Tracker(Course.open(folder))
    tracker.check("s2-kmeans-k", 8)   # -> Feedback: right / wrong (+ hint from the 2nd wrong try)
"""

from __future__ import annotations

from avexlab.errors import ConfigError

from . import s1_hearing, s2_methods, s3_grid, s4_paradigms, s5_ood, s6_repertoire
from .base import (
    INSTRUCTOR_ENV,
    Exercise,
    Feedback,
    Mistake,
    Tracker,
    agree,
    instructor_mode,
    is_unanswered,
)

__all__ = [
    "EXERCISES",
    "INSTRUCTOR_ENV",
    "SECTIONS",
    "Exercise",
    "Feedback",
    "Mistake",
    "Tracker",
    "agree",
    "instructor_mode",
    "is_unanswered",
    "section_exercises",
]

SECTIONS: dict[int, str] = {
    1: "What an encoder hears",
    2: "Probing, retrieval, clustering",
    3: "Architecture and data mix",
    4: "SSL vs SL",
    5: "Out of distribution",
    6: "Call types and individuals",
}


def _registry() -> dict[str, Exercise]:
    out: dict[str, Exercise] = {}
    for module in (s1_hearing, s2_methods, s3_grid, s4_paradigms, s5_ood, s6_repertoire):
        for ex in module.EXERCISES:
            if ex.id in out or not ex.id.startswith(f"s{ex.section}-"):
                raise ConfigError(f"exercise id {ex.id!r}: expected unique ids starting with s{ex.section}-")
            out[ex.id] = ex
    return out


EXERCISES: dict[str, Exercise] = _registry()


def section_exercises(section: int) -> list[Exercise]:
    """The exercises of one section, in the order the notebook asks them."""
    return [ex for ex in EXERCISES.values() if ex.section == section]
