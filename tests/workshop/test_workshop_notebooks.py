"""Every workshop section runs top to bottom at smoke scale with the solutions filled in (instructor mode),
every exercise of the section is checked and passes; in learner mode nothing is answered or revealed;
``marimo check`` finds nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from avexlab.workshop.exercises import section_exercises

pytest.importorskip("marimo")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks" / "workshop").glob("s[1-6]_*.py"))


def _run(path: Path) -> dict:
    spec = importlib.util.spec_from_file_location(f"_workshop_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outputs, defs = module.app.run()  # raises on the first failing cell
    assert outputs
    return defs


def test_six_sections() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["s1", "s2", "s3", "s4", "s5", "s6"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_section_runs_with_every_check_passing_in_instructor_mode(
    path: Path, workshop_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVEXLAB_INSTRUCTOR", "1")
    defs = _run(path)
    tracker = defs["tracker"]
    assert tracker.instructor and tracker.course.scale == "smoke"
    wanted = {ex.id for ex in section_exercises(int(path.name[1]))}
    assert set(tracker.latest) == wanted
    for eid, fb in tracker.latest.items():
        assert fb.status == "right" and fb.solution, (eid, fb)
        # inputs start at the solution in instructor mode; a function's stub is replaced by the solution
        assert fb.filled == (tracker.exercise(eid).kind == "function"), (eid, fb)


@pytest.mark.slow
def test_a_section_in_learner_mode_answers_nothing_and_reveals_nothing(workshop_env: dict[str, str]) -> None:
    defs = _run(next(p for p in NOTEBOOKS if p.name.startswith("s2_")))
    tracker = defs["tracker"]
    assert not tracker.instructor
    assert {fb.status for fb in tracker.latest.values()} == {"unanswered"}
    assert all(fb.solution is None and fb.hint is None for fb in tracker.latest.values())


def test_marimo_check_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "marimo", "check", "--strict", *map(str, NOTEBOOKS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
