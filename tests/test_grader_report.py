"""``python -m grader report LAB``: the class report of a small graded Lab 2 class
(:mod:`fixtures.submissions.instructor_class`, graded once per session): three correct
solutions, three classic mistakes (min instead of max in merge; equal clocks ordered BEFORE;
reconcile keeping dominated versions) and the release handed in unchanged."""

from __future__ import annotations

import json
import shutil
import statistics

import pytest

from fixtures.submissions import grader_fixtures as fx
from fixtures.submissions import instructor_class as ic
from grader import report as rp

LAB2 = fx.LAB2
pytestmark = pytest.mark.slow     # the class is graded once (about a minute on two cores)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    return fx.shared_once(tmp_path_factory, request, "instructor-class", ic.grade_class)


@pytest.fixture(scope="module")
def made(graded, tmp_path_factory):
    """The report, made once through the command line on a copy of the graded course."""
    import contextlib
    import io

    from grader.cli import main
    course_dir = tmp_path_factory.mktemp("report") / "course"
    shutil.copytree(graded["course"], course_dir)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["report", LAB2, "--course-dir", str(course_dir)])
    data = json.loads((course_dir / "report" / f"{LAB2}.json").read_text())
    return {"code": code, "text": out.getvalue(), "data": data, "dir": course_dir,
            "scores": {r["student"]: r["score"] for r in graded["rows"]}}


def invariant(made, name):
    found = [i for i in made["data"]["invariants"] if i["invariant"] == name]
    assert found, [i["invariant"] for i in made["data"]["invariants"]]
    return found[0]


def test_counts_mean_and_median_are_those_of_the_gradebook(made):
    scores = made["scores"]
    assert made["code"] == 0
    assert set(scores) == set(ic.STUDENTS)
    data = made["data"]
    assert data["graded"] == len(ic.STUDENTS) == 7
    assert data["max"] == fx.POINTS[fx.LAB2]
    assert data["mean"] == pytest.approx(statistics.fmean(scores.values()))
    assert data["median"] == statistics.median(scores.values())
    assert data["full_marks"] == 3 and scores["release"] == 0
    assert data["scores"] == scores
    assert f"{LAB2}: 7 graded; mean {data['mean']:.1f}, median {data['median']:g} of {fx.POINTS[fx.LAB2]}" in made["text"]
    counts = {v: list(scores.values()).count(v) for v in scores.values()}
    assert data["distribution"] == [[v, counts[v]] for v in sorted(counts)]
    assert data["distribution"][0] == [0, 1] and data["distribution"][-1] == [fx.POINTS[fx.LAB2], 3]
    assert "scores (students): 0 (1)  " in made["text"] and made["text"].count(f"{fx.POINTS[fx.LAB2]} (3)") == 1


def test_pass_rate_per_test_with_its_points(made):
    tests = {t["test"]: t for t in made["data"]["tests"]}
    assert list(tests)[0] == "increment_bumps_only_the_coordinator"
    assert sum(t["points"] for t in tests.values()) == fx.POINTS[fx.LAB2]
    # min-merge and the release lose merge; everyone but the release passes increment
    assert (tests["merge_is_the_pointwise_maximum"]["passed"], tests["merge_is_the_pointwise_maximum"]["points"]) == (5, 2)
    assert tests["increment_bumps_only_the_coordinator"]["passed"] == 6
    assert tests["d1_d5_story_with_your_clocks"]["points"] == 3
    assert tests["merge_is_the_pointwise_maximum"]["rate"] == pytest.approx(5 / 7)
    line = next(l for l in made["text"].splitlines() if l.strip().startswith("merge_is_the_pointwise_maximum"))
    assert line.split()[1:] == ["2", "5/7", "71%"]


def test_the_invariants_broken_most_come_first_each_with_a_failing_input(made):
    invs = made["data"]["invariants"]
    counts = [i["broken_by"] for i in invs]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == 2
    merge = invariant(made, "merge-is-the-pointwise-maximum")
    assert (merge["broken_by"], merge["unimplemented"], merge["students"]) == (1, 1, ["min-merge"])
    assert merge["input"] == "a={}, b={'A': 1}"
    assert (merge["expected"], merge["got"]) == ("{'A': 1}", "{'A': 0}")
    # equal-before's compare makes its reconcile keep both copies of one write, as keeps-dominated
    drops = invariant(made, "reconcile-drops-every-dominated-version")
    assert drops["students"] == ["equal-before", "keeps-dominated"]
    # the release left everything unimplemented: that is counted apart, never as the input shown
    for inv in invs:
        assert inv["unimplemented"] == 1
        assert "NotImplementedError" not in (inv["got"] or "")
        assert (inv["input"] is not None) == (inv["broken_by"] > 0)
    incr = invariant(made, "increment-bumps-only-the-coordinator")
    assert incr["broken_by"] == 0
    text = made["text"]
    assert "1. " in text and "merge-is-the-pointwise-maximum: broken by 1 of 7, 1 left it unimplemented" in text
    assert "input: a={}, b={'A': 1}" in text


def test_the_histogram_and_the_html_page_are_in_the_course_folder(made):
    png = made["dir"] / "report" / f"{LAB2}.png"
    page = (made["dir"] / "report" / f"{LAB2}.html").read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert f"<img src='{LAB2}.png'" in page
    assert "merge_is_the_pointwise_maximum</td><td class='n'>2</td><td class='n'>5/7</td>" in page
    assert "<code>a={}, b={&#x27;A&#x27;: 1}</code>" in page


def test_the_representative_input_is_the_most_common_then_the_shortest():
    assert rp.representative(["x=[1, 2]", "y=0", "x=[1, 2]"]) == "x=[1, 2]"
    assert rp.representative(["x=[1, 2]", "y=0"]) == "y=0"
    assert rp.representative(["b=1", "a=1"]) == "a=1"
    assert rp.representative([]) is None


def test_a_failure_report_is_read_into_its_fields():
    text = ("merge-is-the-pointwise-maximum: merge(a, b) returns ...\n"
            "  smallest failing input: a={}, b={'A': 1}\n  expected: {'A': 1}\n"
            "  got:      {'A': 0}\n  seed 2201: replay with grading.check_merge(merge, seed=2201)")
    f = rp.parse_failure(text)
    assert (f["invariant"], f["input"], f["expected"], f["got"]) == (
        "merge-is-the-pointwise-maximum", "a={}, b={'A': 1}", "{'A': 1}", "{'A': 0}")
    long = rp.parse_failure("merge-is-the-pointwise-maximum: x\n  got:      raised ValueError: " + "z" * 10**6)
    assert len(long["got"]) < 500 and long["got"].endswith(" ...")
    other = rp.parse_failure("`merge` is not defined by your answer cells: define it there")
    assert other["invariant"] is None and other["input"] is None
    assert other["headline"].startswith("`merge` is not defined")


def test_a_course_with_nobody_graded_in_the_lab_is_told_to_grade_first(tmp_path, capsys):
    from grader.cli import main
    assert main(["report", LAB2, "--course-dir", str(tmp_path / "course")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"error: no graded submission of {LAB2}" in err and "python -m grader autograde" in err
