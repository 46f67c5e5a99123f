"""Serve a workshop section with ``marimo run``, type a wrong answer, another wrong one, then the right one
in headless Chromium, and see the check change: wrong -> wrong with the hint -> right."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
from notebook_browser import CHROMIUM, chromium_page, serve  # noqa: E402

from avexlab.workshop.course import Course  # noqa: E402
from avexlab.workshop.exercises import EXERCISES  # noqa: E402

SECTION = REPO / "notebooks" / "workshop" / "s2_probe_retrieval_clustering.py"
EXERCISE = "s2-kmeans-k"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium", allow_module_level=True)
pytest.importorskip("playwright.sync_api")


def test_typing_wrong_then_right_answers_changes_the_check(
    smoke_course: Path, workshop_env: dict[str, str], tmp_path: Path
) -> None:
    course = Course.open(smoke_course)
    ex = EXERCISES[EXERCISE]
    right = str(ex.solution(course))
    wrong_tries = [str(ex.expected(course) + 3), str(ex.expected(course) + 5)]
    box_of = f'.avexlab-exercise[data-exercise="{EXERCISE}"]'
    seen = []
    with serve(SECTION, tmp_path / "marimo.log", scale="smoke") as url, chromium_page() as page:
        page.goto(url)
        page.locator(f'{box_of}[data-status="unanswered"]').wait_for(timeout=240_000)
        seen.append(page.locator(box_of).inner_text())
        answer = page.get_by_role("textbox", name="K =")
        for n, value in enumerate(wrong_tries, start=1):
            answer.fill(value)
            answer.press("Enter")
            page.locator(f'{box_of}[data-status="wrong"][data-tries="{n}"]').wait_for(timeout=60_000)
            seen.append(page.locator(box_of).inner_text())
        answer.fill(right)
        answer.press("Enter")
        page.locator(f'{box_of}[data-status="right"]').wait_for(timeout=60_000)
        seen.append(page.locator(box_of).inner_text())
        page.screenshot(path=str(tmp_path / "section2.png"), full_page=True)
    unanswered, first, second, done = seen
    assert "Not answered yet" in unanswered
    assert "Not yet (wrong try 1)" in first and "Hint" not in first
    assert "Not yet (wrong try 2)" in second and ex.hint in second
    assert done.splitlines()[-1].startswith("Right.") and "Hint" not in done and "Solution" not in done
