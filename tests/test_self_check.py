"""grading.self_check: a student runs every check of a lab, at the strength of the hidden
tests, before submitting, and reads a score table with the lab's points.

How long it takes on this machine is a benchmark figure (``python -m bench self_check``), not
a timed test.
"""

from __future__ import annotations

import io
import re

import pytest

from bench.bench_self_check import solved_namespace
from dynamo_lab import grading
from dynamo_lab.labs import lab, labs
from grader.build_notebooks import parse_cells
from grader.config import BEGIN_HIDDEN, END_HIDDEN
from grader.trusted import trusted_checks


def _hidden(source: str) -> str:
    return source.split(BEGIN_HIDDEN, 1)[1].split(END_HIDDEN, 1)[0]


@pytest.mark.parametrize("one", labs(), ids=lambda one: one.id)
def test_self_check_runs_what_the_hidden_tests_run(one):
    cells = parse_cells(one.cells_file.read_text(encoding="utf-8"), str(one.cells_file))
    hidden = {c["attrs"]["id"]: [(t.func, tuple(t.names), t.kwargs)
                                 for t in trusted_checks(_hidden(c["source"]))]
              for c in cells if c["kind"] == "test"}
    table = one.checks.SELF_CHECK
    assert list(table) == list(one.parts)            # every test cell, in notebook order
    assert {test: [entry] for test, entry in table.items()} == hidden


@pytest.mark.parametrize("one", labs(), ids=lambda one: one.id)
def test_the_solutions_get_full_marks_with_a_table_of_the_labs_points(one):
    out = io.StringIO()
    report = grading.self_check(one.id, namespace=solved_namespace(one), out=out)
    assert report.lab == one.id and report.points == one.points
    assert report.score == one.points and [r.result for r in report.rows] == ["passed"] * len(one.parts)
    text = out.getvalue()
    for test, points in one.parts.items():
        assert re.search(rf"^{test.replace('_', '-')} +{points}/{points} +passed", text, re.M)
    assert re.search(rf"^total +{one.points}/{one.points} ", text, re.M)
    assert "Every check passes with these seeds" in text


def test_a_broken_part_scores_zero_with_its_report_and_the_rest_still_counts():
    one = lab("lab2")
    ns = solved_namespace(one)

    def merge(a, b):              # the minimum: a classic
        return {n: min(a.get(n, 0), b.get(n, 0)) for n in {*a, *b} if min(a.get(n, 0), b.get(n, 0))}

    def increment(clock, node):
        raise NotImplementedError()

    ns.update(merge=merge, increment=increment)
    del ns["merge_carts"]
    out = io.StringIO()
    report = grading.self_check(namespace=ns, out=out)          # the lab is found from the names
    rows = {r.test: r for r in report.rows}
    assert report.lab == one.id
    assert rows["increment_bumps_only_the_coordinator"].result == "failed"
    assert "not implemented yet" in rows["increment_bumps_only_the_coordinator"].report
    assert rows["merge_is_the_pointwise_maximum"].result == "failed"
    assert "smallest failing input: a={}" in rows["merge_is_the_pointwise_maximum"].report
    assert rows["merge_carts_keeps_every_item"].result == "not run"
    assert rows["compare_detects_concurrent_clocks"].result == "passed"
    lost = {"increment_bumps_only_the_coordinator", "merge_is_the_pointwise_maximum",
            "d1_d5_story_with_your_clocks", "cluster_with_your_clocks_matches_the_reference",
            "merge_carts_keeps_every_item"}
    assert report.score == one.points - sum(one.parts[t] for t in lost)
    text = out.getvalue()
    assert re.search(r"^merge-is-the-pointwise-maximum +0/2 +failed: merge\(a, b\) returns", text, re.M)
    assert "What did not pass" in text and "seed 2102: replay with grading.check_merge" in text


def test_a_part_that_never_returns_costs_its_budget_once():
    one = lab("lab2")
    ns = solved_namespace(one)

    def merge(a, b):
        while True:
            pass

    ns["merge"] = merge
    out = io.StringIO()
    report = grading.self_check(one.id, namespace=ns, out=out, budget_s=0.5)
    rows = {r.test: r for r in report.rows}
    assert rows["merge_is_the_pointwise_maximum"].result == "failed"
    assert "did not finish within 0.5 s" in rows["merge_is_the_pointwise_maximum"].report
    for test in ("d1_d5_story_with_your_clocks", "cluster_with_your_clocks_matches_the_reference"):
        assert rows[test].result == "not run" and rows[test].seconds < 0.1
        assert rows[test].report.startswith("skipped: merge did not finish in "
                                            "merge-is-the-pointwise-maximum")
    assert rows["merge_carts_keeps_every_item"].result == "passed"
    assert report.seconds < 10


def test_a_notebook_that_says_nothing_of_its_lab_is_asked_which():
    with pytest.raises(ValueError, match=r"grading.self_check\('lab1'\)"):
        grading.self_check(namespace={}, out=io.StringIO())
