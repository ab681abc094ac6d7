"""The course seed: hidden checks draw their examples from it at grading time, the report
names the seed it ran with, the same course seed grades the same way, and no course seed
means the cells' own seeds."""

from __future__ import annotations

import re

import nbformat
import pytest

from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest
from grader import cli
from grader.config import configure
from grader.sandbox import Limits, default_hide
from grader.seeds import check_seed, load_course_seed, save_course_seed
from grader.trusted import answer_cells, grade_test_cell, trusted_checks

SUCCESSOR = "successor_is_first_token_at_or_after_hash"


def _cell(nb: dict, grade_id: str) -> str:
    return next(fx._src(c) for c in nb["cells"] if fx._gid(c) == grade_id)


def _grade(nb: dict, course_seed):
    source = fx.load("solutions", fx.LAB1)        # the instructor's test cell, hidden tests and all
    checks = trusted_checks(_cell(source, SUCCESSOR))
    cells = answer_cells(nbformat.from_dict(nb))
    return grade_test_cell(fx.LAB1, checks, cells, hide=default_hide(None), limits=Limits(),
                           timeout_s=60, course_seed=course_seed)


def test_a_course_seed_changes_the_examples_and_the_report_names_the_seed_to_replay():
    source_seeds = {c.kwargs.get("seed") for c in
                    trusted_checks(_cell(fx.load("solutions", fx.LAB1), SUCCESSOR))}
    wrong = fx.off_by_one()
    plain_ok, plain = _grade(wrong, None)
    seeded_ok, seeded = _grade(wrong, 4242)
    again_ok, again = _grade(wrong, 4242)
    assert not plain_ok and not seeded_ok and not again_ok
    ran_with = {int(s) for s in re.findall(r"seed (\d+): replay", seeded)}
    assert {int(s) for s in re.findall(r"seed (\d+): replay", plain)} <= source_seeds
    assert ran_with and not ran_with & source_seeds
    assert ran_with <= {check_seed(4242, "check_successor_index", s) for s in source_seeds}
    assert seeded == again                         # one course seed, one grade, one report
    assert _grade(fx.answered(fx.LAB1), 4242) == (True, _grade(fx.answered(fx.LAB1), None)[1])


def test_the_course_seed_is_kept_in_the_course_folder_and_reaches_the_grader(tmp_path):
    assert load_course_seed(tmp_path) is None
    save_course_seed(tmp_path, 77)
    assert load_course_seed(tmp_path) == 77
    from traitlets.config import Config
    assert configure(Config(), tmp_path).TrustedGrade.course_seed == 77
    (tmp_path / "course-seed.txt").write_text("seventy\n")
    with pytest.raises(ValueError, match="one whole number"):
        load_course_seed(tmp_path)
    with pytest.raises(SystemExit):
        cli.main(["autograde", str(tmp_path), "--course-seed", "-3"])
