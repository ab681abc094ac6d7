"""``python -m grader similarity LAB``: copied code found through renaming and reformatting,
independent solutions left alone, the starter code never counted, the threshold as documented.

The fast tests fingerprint notebooks directly; the end-to-end ones read a small Lab 2 class
graded once per session (:mod:`fixtures.submissions.instructor_class`): alice (the reference),
carol (an independent solution), dave (carol's code disguised), three classic mistakes (the
reference with one line changed) and the release handed in unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from fixtures.submissions import grader_fixtures as fx
from fixtures.submissions import instructor_class as ic
from grader import similarity as sim

LAB1, LAB2 = fx.LAB1, fx.LAB2


def prints_of(lab: str, who: str, nb: dict) -> sim.Fingerprints:
    keep = sim.lab_keep(lab)
    starter = sim.starter_kgrams(sim.answer_sources(fx.load("labs", lab)), keep=keep,
                                 k=sim.DEFAULT_K)
    return sim.fingerprint(who, sim.answer_sources(nb), keep=keep, starter=starter)


def reference(lab: str) -> sim.Fingerprints:
    return prints_of(lab, sim.REFERENCE, fx.load("solutions", lab))


# -- normalising ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", sorted(ic.INDEPENDENT))
def test_renaming_reformatting_and_comments_leave_the_same_tokens(cell):
    keep = sim.lab_keep(LAB2)
    original = [t for t, _ in sim.normalise(ic.INDEPENDENT[cell], keep)]
    disguised = [t for t, _ in sim.normalise(ic.DISGUISED[cell], keep)]
    assert ic.INDEPENDENT[cell] != ic.DISGUISED[cell]
    assert original == disguised


def test_literal_values_go_but_what_the_code_does_stays():
    toks = lambda src: [t for t, _ in sim.normalise(src)]
    assert toks("def f(x):\n    return x + 1\n") == toks("def g(y):\n    '''doc'''\n    return y + 7  # c\n")
    assert toks("def f(x):\n    return x + 1\n") != toks("def f(x):\n    return x - 1\n")
    assert toks("def f(x):\n    return max(x)\n") != toks("def f(x):\n    return min(x)\n")
    assert toks("def f(x):\n    return x.items()\n") != toks("def f(x):\n    return x.keys()\n")
    # the lab's helpers keep their names; a global of the student's own does not
    assert "AFTER" in toks_with("x = AFTER", LAB2) and "G" in toks_with("x = mine", LAB2)


def toks_with(src: str, lab: str) -> list[str]:
    return [t for t, _ in sim.normalise(src, sim.lab_keep(lab))]


def test_a_cell_that_does_not_parse_is_still_fingerprinted():
    broken = "def f(a, b):\n    total = 0\n    for x in a:\n        total += x * b\n    return total +\n"
    renamed = broken.replace("total", "acc").replace("x", "item")
    a, b = (sim.fingerprint(w, {"c": s}, keep=(), starter=set(), k=5, window=2)
            for w, s in (("a", broken), ("b", renamed)))
    assert a.prints and a.prints == b.prints


def test_a_hostile_cell_neither_crashes_nor_stalls_the_run():
    deep = "def f(a):\n    return " + "+".join(["a"] * 20000) + "\n"   # too deep for ast
    assert len(sim.normalise(deep)) > 20000
    huge = "def g(x):\n" + "    x = x + 1\n" * 100_000
    fp = sim.fingerprint("s", {"huge": huge, "after": "def h():\n    return 1\n"}, keep=(),
                         starter=set())
    assert len(fp.cells["huge"]) == sim.MAX_CHARS and fp.cells["after"] == ""


# -- winnowing -----------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=30), st.lists(st.integers(0, 50), max_size=30),
       st.lists(st.integers(0, 50), min_size=sim.DEFAULT_WINDOW, max_size=20),
       st.integers(1, 8))
def test_a_shared_run_of_window_hashes_always_shares_a_fingerprint(pre, post, common, window):
    """The guarantee of the paper: a run of at least `window` equal hashes in two documents
    makes both keep at least one common fingerprint."""
    common = common + [0] * max(0, window - len(common))
    x = pre + common + post
    y = post + common + pre
    fx_, fy = {h for h, _ in sim.winnow(x, window)}, {h for h, _ in sim.winnow(y, window)}
    assert fx_ & fy & set(common)


def test_winnowing_keeps_the_rightmost_minimum_of_each_window_once():
    assert sim.winnow([5, 3, 3, 9, 1, 7], 3) == [(3, 2), (1, 4)]
    assert sim.winnow([4, 2], 5) == [(2, 1)]
    assert sim.winnow([], 4) == []


# -- what is flagged -----------------------------------------------------------------------------

def test_a_disguised_copy_is_flagged_and_an_independent_solution_is_not():
    carol = prints_of(LAB2, "carol", ic.answered_with(ic.INDEPENDENT))
    dave = prints_of(LAB2, "dave", ic.answered_with(ic.DISGUISED))
    alice = prints_of(LAB2, "alice", fx.answered(LAB2))
    copy = sim.compare(carol, dave)
    assert copy.flagged and copy.similarity == 1.0
    # every answer cell of the copy is matched, on both sides
    assert set(copy.lines["a"]) == set(copy.lines["b"]) == set(ic.INDEPENDENT)
    for independent in (sim.compare(carol, alice), sim.compare(carol, reference(LAB2))):
        assert not independent.flagged
        assert independent.similarity < 0.3


def test_a_partial_copy_counts_against_the_smaller_submission():
    """Dave copies two of carol's parts and writes the others like the reference: the share of
    his own code that is carol's is what counts."""
    mixed = fx.answered(LAB2)
    for cell in ("reconcile", "compare"):
        fx.set_source(mixed, cell, ic.DISGUISED[cell])
    carol = prints_of(LAB2, "carol", ic.answered_with(ic.INDEPENDENT))
    dave = prints_of(LAB2, "dave", mixed)
    pair = sim.compare(carol, dave, threshold=1.0)
    assert 0.2 < pair.similarity < 0.9
    assert set(pair.lines["b"]) == {"reconcile", "compare"}


