"""Lab 3 through the whole grading pipeline (nbgrader autograde, the trusted checks, the
student's code in the sandbox): the solution gets full marks, the release zero, and each of the
lab's classic mistakes loses the points of the promises it breaks, with feedback that names
the promise, the smallest input, expected against got, and the seed."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest

LAB3 = fx.LAB3
pytestmark = pytest.mark.slow

#: student -> (tests that must score 0, tests that must keep their points)
BROKEN = {
    "own-write-not-counted": (
        ["a_quorum_answers_at_the_needed_th_reply_its_own_included",
         "cluster_with_your_quorum_parts_matches_the_reference",
         "the_seeds_sloppy_quorum_story_with_your_parts"],
        ["replicas_are_the_first_n_healthy_nodes", "read_repair_sends_the_siblings_to_stale_primaries_only",
         "a_hint_is_forgotten_only_after_its_node_acknowledged_it"]),
    "hints-the-coordinator": (
        ["each_stand_in_is_hinted_with_the_node_it_replaces",
         "cluster_with_your_quorum_parts_matches_the_reference",
         "the_seeds_sloppy_quorum_story_with_your_parts"],
        ["replicas_are_the_first_n_healthy_nodes", "a_quorum_answers_at_the_needed_th_reply_its_own_included"]),
    "repairs-stand-ins": (
        ["read_repair_sends_the_siblings_to_stale_primaries_only",
         "cluster_with_your_quorum_parts_matches_the_reference"],
        ["the_seeds_sloppy_quorum_story_with_your_parts", "replicas_are_the_first_n_healthy_nodes"]),
    "forgets-on-send": (
        ["a_hint_is_forgotten_only_after_its_node_acknowledged_it",
         "cluster_with_your_quorum_parts_matches_the_reference",
         "the_seeds_sloppy_quorum_story_with_your_parts"],
        ["handoff_sends_each_hint_to_its_node_once_it_is_up", "read_repair_sends_the_siblings_to_stale_primaries_only"]),
}


def _grade(work: Path) -> dict:
    return fx.grade_lab(work, LAB3, fx.WRONG_LAB3)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    return fx.shared_once(tmp_path_factory, request, "lab3-grading", _grade)


def _row(graded, student):
    found = [r for r in graded["rows"] if r["student"] == student and r["lab"] == LAB3]
    assert found, f"{student} was not graded; problems: {graded['problems']}"
    return found[0]


def test_the_solution_gets_full_marks_and_the_release_zero(graded):
    assert graded["problems"] == []
    assert _row(graded, "solution")["score"] == graded["max"] == fx.POINTS[LAB3] == 24
    assert _row(graded, "release")["score"] == 0
    assert _row(graded, "solution")["flags"] == [] and _row(graded, "release")["flags"] == []


@pytest.mark.parametrize("student", sorted(BROKEN))
def test_each_classic_mistake_loses_the_points_of_the_promise_it_breaks(graded, student):
    zero, kept = BROKEN[student]
    tests = graded["scores"][student][LAB3]["tests"]
    assert {t: tests[t] for t in zero} == {t: 0.0 for t in zero}
    assert all(tests[t] > 0 for t in kept), tests
    assert _row(graded, student)["score"] < graded["max"]


def test_feedback_names_the_promise_the_input_expected_got_and_the_seed(graded):
    import html
    import re
    page = graded["pages"][f"forgets-on-send/{LAB3}/{fx.NOTEBOOK[LAB3]}.html"]
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "a-hint-is-forgotten-only-after-its-node-acknowledged-it" in text
    assert "smallest failing input: handoff_tick(hints=[('C', " in text
    assert "expected: no ('forget', ...) action" in text
    assert "seed 3108: replay with grading.check_handoff_forgets" in text
    assert "BEGIN HIDDEN TESTS" not in page
