"""What instructors expect of the gradebook: LMS identities and imports (Canvas, Moodle), late
markers, names in any script, old notebooks, regrading one student, manual scores shown as
overrides, grades written into the course folder."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest

from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest

LAB2 = fx.LAB2
pytestmark = pytest.mark.slow


def _zip(path: Path, files: dict[str, dict]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, nb in files.items():
            zf.writestr(name, json.dumps(nb))
    return path


def v3(nb: dict) -> dict:
    """``nb`` written back as nbformat 3 (which Jupyter still opens)."""
    import nbformat
    out = json.loads(nbformat.writes(nbformat.reads(json.dumps(nb), as_version=4), version=3))
    assert out["nbformat"] == 3 and "worksheets" in out
    return out


def test_canvas_names_in_any_script_late_marks_and_old_notebooks_are_read(tmp_path):
    from grader.submissions import find_submissions, load_labs
    labs = load_labs()
    archive = _zip(tmp_path / "canvas.zip", {
        "müllerjürgen_LATE_55_901_vector_clocks.ipynb": fx.load("labs", LAB2),
        "müllerjürgen_55_902_consistent_hashing.ipynb": fx.load("labs", fx.LAB1),
        "nakamura中村_56_903_vector_clocks.ipynb": v3(fx.load("labs", LAB2)),
    })
    subs, problems = find_submissions(archive, labs, tmp_path / "work")
    got = {(s.student, s.lab): s for s in subs}
    assert sorted(got) == [("müllerjürgen_55", fx.LAB1), ("müllerjürgen_55", LAB2),
                           ("nakamura中村_56", LAB2)], problems
    late = got[("müllerjürgen_55", LAB2)]
    assert "late" in late.flags and late.identity == {"lms": "canvas", "user_id": "55",
                                                      "name": "müllerjürgen", "late": True}
    assert "late" not in got[("müllerjürgen_55", fx.LAB1)].flags
    assert "upgraded-from-nbformat-3" in got[("nakamura中村_56", LAB2)].flags


def _grade_class(work: Path) -> dict:
    from grader.course import Course
    work.mkdir(parents=True, exist_ok=True)
    canvas = _zip(work / "canvas.zip", {
        "lovelaceada_1234_991_vector_clocks.ipynb": fx.answered(LAB2),
        "turingalan_LATE_77_992_vector_clocks.ipynb": v3(fx.merge_takes_minimum()),
    })
    moodle_dir = work / "moodle" / "Grace Hopper_4242_assignsubmission_file_"
    fx.write(fx.answered(LAB2), moodle_dir / "vector_clocks.ipynb")
    with fx.isolated_jupyter_env(work / "home"):
        course = Course(work / "course")
        # Due on New Year's day 2026: 10% a day, at most half; Canvas' LATE_ counts one day.
        course.set_late_policy(LAB2, "2026-01-01T00:00", per_day=0.1, max_fraction=0.5)
        first = course.autograde(canvas, labs=[LAB2], workers=2, progress=False)
        course.autograde(work / "moodle", labs=[LAB2], workers=1, progress=False)
        # Alan fixes his merge and is regraded alone.
        fixed = _zip(work / "fixed.zip", {"turingalan_LATE_77_993_vector_clocks.ipynb": fx.answered(LAB2)})
        again = course.autograde(fixed, labs=[LAB2], workers=1, progress=False,
                                 students=["turingalan_77"])
        # The instructor gives Ada's merge_carts a manual score in the formgrader.
        from nbgrader.api import Gradebook
        with Gradebook(course.db_url, "dynamo-lab") as gb:
            grade = gb.find_grade("merge_carts_keeps_every_item", "vector_clocks", LAB2,
                                  "lovelaceada_1234")
            grade.manual_score = 0.5
            gb.db.commit()
        plain = course.export(labs=[LAB2])
        canvas_files, canvas_problems = course.export_lms("canvas", labs=[LAB2])
        moodle_files, _ = course.export_lms("moodle", labs=[LAB2])
    return {"first": first.rows, "again": again.rows, "plain": str(plain), "course": str(course.dir),
            "csv": plain.read_text(encoding="utf-8"),
            "canvas": canvas_files[0].read_text(encoding="utf-8"), "canvas_problems": canvas_problems,
            "moodle": moodle_files[0].read_text(encoding="utf-8")}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    return fx.shared_once(tmp_path_factory, request, "gradebook", _grade_class)


def test_regrading_one_student_leaves_the_others_alone(graded):
    first = {r["student"]: r["score"] for r in graded["first"]}
    assert first == {"lovelaceada_1234": fx.POINTS[LAB2], "turingalan_77": pytest.approx(11 * 0.9)}
    assert [(r["student"], r["score"]) for r in graded["again"]] == [("turingalan_77", pytest.approx(0.9 * fx.POINTS[LAB2]))]
    rows = {r["student"]: r for r in csv.DictReader(graded["csv"].splitlines())}
    assert set(rows) == {"lovelaceada_1234", "turingalan_77", "Grace_Hopper_4242"}
    assert rows["turingalan_77"][LAB2] == f"{0.9 * fx.POINTS[LAB2]:g}"


def test_a_late_notebook_loses_what_the_policy_says_and_shows_it(graded):
    rows = {r["student"]: r for r in csv.DictReader(graded["csv"].splitlines())}
    assert f"late-penalty:-{0.1 * fx.POINTS[LAB2]:g}" in rows["turingalan_77"][f"{LAB2}:flags"]
    assert rows["Grace_Hopper_4242"][LAB2] == f"{fx.POINTS[LAB2]}", "no time, no LATE_: not late"


def test_the_export_keeps_lms_identity_apart_and_shows_overrides_and_lateness(graded):
    assert Path(graded["plain"]) == Path(graded["course"]) / "grades.csv"
    rows = {r["student"]: r for r in csv.DictReader(graded["csv"].splitlines())}
    ada, alan = rows["lovelaceada_1234"], rows["turingalan_77"]
    assert (ada["name"], ada["lms"], ada["lms_user_id"]) == ("lovelaceada", "canvas", "1234")
    assert rows["Grace_Hopper_4242"]["lms"] == "moodle"
    assert ada[LAB2] == f"{fx.POINTS[LAB2] - 0.5:g}" and "manual:merge_carts_keeps_every_item=0.5 (auto 1)" in ada[f"{LAB2}:flags"]
    assert "late" in alan[f"{LAB2}:flags"]
    first = {r["student"]: r for r in graded["first"]}
    assert "upgraded-from-nbformat-3" in first["turingalan_77"]["flags"]    # graded, not 0
    assert ada["max"] == f"{fx.POINTS[LAB2]}"
    assert not any(h.startswith(f"{LAB2}/") for h in rows["lovelaceada_1234"]), "per test only on request"


def test_canvas_and_moodle_files_have_the_headers_their_import_documents(graded):
    canvas = list(csv.reader(graded["canvas"].splitlines()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", LAB2]
    assert canvas[1][0] == "Points Possible" and canvas[1][-1] == f"{fx.POINTS[LAB2]}"
    assert sorted((r[1], r[-1]) for r in canvas[2:]) == [("1234", f"{fx.POINTS[LAB2] - 0.5:g}"), ("77", f"{0.9 * fx.POINTS[LAB2]:g}")]
    assert any("Grace_Hopper_4242" in p for p in graded["canvas_problems"])
    moodle = list(csv.reader(graded["moodle"].splitlines()))
    assert moodle[0] == ["Identifier", "Full name", "Grade", "Maximum Grade", "Feedback comments"]
    assert moodle[1][:4] == ["Participant 4242", "Grace Hopper", *[f"{fx.POINTS[LAB2]}"] * 2]


def test_a_bad_due_date_or_fraction_says_what_to_write():
    from grader.late import LatePolicy, parse_when
    with pytest.raises(ValueError, match="2026-12-08T23:59"):
        parse_when("next friday")
    with pytest.raises(ValueError, match="between 0 and 1"):
        LatePolicy(per_day=10).check()
    assert parse_when("2026-12-08 23:59").tzinfo is not None