@pytest.mark.parametrize("lab", [LAB1, LAB2])
def test_the_release_is_similar_to_nothing(lab):
    release = prints_of(lab, "release", fx.load("labs", lab))
    assert release.prints == set()
    others = [reference(lab), prints_of(lab, "solution", fx.answered(lab))]
    for other in others:
        pair = sim.compare(release, other, threshold=0.01, min_fingerprints=0)
        assert pair.similarity == 0 and not pair.flagged
    if lab == LAB1:   # Lab 1's stubs (a class of methods) would be fingerprints of their own
        raw = sim.fingerprint("raw", sim.answer_sources(fx.load("labs", lab)),
                              keep=sim.lab_keep(lab), starter=set())
        assert len(raw.prints) >= sim.DEFAULT_MIN_FINGERPRINTS


def test_the_threshold_is_the_share_of_the_smaller_set_at_or_above_which_a_pair_is_flagged():
    a = sim.Fingerprints("a", {}, {h: [("c", (1,))] for h in range(10)})
    b = sim.Fingerprints("b", {}, {h: [("c", (1,))] for h in range(3, 23)})   # 7 of a's 10 shared
    pair = sim.compare(a, b, threshold=0.7, min_fingerprints=1)
    assert pair.similarity == pytest.approx(0.7) and pair.jaccard == pytest.approx(7 / 23)
    assert pair.flagged
    assert not sim.compare(a, b, threshold=0.71, min_fingerprints=1).flagged
    # too little code of one's own is never flagged, however similar
    assert not sim.compare(a, b, threshold=0.5, min_fingerprints=11).flagged
    assert sim.compare(a, b, threshold=0.5, min_fingerprints=10).flagged


# -- the course: command, JSON, HTML, export -----------------------------------------------------

@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    return fx.shared_once(tmp_path_factory, request, "instructor-class", ic.grade_class)


@pytest.fixture
def course_dir(graded, tmp_path):
    """A private copy of the graded class's course (the command writes into it)."""
    dest = tmp_path / "course"
    shutil.copytree(graded["course"], dest)
    return dest


def run(argv, capsys) -> tuple[int, str, str]:
    from grader.cli import main
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def flagged_pairs(course_dir: Path) -> set[frozenset]:
    data = json.loads((course_dir / "similarity" / f"{LAB2}.json").read_text())
    return {frozenset((p["a"], p["b"])) for p in data["pairs"]}


MISTAKES = {"min-merge", "keeps-dominated", "equal-before"}


@pytest.mark.slow
def test_the_class_report_flags_exactly_the_copies(course_dir, graded, capsys):
    assert {r["student"] for r in graded["rows"]} == set(ic.STUDENTS), graded["problems"]
    code, out, _ = run(["similarity", LAB2, "--course-dir", str(course_dir)], capsys)
    assert code == 0
    assert out.startswith(f"{LAB2}: 7 submission(s) and the reference compared; flagged at "
                          f"similarity >= 70% (shared fingerprints / fingerprints of the smaller "
                          f"submission; at least 8 fingerprints each; code found in more than 10 "
                          f"submissions ignored)\n")
    like_reference = {"alice", *MISTAKES, "reference"}
    expected = {frozenset(("carol", "dave"))} | {
        frozenset((x, y)) for x in like_reference for y in like_reference if x < y}
    assert flagged_pairs(course_dir) == expected
    # most similar first, on stdout, with the matching cells side by side
    listed = [line.split() for line in out.splitlines() if "~" in line and "%" in line.split()[0]]
    values = [float(row[0].rstrip("%")) for row in listed]
    assert values == sorted(values, reverse=True) and len(listed) == len(expected)
    assert "== carol ~ dave: 100%" in out
    assert any("for c in siblings:" in line and "for cart in siblings:" in line
               for line in out.splitlines())


