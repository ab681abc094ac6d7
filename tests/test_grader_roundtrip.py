"""The grader end to end: submissions -> autograde -> feedback -> export, through nbgrader.

One grading run (shared by every test here, computed once per session even under xdist) grades
13 notebooks: the solutions (full marks), the unmodified releases (zero), five classic mistakes,
and four tampered notebooks (a loop that never ends, an import of the reference, stripped
metadata with a deleted test cell, a deleted and an edited test cell).
"""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest

LAB1, LAB2 = fx.LAB1, fx.LAB2
pytestmark = pytest.mark.slow


def _grade_everything(work: Path) -> dict:
    from grader.course import Course
    subs = work / "submissions"
    for lab in (LAB1, LAB2):
        for student, folder in (("solution", ROOT / "solutions"), ("release", ROOT / "labs")):
            dest = subs / student / lab
            dest.mkdir(parents=True)
            shutil.copy(folder / lab / f"{fx.NOTEBOOK[lab]}.ipynb", dest)
    fx.write_all(subs, {**fx.WRONG, **fx.TAMPERED})
    with fx.isolated_jupyter_env(work / "home"):
        course = Course(work / "course", cell_timeout_s=12)
        summary = course.autograde(subs, workers=2, timeout_s=300, progress=False)
        pages = course.feedback().pages
        grades = course.export(work / "grades.csv", per_test=True)
        scores = course.scores()
    return {
        "rows": summary.rows, "problems": summary.problems, "seconds": summary.seconds,
        "scores": scores, "csv": grades.read_text(), "course": str(course.dir),
        "pages": {str(p.relative_to(course.dir / "feedback")): p.read_text(encoding="utf-8")
                  for p in pages},
        "max": {lab: course.max_score(lab) for lab in (LAB1, LAB2)},
        "hidden": __import__("grader.config", fromlist=["x"]).hidden_test_lines(),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    return fx.shared_once(tmp_path_factory, request, "round-trip", _grade_everything)


def row(graded, student, lab):
    found = [r for r in graded["rows"] if r["student"] == student and r["lab"] == lab]
    assert found, f"{student}/{lab} was not graded; problems: {graded['problems']}"
    return found[0]


def scores_of(graded, student, lab):
    return graded["scores"][student][lab]["tests"]


def test_every_submission_was_found_and_graded(graded):
    assert graded["problems"] == []
    assert len(graded["rows"]) == 13
    assert all(r["status"] == "ok" for r in graded["rows"]), graded["rows"]


@pytest.mark.parametrize("lab", [LAB1, LAB2])
def test_solutions_get_full_marks_and_unmodified_releases_zero(graded, lab):
    assert row(graded, "solution", lab)["score"] == graded["max"][lab] == fx.POINTS[lab]
    assert row(graded, "release", lab)["score"] == 0
    assert set(scores_of(graded, "release", lab).values()) == {0.0}
    assert row(graded, "solution", lab)["flags"] == []
    assert row(graded, "release", lab)["flags"] == []


# student -> (tests that must score 0, tests that must keep full points)
BROKEN = {
    "off-by-one": (["successor_is_first_token_at_or_after_hash", "coordinator_owns_first_token_clockwise"],
                   ["tokens_are_key_hash_of_node_and_index", "ownership_is_each_nodes_share_of_the_ring",
                    "moved_fraction_counts_keys_whose_replicas_change"]),
    "repeats-node": (["preference_list_has_n_distinct_physical_nodes",
                      "preference_list_walks_clockwise_from_coordinator",
                      "cluster_with_your_ring_matches_the_reference"],
                     ["successor_is_first_token_at_or_after_hash", "tokens_are_key_hash_of_node_and_index"]),
    "min-merge": (["merge_is_the_pointwise_maximum", "d1_d5_story_with_your_clocks"],
                  ["increment_bumps_only_the_coordinator", "compare_detects_concurrent_clocks"]),
    "equal-before": (["compare_orders_equal_and_descending_clocks"],
                     ["compare_detects_concurrent_clocks", "merge_is_the_pointwise_maximum"]),
    "keeps-dominated": (["reconcile_drops_every_dominated_version", "d1_d5_story_with_your_clocks"],
                        ["reconcile_keeps_every_concurrent_sibling", "merge_carts_keeps_every_item"]),
}


@pytest.mark.parametrize("student", sorted(BROKEN))
def test_each_classic_mistake_loses_the_points_of_the_promise_it_breaks(graded, student):
    lab = fx.WRONG[student][0]
    zero, kept = BROKEN[student]
    tests = scores_of(graded, student, lab)
    assert row(graded, student, lab)["score"] < graded["max"][lab]
    assert {t: tests[t] for t in zero} == {t: 0.0 for t in zero}
    assert all(tests[t] > 0 for t in kept), tests


def test_a_function_that_never_returns_loses_only_its_part_and_is_flagged(graded):
    tests = scores_of(graded, "loops", LAB1)
    assert tests["moved_fraction_counts_keys_whose_replicas_change"] == 0
    assert row(graded, "loops", LAB1)["score"] == 17
    assert "too-slow:moved_fraction_counts_keys_whose_replicas_change" in row(graded, "loops", LAB1)["flags"]


def test_a_ring_that_wraps_the_reference_gets_no_marks_for_it_and_is_flagged(graded):
    tests = scores_of(graded, "uses-reference", LAB1)
    own = {"successor_is_first_token_at_or_after_hash", "moved_fraction_counts_keys_whose_replicas_change"}
    assert all(score == 0 for name, score in tests.items() if name not in own), tests
    assert all(tests[name] > 0 for name in own)
    assert "uses-reference" in row(graded, "uses-reference", LAB1)["flags"]


def test_stripped_metadata_and_a_deleted_test_cell_are_restored_and_graded(graded):
    r = row(graded, "stripped", LAB1)
    assert r["score"] == fx.POINTS[LAB1]
    assert "metadata-restored" in r["flags"]
    assert "restored-cell:ownership_is_each_nodes_share_of_the_ring" in r["flags"]
    assert not any(f.startswith("edited-cell") for f in r["flags"])


def test_deleted_and_edited_test_cells_are_put_back_before_grading_and_flagged(graded):
    r = row(graded, "tamperer", LAB2)
    assert r["score"] == fx.POINTS[LAB2]          # the real tests ran on the (correct) code
    assert "restored-cell:merge_carts_keeps_every_item" in r["flags"]
    assert "edited-cell:increment_bumps_only_the_coordinator" in r["flags"]
    assert scores_of(graded, "tamperer", LAB2)["merge_carts_keeps_every_item"] == 1


def _text(page: str) -> str:
    page = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_no_feedback_page_contains_hidden_test_source(graded):
    assert len(graded["pages"]) == 13
    hidden = [line for line in graded["hidden"] if len(line) >= 8]
    assert any("grading.check_" in line for line in hidden)
    for name, page in graded["pages"].items():
        text = _text(page)
        assert "BEGIN HIDDEN TESTS" not in text, name
        leaked = [line for line in hidden if line in text]
        assert leaked == [], f"{name} shows hidden test source: {leaked[:2]}"


def test_feedback_says_which_promise_broke_on_which_input_with_the_seed(graded):
    # The visible asserts pass; the hidden check finds the off-by-one and shrinks it.
    text = _text(graded["pages"][f"off-by-one/{LAB1}/consistent_hashing.html"])
    assert "preference-list-walks-clockwise-from-coordinator" in text
    assert "smallest failing input: nodes=['A', 'B'], vnodes=1, key='A#0', n=1" in text
    assert "expected: ['A']" in text and "got:      ['B']" in text
    assert "seed 1205: replay with grading.check_preference_list_order(<your ring class>, seed=1205)" in text
    text = _text(graded["pages"][f"uses-reference/{LAB1}/consistent_hashing.html"])
    assert "uses the reference implementation" in text


def test_export_has_a_row_per_student_and_a_column_per_lab_and_per_test(graded):
    table = list(csv.DictReader(io.StringIO(graded["csv"])))
    students = {r["student"] for r in table}
    assert students == {"solution", "release", *fx.WRONG, *fx.TAMPERED}
    by = {r["student"]: r for r in table}
    assert by["solution"]["total"] == f"{fx.POINTS[LAB1] + fx.POINTS[LAB2]:g}"
    assert by["solution"][LAB1] == f"{fx.POINTS[LAB1]:g}"
    assert by["release"]["total"] == "0"
    assert by["off-by-one"][LAB2] == "0" and by["off-by-one"][f"{LAB2}:status"] == "missing"
    assert by["off-by-one"][f"{LAB1}/successor_is_first_token_at_or_after_hash"] == "0"
    assert by["off-by-one"][f"{LAB1}/tokens_are_key_hash_of_node_and_index"] == "1"
    assert "uses-reference" in by["uses-reference"][f"{LAB1}:flags"]
    header = next(csv.reader(io.StringIO(graded["csv"])))
    assert sum(h.startswith(f"{LAB1}/") for h in header) == 10
    assert sum(h.startswith(f"{LAB2}/") for h in header) == 9
