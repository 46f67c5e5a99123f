"""The course's exercises, one module per section, each exercise beside its check, hint, known mistakes and
solution (:mod:`avexlab.workshop.exercises.base` explains the parts).

``EXERCISES`` maps every id (``s<section>-<name>``) to its :class:`Exercise`; a notebook checks answers
through a :class:`Tracker`::

    tracker = Tracker(Course.open(folder))
    tracker.check("s2-kmeans-k", 8)   # -> Feedback: right / wrong (+ hint from the 2nd wrong try)
"""

from __future__ import annotations

from .base import INSTRUCTOR_ENV, Exercise, Feedback, Mistake, agree, instructor_mode, is_unanswered
from .registry import EXERCISES, SECTIONS, section_exercises
from .tracker import Tracker

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
