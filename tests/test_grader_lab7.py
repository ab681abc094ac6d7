"""Lab 7 through the whole grading pipeline (nbgrader autograde, the trusted checks, the
student's code in the sandbox, the lab's records crossing it): the solution gets full marks,
the release zero, and each of the lab's classic mistakes loses the points of the promises it
breaks, with feedback that names the promise, the smallest input, expected against got, and
the seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest

LAB7 = "lab7_bayou"
pytestmark = pytest.mark.slow


def stamp_equals_seen() -> dict:
    """The stamp is max(clock, max stamp seen): a write can take a stamp already seen."""
    return fx.replace_in(fx.answered(LAB7), "new_stamp", "max(vector.values(), default=0) + 1)",
                         "max(vector.values(), default=0))")


def newest_first() -> dict:
    """The sender sends the right writes, newest first."""
    return fx.replace_in(fx.answered(LAB7), "writes_to_send", "return out",
                         "return out[::-1]")


def commit_by_server() -> dict:
    """The primary commits server by server, not in log order."""
    return fx.replace_in(fx.answered(LAB7), "commit", "tentative = [w for w in log if w.csn is None]",
                         "tentative = sorted((w for w in log if w.csn is None), key=lambda w: w.server)")


WRONG = {"stamp-equals-seen": (LAB7, stamp_equals_seen), "newest-first": (LAB7, newest_first),
         "commit-by-server": (LAB7, commit_by_server)}

#: student -> (tests that must score 0, tests that must keep their points)
BROKEN = {
    "stamp-equals-seen": (
        ["a_new_write_is_stamped_above_every_stamp_seen", "the_lectures_example_with_your_parts"],
        ["tentative_writes_sort_by_stamp_then_server_after_the_committed",
         "the_sender_sends_exactly_what_the_receiver_lacks",
         "the_primary_commits_its_tentative_writes_in_log_order"]),
    "newest-first": (
        ["a_session_sends_in_the_senders_log_order", "servers_with_your_parts_match_the_reference"],
        ["the_sender_sends_exactly_what_the_receiver_lacks", "a_new_write_is_stamped_above_every_stamp_seen",
         "the_primary_commits_its_tentative_writes_in_log_order"]),
    "commit-by-server": (
        ["the_primary_commits_its_tentative_writes_in_log_order", "the_lectures_example_with_your_parts",
         "servers_with_your_parts_match_the_reference"],
        ["a_new_write_is_stamped_above_every_stamp_seen",
         "a_committed_write_goes_after_the_committed_before_the_tentative",
         "a_session_sends_in_the_senders_log_order"]),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    return fx.shared_once(tmp_path_factory, request, "lab7-grading",
                          lambda work: fx.grade_lab(work, LAB7, WRONG))


def _row(graded, student):
    found = [r for r in graded["rows"] if r["student"] == student and r["lab"] == LAB7]
    assert found, f"{student} was not graded; problems: {graded['problems']}"
    return found[0]


def test_the_solution_gets_full_marks_and_the_release_zero(graded):
    assert graded["problems"] == []
    assert _row(graded, "solution")["score"] == graded["max"] == fx.POINTS[LAB7] == 20
    assert _row(graded, "release")["score"] == 0
    assert _row(graded, "solution")["flags"] == [] and _row(graded, "release")["flags"] == []


@pytest.mark.parametrize("student", sorted(BROKEN))
def test_each_classic_mistake_loses_the_points_of_the_promise_it_breaks(graded, student):
    zero, kept = BROKEN[student]
    tests = graded["scores"][student][LAB7]["tests"]
    assert {t: tests[t] for t in zero} == {t: 0.0 for t in zero}
    assert all(tests[t] > 0 for t in kept), tests
    assert _row(graded, student)["score"] < graded["max"]


def test_feedback_names_the_promise_the_input_expected_got_and_the_seed(graded):
    import html
    import re
    page = graded["pages"][f"newest-first/{LAB7}/{fx.NOTEBOOK[LAB7]}.html"]
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "a-session-sends-in-the-senders-log-order" in text
    assert "smallest failing input: log=[" in text
    assert "expected: [Write(csn=None" in text
    assert "seed 7105: replay with grading.check_sends_in_log_order" in text
    assert "BEGIN HIDDEN TESTS" not in page
