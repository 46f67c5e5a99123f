"""The two cells every workshop section opens with: pick the course folder, open the course and its tracker.

Kept here once so that the six section notebooks do not each carry a copy (``mo`` is the notebook's marimo
module, passed in so that importing avexlab never needs marimo).
"""

from __future__ import annotations

from typing import Any

from avexlab.viz.notebook import catch_user_error, default_scale

from .course import Course, locate_course
from .exercises import Tracker

__all__ = ["course_folder_input", "open_section"]


def course_folder_input(mo: Any) -> Any:
    """A text field holding the prepared course's folder, filled with the one found for the default scale
    next to the notebook or in the home folder (empty when none is found)."""
    where, _ = catch_user_error(lambda: str(locate_course(default_scale(), mo.notebook_dir())))
    return mo.ui.text(value=where or "", label="course folder", full_width=True)


def open_section(mo: Any, folder: str) -> tuple[Course, Tracker, Any]:
    """``(course, tracker, note)`` for the course in ``folder``; the note says which course and whether
    instructor mode is on. Without a prepared course there, the notebook stops with a callout saying why."""
    course, problem = catch_user_error(Course.open, folder.strip())
    mo.stop(
        problem is not None,
        mo.callout(mo.md(f"**No prepared course in this folder.** {problem}"), kind="danger"),
    )
    tracker = Tracker(course)
    instructor = " **Instructor mode:** unanswered exercises are filled in and solutions shown."
    note = mo.md(
        f"Course `{course.root}` ({course.scale} scale)." + (instructor if tracker.instructor else "")
    )
    return course, tracker, note
