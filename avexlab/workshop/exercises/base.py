"""Exercises that check themselves: the types every section's exercises share (the tracker a notebook checks
answers with is :class:`avexlab.workshop.exercises.tracker.Tracker`).

An :class:`Exercise` states a task, computes its **reference** from the prepared course (the world's ground
truth or a library computation, never a stored number), turns a learner's answer into comparable
**outputs** (a value as it is; a function run on inputs taken from the course), and knows typical
**mistakes** (each a wrong answer with the message the check gives when a learner makes it). Its
**solution** is the answer as a learner would write it; it is only shown in instructor mode.

"""

from __future__ import annotations

import html
import inspect
import math
import os
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from avexlab.errors import ConfigError, expected_found

__all__ = [
    "INSTRUCTOR_ENV",
    "Exercise",
    "Feedback",
    "Mistake",
    "Status",
    "agree",
    "instructor_mode",
    "is_unanswered",
    "number",
    "run_cases",
]

INSTRUCTOR_ENV = "AVEXLAB_INSTRUCTOR"
Status = Literal["unanswered", "right", "wrong", "error"]
Kind = Literal["value", "choice", "function"]


def instructor_mode() -> bool:
    """Whether ``$AVEXLAB_INSTRUCTOR`` turns instructor mode on (``1``); unset, empty or ``0`` is off."""
    value = os.environ.get(INSTRUCTOR_ENV, "").strip()
    if value in ("", "0"):
        return False
    if value == "1":
        return True
    raise ConfigError(
        expected_found(
            INSTRUCTOR_ENV, "1 (instructor mode) or 0 / unset", repr(value), "Set it to 1 or unset it."
        )
    )


def is_unanswered(answer: Any) -> bool:
    """``...`` (the placeholder every exercise starts with), None (no choice made) and an empty text box
    mean "not answered yet"."""
    return answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip())


