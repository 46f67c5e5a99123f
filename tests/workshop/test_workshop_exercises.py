"""Every exercise's check rejects wrong answers (each known mistake with its own message) and accepts the
solution, on a real prepared course; the tracker's hint, solution and instructor-mode rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from avexlab.errors import ConfigError
from avexlab.workshop.course import Course
from avexlab.workshop.exercises import EXERCISES, SECTIONS, Exercise, Tracker, agree, instructor_mode

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks" / "workshop"


@pytest.fixture(scope="module")
def course(smoke_course: Path) -> Course:
    return Course.open(smoke_course)


def _stub(ex: Exercise) -> Any:
    """The function the notebook starts with (the exercise's stub, compiled)."""
    namespace: dict[str, Any] = {}
    exec(ex.stub, namespace)  # noqa: S102 - our own stub text
    return next(v for k, v in namespace.items() if callable(v) and not k.startswith("__"))


def _generic_wrong(ex: Exercise, course: Course) -> Any:
    """A wrong answer that is none of the known mistakes."""
    if ex.kind == "value":
        return str(float(ex.solution(course)) + 1000.5)
    if ex.kind == "choice":
        expected = ex.expected(course)
        wrong = [o for o in ex.options(course) if not agree(o, expected)]
        assert wrong, f"{ex.id}: every option is right on this course"
        return wrong[0]

    def wrong_function(*args: Any) -> Any:
        return -12345.0

    return wrong_function


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_check_rejects_wrong_answers_and_accepts_the_solution(exercise_id: str, course: Course) -> None:
    ex = EXERCISES[exercise_id]
    tracker = Tracker(course, instructor=False)
    wrong = tracker.check(ex.id, _generic_wrong(ex, course))
    # a function returning the wrong type is an error (its message names the type); any other answer is wrong
    assert wrong.status in (("wrong", "error") if ex.kind == "function" else ("wrong",)), wrong
    assert not wrong.ok and wrong.tries == 1
    expected = ex.expected(course)
    recognised = 0
    for mistake in ex.mistakes:
        out = ex.outputs_of(mistake.answer(course), course)
        if agree(out, expected, ex.tol):
            continue  # on this course the mistake happens to give the right outputs (e.g. a tie)
        fb = tracker.check(ex.id, mistake.answer(course))
        assert fb.status == "wrong" and fb.message == mistake.message, (mistake.message, fb)
        recognised += 1
    assert recognised >= min(1, len(ex.mistakes)), f"{ex.id}: no known mistake differs from the reference"
    right = tracker.check(ex.id, ex.solution(course))
    assert right.status == "right" and right.ok, right
    assert right.solution is None and right.hint is None, "the solution is shown only in instructor mode"


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_unanswered_until_the_placeholder_is_replaced(exercise_id: str, course: Course) -> None:
    ex = EXERCISES[exercise_id]
    placeholders = [_stub(ex)] if ex.kind == "function" else [..., None, "", "  "]
    for answer in placeholders:
        fb = Tracker(course, instructor=False).check(ex.id, answer)
        assert fb.status == "unanswered" and fb.solution is None, fb
        filled = Tracker(course, instructor=True).check(ex.id, answer)
        assert filled.status == "right" and filled.filled and filled.solution, filled


def test_hint_from_the_second_distinct_wrong_try_and_the_solution_only_for_instructors(
    course: Course,
) -> None:
    learner = Tracker(course, instructor=False)
    first = learner.check("s2-kmeans-k", "1000")
    again = learner.check("s2-kmeans-k", "1000")  # the same answer re-run is not a new try
    second = learner.check("s2-kmeans-k", "999")
    assert (first.tries, again.tries, second.tries) == (1, 1, 2)
    assert first.hint is None and again.hint is None
    assert second.hint == EXERCISES["s2-kmeans-k"].hint and second.hint in second.markdown
    right = learner.check("s2-kmeans-k", str(EXERCISES["s2-kmeans-k"].solution(course)))
    assert right.ok and right.hint is None and right.solution is None
    html = second._repr_html_()
    assert 'data-status="wrong"' in html and 'data-tries="2"' in html and "Hint" in html
    teacher = Tracker(course, instructor=True).check("s2-kmeans-k", "1000")
    assert teacher.status == "wrong" and teacher.solution and "Solution" in teacher.markdown


def test_a_function_that_raises_is_reported_and_counts_as_a_try(course: Course) -> None:
    def precision_at_1(embeddings, labels):  # noqa: ANN001, ANN202
        return embeddings.no_such_attribute

    tracker = Tracker(course, instructor=False)
    fb = tracker.check("s2-precision-at-1", precision_at_1)
    assert fb.status == "error" and "AttributeError" in fb.message and fb.tries == 1
    typed = tracker.check("s1-nyquist", "eight thousand")
    assert typed.status == "wrong" and "Could not read" in typed.message


def test_function_mistakes_are_told_apart_from_each_other(course: Course) -> None:
    """A learner whose precision@1 keeps the query itself is told so, not told about the dot product."""
    ex = EXERCISES["s2-precision-at-1"]
    with_itself, by_dot = ex.mistakes[0], ex.mistakes[1]
    tracker = Tracker(course, instructor=False)
    assert tracker.check(ex.id, with_itself.answer(course)).message == with_itself.message
    assert tracker.check(ex.id, by_dot.answer(course)).message == by_dot.message


def test_instructor_mode_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVEXLAB_INSTRUCTOR", raising=False)
    assert instructor_mode() is False
    monkeypatch.setenv("AVEXLAB_INSTRUCTOR", "0")
    assert instructor_mode() is False
    monkeypatch.setenv("AVEXLAB_INSTRUCTOR", "1")
    assert instructor_mode() is True
    monkeypatch.setenv("AVEXLAB_INSTRUCTOR", "yes")
    with pytest.raises(ConfigError, match="AVEXLAB_INSTRUCTOR: expected 1"):
        instructor_mode()


def test_every_exercise_is_asked_by_its_section_notebook_and_every_section_asks() -> None:
    asked: dict[str, list[str]] = {}
    for path in sorted(NOTEBOOKS.glob("s[1-6]_*.py")):
        for eid in re.findall(r'tracker\.check\("([^"]+)"', path.read_text()):
            asked.setdefault(eid, []).append(path.name)
    assert sorted(asked) == sorted(EXERCISES), "every exercise is checked by a notebook, and no other id"
    for eid, where in asked.items():
        section = EXERCISES[eid].section
        assert where == [next(NOTEBOOKS.glob(f"s{section}_*.py")).name], (eid, where)
    counts = {s: sum(ex.section == s for ex in EXERCISES.values()) for s in SECTIONS}
    assert all(1 <= n <= 3 for n in counts.values()), counts
