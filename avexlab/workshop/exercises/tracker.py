"""The tracker a notebook checks answers with (one per notebook): it checks answers and keeps the count of
wrong tries per exercise; the hint appears from the second wrong try on, and the solution never appears
unless instructor mode is on (``AVEXLAB_INSTRUCTOR=1``). In instructor mode an unanswered exercise
(``...``) is answered with the solution, so a notebook runs top to bottom with every check passing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from avexlab.errors import ConfigError, expected_found

from .base import Exercise, Feedback, Status, agree, instructor_mode, is_unanswered
from .registry import EXERCISES

__all__ = ["Tracker", "judge"]


def _answer_key(answer: Any) -> str:
    """What makes two wrong answers the same try: the value's repr, or a function's compiled code."""
    if callable(answer) and hasattr(answer, "__code__"):
        code = answer.__code__

        def flat(c: Any) -> str:
            consts = [flat(k) if hasattr(k, "co_code") else repr(k) for k in c.co_consts]
            return f"{c.co_code.hex()}|{consts}|{c.co_names}|{c.co_varnames}"

        return "fn:" + hashlib.sha256(flat(code).encode()).hexdigest()
    return "v:" + repr(answer)


class Tracker:
    """Checks a notebook's answers against a prepared course and keeps the wrong tries per exercise.

    Args:
        course: the :class:`~avexlab.workshop.course.Course` the references are computed from.
        instructor: instructor mode (default: :func:`instructor_mode`).
        registry: exercises by id (default: every exercise of the course).
    """

    def __init__(
        self, course: Any, *, instructor: bool | None = None, registry: dict[str, Exercise] | None = None
    ):
        if registry is None:
            registry = EXERCISES
        self.course = course
        self.instructor = instructor_mode() if instructor is None else instructor
        self.registry = registry
        self.wrong: dict[str, set[str]] = {}
        self.latest: dict[str, Feedback] = {}

    def exercise(self, exercise_id: str) -> Exercise:
        if exercise_id not in self.registry:
            raise ConfigError(
                expected_found(
                    "exercise", f"one of {sorted(self.registry)}", repr(exercise_id), "Check the id."
                )
            )
        return self.registry[exercise_id]

    def initial(self, exercise_id: str) -> Any:
        """What a notebook's input starts with: the solution in instructor mode (as text for a ``value``
        exercise's text box), else None (an empty box, no choice)."""
        ex = self.exercise(exercise_id)
        if not self.instructor or ex.kind == "function":
            return None
        sol = ex.solution(self.course)
        return str(sol) if ex.kind == "value" else sol

    def options(self, exercise_id: str) -> list[Any]:
        """The choices of a ``choice`` exercise."""
        ex = self.exercise(exercise_id)
        if ex.options is None:
            raise ConfigError(
                expected_found(exercise_id, "a choice exercise", ex.kind, "Use check() directly.")
            )
        return list(ex.options(self.course))

    def prompt(self, exercise_id: str) -> str:
        """The exercise's title and task as markdown (what a notebook shows above the answer)."""
        ex = self.exercise(exercise_id)
        return f"### Exercise {ex.id}: {ex.title}\n\n{ex.prompt}"

    def check(self, exercise_id: str, answer: Any) -> Feedback:
        """Check ``answer`` (``...`` or None = not answered) and return the :class:`Feedback`."""
        ex = self.exercise(exercise_id)
        filled = False
        unanswered = is_unanswered(answer) or (
            ex.kind == "function" and _returns_placeholder(answer, ex, self.course)
        )
        if unanswered and self.instructor:
            answer, filled, unanswered = ex.solution(self.course), True, False
        if unanswered:
            fb = self._feedback(ex, "unanswered", "Replace `...` with your answer and run the cell.")
            self.latest[ex.id] = fb
            return fb
        status, message = judge(ex, answer, self.course)
        if status in ("wrong", "error"):
            self.wrong.setdefault(ex.id, set()).add(_answer_key(answer))
        fb = self._feedback(ex, status, message, filled=filled, answer=answer)
        self.latest[ex.id] = fb
        return fb

    def _feedback(
        self, ex: Exercise, status: Status, message: str, *, filled: bool = False, answer: Any = None
    ) -> Feedback:
        tries = len(self.wrong.get(ex.id, ()))
        return Feedback(
            exercise=ex.id,
            title=ex.title,
            status=status,
            message=message,
            tries=tries,
            hint=ex.hint if status in ("wrong", "error") and tries >= 2 else None,
            solution=ex.solution_text(self.course) if self.instructor else None,
            filled=filled,
            answer=answer,
        )

    def summary(self) -> list[tuple[str, Status, int]]:
        """``(exercise, latest status, wrong tries)`` for every exercise checked so far."""
        return [(k, fb.status, len(self.wrong.get(k, ()))) for k, fb in sorted(self.latest.items())]


def _returns_placeholder(fn: Any, ex: Exercise, course: Any) -> bool:
    """A function exercise is unanswered while the learner's function still returns ``...``/None (its
    stub's body): run it on the exercise's inputs and see."""
    if not callable(fn):
        return False
    try:
        out = ex.outputs_of(fn, course)
    except Exception:  # an error is an answer (judged as such), not a placeholder
        return False
    flat = out if isinstance(out, tuple | list) else (out,)
    return all(is_unanswered(o) for o in flat)


def judge(ex: Exercise, answer: Any, course: Any) -> tuple[Status, str]:
    """``(status, message)`` for an answered exercise: right, a recognised mistake, wrong, or an error the
    learner's function raised (named with its type and message)."""
    if ex.kind == "function" and not callable(answer):
        return "wrong", f"Expected a function, found {type(answer).__name__}: define it with `def`."
    if ex.kind == "choice" and ex.options is not None:
        options = list(ex.options(course))
        if answer not in options:
            return "wrong", f"Pick one of {', '.join(f'`{o}`' for o in options)} (found `{answer!r}`)."
    try:
        out = ex.outputs_of(answer, course)
    except Exception as err:  # the learner's code or value: report, never crash the notebook
        if ex.kind != "function":
            return "wrong", f"Could not read `{answer!r}` as an answer ({type(err).__name__}: {err})."
        return "error", f"`{type(err).__name__}: {err}`. Read the message, fix the function and run it again."
    expected = ex.expected(course)
    if agree(out, expected, ex.tol):
        return "right", "The check agrees with the reference computed from the course's ground truth."
    for mistake in ex.mistakes:
        try:
            wrong_out = ex.outputs_of(mistake.answer(course), course)
        except Exception:  # a mistake that cannot run on this course recognises nothing
            continue
        if not agree(wrong_out, expected, ex.tol) and agree(out, wrong_out, ex.tol):
            return "wrong", mistake.message
    return "wrong", "That does not match the reference. Look at the task again."