def agree(output: Any, expected: Any, tol: float = 0.0) -> bool:
    """Whether a learner's ``output`` equals ``expected``: a frozenset ``expected`` accepts any of its
    members (ties); floats agree within ``tol`` (absolute); tuples and lists element by element; numpy
    arrays by value; anything else by ``==``."""
    if isinstance(expected, frozenset):
        return any(agree(output, e, tol) for e in expected)
    if isinstance(expected, tuple | list):
        if not isinstance(output, tuple | list) or len(output) != len(expected):
            return False
        return all(agree(o, e, tol) for o, e in zip(output, expected, strict=True))
    if isinstance(expected, float) or isinstance(output, float):
        try:
            o, e = float(output), float(expected)
        except (TypeError, ValueError):
            return False
        if math.isnan(o) or math.isnan(e):
            return math.isnan(o) and math.isnan(e)
        return abs(o - e) <= tol
    if isinstance(expected, np.ndarray) or isinstance(output, np.ndarray):
        try:
            return bool(np.array_equal(np.asarray(output), np.asarray(expected)))
        except (TypeError, ValueError):
            return False
    if isinstance(expected, bool) or isinstance(output, bool):
        return type(output) is type(expected) and output == expected
    if isinstance(expected, int | np.integer) and isinstance(output, int | np.integer | float | np.floating):
        return float(output) == float(expected)
    return bool(output == expected)


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``answer(course)`` makes the mistake (a value, or a function written with
    it), ``message`` is what the check tells a learner whose answer behaves the same."""

    message: str
    answer: Callable[[Any], Any]


@dataclass(frozen=True)
class Exercise:
    """One exercise. See the module docstring.

    Attributes:
        id: ``s<section>-<name>``, unique.
        section: 1..6.
        title: a short name.
        kind: ``value`` (a number or a string typed in), ``choice`` (one of :meth:`options`) or
            ``function`` (a short function the learner writes; its ``stub`` is the starting code).
        prompt: the task, in markdown.
        hint: shown from the second wrong try on.
        reference: ``course -> expected outputs`` (ground truth or a library computation).
        solution: ``course -> the right answer`` as a learner writes it (a value, or a function).
        outputs: ``(answer, course) -> outputs`` compared with the reference (default: the answer itself).
        tol: absolute tolerance of float comparisons (a didactic one for values typed to two decimals;
            for functions the bound on float32 rounding of the compared quantity).
        mistakes: typical wrong answers and their messages.
        options: ``course -> choices`` for ``choice`` exercises.
        stub: the starting code of a ``function`` exercise (its body is ``...``).
    """

    id: str
    section: int
    title: str
    kind: Kind
    prompt: str
    hint: str
    reference: Callable[[Any], Any]
    solution: Callable[[Any], Any]
    outputs: Callable[[Any, Any], Any] | None = None
    tol: float = 0.0
    mistakes: tuple[Mistake, ...] = ()
    options: Callable[[Any], list[Any]] | None = None
    stub: str = ""
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    def outputs_of(self, answer: Any, course: Any) -> Any:
        """What the check compares: ``outputs(answer, course)`` (a function is run here)."""
        return answer if self.outputs is None else self.outputs(answer, course)

    def expected(self, course: Any) -> Any:
        """The reference outputs for ``course`` (computed once per course)."""
        key = id(course)
        if key not in self._memo:
            self._memo.clear()  # one course at a time
            self._memo[key] = (course, self.reference(course))
        return self._memo[key][1]

    def solution_text(self, course: Any) -> str:
        """The solution as markdown: the value, or the source of the solution function."""
        sol = self.solution(course)
        if callable(sol):
            try:
                src = textwrap.dedent(inspect.getsource(sol))
            except (OSError, TypeError):
                src = f"{sol.__name__}(...)"
            return f"```python\n{src.rstrip()}\n```"
        return f"`{sol!r}`"


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer. ``status``: ``unanswered``, ``right``, ``wrong`` or ``error`` (the
    learner's function raised); ``message`` says why; ``hint`` appears from the second wrong try;
    ``solution`` only in instructor mode; ``filled`` when instructor mode answered it with the solution;
    ``answer`` the answer judged (the solution when ``filled``: what later cells may use)."""

    exercise: str
    title: str
    status: Status
    message: str
    tries: int = 0
    hint: str | None = None
    solution: str | None = None
    filled: bool = False
    answer: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "right"

    @property
    def markdown(self) -> str:
        head = {
            "right": "**Right.**",
            "wrong": f"**Not yet** (wrong try {self.tries}).",
            "error": f"**Your function raised an error** (wrong try {self.tries}).",
            "unanswered": "**Not answered yet.**",
        }[self.status]
        parts = [f"{head} {self.message}".strip()]
        if self.filled:
            parts.append("_Instructor mode: the solution was filled in._")
        if self.hint:
            parts.append(f"**Hint:** {self.hint}")
        if self.solution:
            parts.append(f"**Solution (instructor mode):**\n\n{self.solution}")
        return "\n\n".join(parts)

    def _repr_markdown_(self) -> str:
        return f"*{self.title}* ({self.exercise})\n\n{self.markdown}"

    def _repr_html_(self) -> str:
        import markdown

        colours = {
            "right": ("#1e7e34", "#e6f4ea"),
            "wrong": ("#b02a37", "#fbe9eb"),
            "error": ("#b02a37", "#fbe9eb"),
            "unanswered": ("#6c757d", "#f1f3f5"),
        }
        edge, fill = colours[self.status]
        body = markdown.markdown(self.markdown, extensions=["fenced_code"])
        return (
            f'<div class="avexlab-exercise" data-exercise="{html.escape(self.exercise)}" '
            f'data-status="{self.status}" data-tries="{self.tries}" '
            f'style="border-left:4px solid {edge};background:{fill};padding:0.4em 1em;margin:0.3em 0">'
            f"<div><em>{html.escape(self.title)}</em> <code>{html.escape(self.exercise)}</code></div>{body}</div>"
        )


def number(answer: Any) -> float:
    """A typed answer as a number: ``"8000"``, ``"-0.12"``, ``8000`` (``outputs`` of value exercises).
    Raises ValueError for text that is not a number."""
    return float(str(answer).strip().replace(",", "."))


def run_cases(fn: Callable[..., Any], cases: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The outputs of a learner's function on each argument tuple of ``cases`` (a helper of function
    exercises' ``outputs``)."""
    return tuple(fn(*args) for args in cases)
