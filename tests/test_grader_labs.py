"""Labs 3, 4, 5 and 7 through the whole grading pipeline (nbgrader autograde, the trusted checks,
the student's code in the sandbox): for each lab, the solution gets full marks, the release
zero, a correct solution written another way full marks, and each classic mistake loses the
points of the promises it breaks and keeps the others, with feedback that names the promise,
the smallest input, expected against got, and the seed. Each lab's submissions and what they
must score are in ``fixtures/submissions/lab<N>_mistakes.py``; labs 1 and 2 go through
``test_grader_roundtrip.py``."""

from __future__ import annotations

import html
import re

import pytest

from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest
from fixtures.submissions import lab3_mistakes, lab4_mistakes, lab5_mistakes, lab7_mistakes

pytestmark = pytest.mark.slow

MISTAKES = {m.LAB: m for m in (lab3_mistakes, lab4_mistakes, lab5_mistakes, lab7_mistakes)}


def _graded(tmp_path_factory, request, lab: str) -> dict:
    """The lab's submissions, graded once per test session (shared across xdist workers)."""
    return fx.shared_once(tmp_path_factory, request, f"{lab}-grading",
                          lambda work: fx.grade_lab(work, lab, MISTAKES[lab].WRONG))


def _row(graded: dict, lab: str, student: str) -> dict:
    found = [r for r in graded["rows"] if r["student"] == student and r["lab"] == lab]
    assert found, f"{student} was not graded; problems: {graded['problems']}"
    return found[0]


@pytest.mark.parametrize("lab", sorted(MISTAKES))
def test_the_solution_and_rewrites_get_full_marks_and_the_release_zero(tmp_path_factory, request,
                                                                        lab):
    graded = _graded(tmp_path_factory, request, lab)
    assert graded["problems"] == []
    assert graded["max"] == fx.POINTS[lab] > 0
    for student in ("solution", *MISTAKES[lab].FULL):
        assert _row(graded, lab, student)["score"] == graded["max"], student
    assert _row(graded, lab, "release")["score"] == 0
    assert _row(graded, lab, "solution")["flags"] == [] == _row(graded, lab, "release")["flags"]


@pytest.mark.parametrize("lab, student", [(lab, s) for lab in sorted(MISTAKES)
                                          for s in sorted(MISTAKES[lab].BROKEN)])
def test_each_classic_mistake_loses_the_points_of_the_promise_it_breaks(tmp_path_factory, request,
                                                                        lab, student):
    graded = _graded(tmp_path_factory, request, lab)
    zero, kept = MISTAKES[lab].BROKEN[student]
    tests = graded["scores"][student][lab]["tests"]
    assert {t: tests[t] for t in zero} == {t: 0.0 for t in zero}
    assert all(tests[t] > 0 for t in kept), tests
    assert _row(graded, lab, student)["score"] < graded["max"]


@pytest.mark.parametrize("lab", sorted(MISTAKES))
def test_feedback_names_the_promise_the_input_expected_got_and_the_seed(tmp_path_factory, request,
                                                                       lab):
    graded = _graded(tmp_path_factory, request, lab)
    student, says = MISTAKES[lab].FEEDBACK
    page = graded["pages"][f"{student}/{lab}/{fx.NOTEBOOK[lab]}.html"]
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for expected in says:
        assert expected in text, expected
    assert "BEGIN HIDDEN TESTS" not in page