@pytest.mark.slow
def test_the_html_page_shows_the_pair_side_by_side_with_matching_lines_highlighted(course_dir, capsys):
    run(["similarity", LAB2, "--course-dir", str(course_dir)], capsys)
    page = (course_dir / "similarity" / f"{LAB2}.html").read_text()
    assert "carol ~ dave" in page
    # dave's reflowed merge sits beside carol's one-liner, highlighted
    assert "<td class='match'>    every = set(a) | set(b)</td><td class='match'>    all_nodes = set(a) | set(b)</td>" in page
    # a docstring line shares nothing and is not highlighted
    assert "<td>    &quot;&quot;&quot;Bump node&#x27;s counter.&quot;&quot;&quot;</td>" in page


@pytest.mark.slow
def test_export_flags_similar_students_and_the_release_is_not_flagged(course_dir, tmp_path, capsys):
    run(["similarity", LAB2, "--course-dir", str(course_dir)], capsys)
    code, _, _ = run(["export", str(tmp_path / "grades.csv"), "--course-dir", str(course_dir),
                      "--lab", LAB2], capsys)
    assert code == 0
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO((tmp_path / "grades.csv").read_text()))}
    flags = {s: set(r[f"{LAB2}:flags"].split(";")) - {""} for s, r in rows.items()}
    assert {"similar:dave"} <= flags["carol"] and {"similar:carol"} <= flags["dave"]
    assert "similar:reference" in flags["alice"] and "similar:reference" not in flags["carol"]
    assert not any(f.startswith("similar:") for f in flags["release"])
    assert not any(f.startswith("similar:") for s in ("carol", "dave") for f in flags[s]
                   if f not in ("similar:carol", "similar:dave"))


@pytest.mark.slow
def test_a_higher_threshold_flags_only_the_closer_pairs(course_dir, capsys):
    run(["similarity", LAB2, "--course-dir", str(course_dir), "--threshold", "0.9"], capsys)
    data = json.loads((course_dir / "similarity" / f"{LAB2}.json").read_text())
    assert data["threshold"] == 0.9
    assert data["pairs"] and all(p["similarity"] >= 0.9 for p in data["pairs"])
    assert all(p["similarity"] < 0.9 for p in data["closest"])
    from grader.course import Course
    at_default = sim.similarity(Course(course_dir), LAB2)
    assert len(at_default["pairs"]) > len(data["pairs"])
    code, out, _ = run(["similarity", LAB2, "--course-dir", str(course_dir), "--threshold", "1",
                        "--no-code"], capsys)
    assert flagged_pairs(course_dir) == {frozenset(("carol", "dave")), frozenset(("alice", "reference"))}
    assert "==" not in out
    code, out, _ = run(["similarity", LAB2, "--course-dir", str(course_dir), "--common", "0",
                        "--no-code"], capsys)
    assert "at least 8 fingerprints each)\n" in out.splitlines(True)[0]


@pytest.mark.slow
def test_code_most_of_the_class_shares_is_common_and_does_not_count(course_dir, capsys):
    """alice and the three mistakes are the reference, give or take a line: with --common 2
    what more than two of them share is the class's common way of writing it."""
    run(["similarity", LAB2, "--course-dir", str(course_dir), "--common", "2"], capsys)
    assert flagged_pairs(course_dir) == {frozenset(("carol", "dave"))}
    data = json.loads((course_dir / "similarity" / f"{LAB2}.json").read_text())
    assert data["common"] == 2 and data["common_fingerprints"] > 0


def test_dropping_common_fingerprints_counts_submissions_not_occurrences():
    fps = [sim.Fingerprints(f"s{i}", {}, {h: [("c", (1,)), ("d", (2,))] for h in hs})
           for i, hs in enumerate([{1, 2, 3}, {1, 2}, {1, 4}, {5}])]
    assert sim.drop_common(fps, 0) == set()
    assert sim.drop_common(fps, 2) == {1}
    assert [fp.prints for fp in fps] == [{2, 3}, {2}, {4}, {5}]


@pytest.mark.parametrize("argv, message", [
    (["similarity", "lab9_nothing"], "unknown lab(s) ['lab9_nothing']; the labs are"),
    (["similarity", LAB2], f"no graded submission of {LAB2}"),
    (["similarity", LAB2, "--threshold", "1.5"], "--threshold must be in (0, 1]"),
    (["similarity", LAB2, "--common", "-1"], "--common must be 0 (off) or more"),
    (["report", "lab9_nothing"], "unknown lab(s) ['lab9_nothing']"),
])
def test_bad_input_is_one_line_that_says_what_to_do(argv, message, tmp_path, capsys):
    code, out, err = run(argv + ["--course-dir", str(tmp_path / "empty")], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    if "no graded" in message:
        assert "python -m grader autograde" in err
