"""The Dynamo / Bayou lecture's example, replayed on real servers, table for table.

The slides' text tables below are copied verbatim from the lecture notes (slide markup
included: ``$\\infty$`` for a tentative CSN, ``<b>`` for committed rows, ``w(...)`` and
``W(...)`` alike). Three steps are pictures on the slides (the five writes, the primary's first
commit, B's delete); their tables are written here in the same notation from what the slides
say, and marked so.
"""

from __future__ import annotations

import pytest

from dynamo_lab.bayou import Delete, lecture, parse, render
from dynamo_lab.bayou.tables import Table

# -- verbatim from the lecture notes ------------------------------------------------------------

A_AND_B = {
    "P": (
        'P\t\tVersions\n'
        '$\\infty$ :1:P\tw(X,4)\tP: 7\n'
        '$\\infty$ :7:P\tw(Y,8)\tA: 0\n'
        '\t\tB: 0'),
    "A": (
        'A\t\tVersions\n'
        '$\\infty$ :5:B\tw(Z,8)\tP: 0\n'
        '$\\infty$ :7:A\tw(X,3)\tA: 12\n'
        '$\\infty$ :12:A\tw(Y,4)\tB: 5'),
    "B": (
        'B\t\tVersions\n'
        '$\\infty$ :5:B\tw(Z,8)\tP: 0\n'
        '$\\infty$ :7:A\tw(X,3)\tA: 12\n'
        '$\\infty$ :12:A\tw(Y,4)\tB: 5'),
}

P_AND_B = {
    "P": (
        'P\t\tVersions\n'
        '<b>1:1:P</b>\t<b>w(X,4)</b>\tP: 7\n'
        '<b>2:7:P</b>\t<b>w(Y,8)</b>\tA: 12\n'
        '$\\infty$ :5:B\tw(Z,8)\tB: 13\n'
        '$\\infty$ :7:A\tw(X,3)\t\n'
        '$\\infty$ :12:A\tw(Y,4)\t\n'
        '$\\infty$ :13:B\tD(Y)\t'),
    "A": (
        'A\t\tVersions\n'
        '$\\infty$ :5:B\tw(Z,8)\tP: 0\n'
        '$\\infty$ :7:A\tw(X,3)\tA: 12\n'
        '$\\infty$ :12:A\tw(Y,4)\tB: 5'),
    "B": (
        'B\t\tVersions\n'
        '<b>1:1:P</b>\t<b>w(X,4)</b>\tP: 7\n'
        '<b>2:7:P</b>\t<b>w(Y,8)</b>\tA: 12\n'
        '$\\infty$ :5:B\tw(Z,8)\tB: 13\n'
        '$\\infty$ :7:A\tw(X,3)\t\n'
        '$\\infty$ :12:A\tw(Y,4)\t\n'
        '$\\infty$ :13:B\tD(Y)\t'),
}

P_COMMITS = {
    "P": (
        'P\t\tVersions\n'
        '<b>1:1:P</b>\tW(X,4)\tP: 7\n'
        '<b>2:7:P</b>\tW(Y,8)\tA: 12\n'
        '<b>3:5:B</b>\tW(Z,8)\tB: 13\n'
        '<b>4:7:A</b>\tW(X,3)\t\n'
        '<b>5:12:A</b>\tW(Y,4)\t\n'
        '<b>6:13:B</b>\tD(Y)\t'),
    "A": (
        'A\t\tVersions\n'
        '$\\infty$ :5:B\tW(Z,8)\tP: 0\n'
        '$\\infty$ :7:A\tW(X,3)\tA: 12\n'
        '$\\infty$ :12:A\tW(Y,4)\tB: 5'),
    "B": (
        'B\t\tVersions\n'
        '<b>1:1:P</b>\tW(X,4)\tP: 7\n'
        '<b>2:7:P</b>\tW(Y,8)\tA: 12\n'
        '$\\infty$ :5:B\tW(Z,8)\tB: 13\n'
        '$\\infty$ :7:A\tW(X,3)\t\n'
        '$\\infty$ :12:A\tW(Y,4)\t\n'
        '$\\infty$ :13:B\tD(Y)\t'),
}

AFTER_MORE_SESSIONS = {
    "P": (
        'P\t\tVersions\n'
        '<b>1:1:P</b>\tW(X,4)\tP: 7\n'
        '<b>2:7:P</b>\tW(Y,8)\tA: 12\n'
        '<b>3:5:B</b>\tW(Z,8)\tB: 13\n'
        '<b>4:7:A</b>\tW(X,3)\t\n'
        '<b>5:12:A</b>\tW(Y,4)\t\n'
        '<b>6:13:B</b>\tD(Y)\t'),
    "A": (
        'A\t\tVersions\n'
        '<b>1:1:P</b>\tW(X,4)\tP: 7\n'
        '<b>2:7:P</b>\tW(Y,8)\tA: 12\n'
        '<b>3:5:B</b>\tW(Z,8)\tB: 13\n'
        '<b>4:7:A</b>\tW(X,3)\t\n'
        '<b>5:12:A</b>\tW(Y,4)\t\n'
        '<b>6:13:B</b>\tD(Y)\t'),
    "B": (
        'B\t\tVersions\n'
        '<b>1:1:P</b>\tW(X,4)\tP: 7\n'
        '<b>2:7:P</b>\tW(Y,8)\tA: 12\n'
        '<b>3:5:B</b>\tW(Z,8)\tB: 13\n'
        '<b>4:7:A</b>\tW(X,3)\t\n'
        '<b>5:12:A</b>\tW(Y,4)\t\n'
        '<b>6:13:B</b>\tD(Y)\t'),
}

# -- the slides that are pictures: written from their text ------------------------------------

AFTER_WRITES = {      # "Bayou Writes": each server holds what its clients wrote
    "P": "P\t\tVersions\n∞:1:P\tw(X,4)\tP: 7\n∞:7:P\tw(Y,8)\tA: 0\n\t\tB: 0",
    "A": "A\t\tVersions\n∞:7:A\tw(X,3)\tP: 0\n∞:12:A\tw(Y,4)\tA: 12\n\t\tB: 0",
    "B": "B\t\tVersions\n∞:5:B\tw(Z,8)\tP: 0\n\t\tA: 0\n\t\tB: 5",
}
FIRST_COMMIT = {      # "Primary commits its entries": P holds only its own two
    **A_AND_B,
    "P": "P\t\tVersions\n1:1:P\tw(X,4)\tP: 7\n2:7:P\tw(Y,8)\tA: 0\n\t\tB: 0",
}
DELETE_AT_B = {       # "Write timestamp = max(clock, max(TS)+1)": D(Y) at B is 13:B
    **FIRST_COMMIT,
    "B": ("B\t\tVersions\n∞:5:B\tw(Z,8)\tP: 0\n∞:7:A\tw(X,3)\tA: 12\n"
          "∞:12:A\tw(Y,4)\tB: 13\n∞:13:B\tD(Y)"),
}

EXPECTED = [                       # lecture.STEPS, in order
    ("Bayou Writes", AFTER_WRITES, "picture"),
    ("Anti-Entropy Session A & B", A_AND_B, "slide text"),
    ("Primary commits its entries", FIRST_COMMIT, "picture"),
    ("Write after anti-entropy session: D(Y) at B", DELETE_AT_B, "picture"),
    ("Anti-Entropy Session P & B", P_AND_B, "slide text"),
    ("Primary commits its entries (again)", P_COMMITS, "slide text"),
    ("After a number of commits and anti-entropy sessions", AFTER_MORE_SESSIONS, "slide text"),
]

FINAL_LOG = ["1:1:P w(X,4)", "2:7:P w(Y,8)", "3:5:B w(Z,8)", "4:7:A w(X,3)", "5:12:A w(Y,4)",
             "6:13:B D(Y)"]


def test_the_example_matches_every_table_of_the_slides():
    cluster = lecture.cluster()
    ran = list(lecture.steps(cluster))
    assert [s.title for s, _ in ran] == [title for title, _, _ in EXPECTED]
    for (step, tables), (title, slide, source) in zip(ran, EXPECTED):
        for server in ("P", "A", "B"):
            assert tables[server] == parse(slide[server]), (
                f"after '{title}' ({source}), {server}'s log is\n{render(tables[server])}\n"
                f"but the slide shows\n{slide[server]}")
    assert cluster.checker.ok, cluster.checker.violations


def test_the_final_logs_and_vectors_are_the_lectures():
    cluster = lecture.cluster()
    for _ in lecture.steps(cluster):
        pass
    for server in ("P", "A", "B"):
        t = cluster.table(server)
        assert t.labels() == FINAL_LOG
        assert t.versions == (("P", 7), ("A", 12), ("B", 13))
    assert cluster.converged()
    # the database is the log applied in order: X=4, then Y=8, Z=8, X=3, Y=4, then Y deleted
    assert cluster.databases() == {s: {"X": 3, "Z": 8} for s in ("P", "A", "B")}


def test_the_delete_is_stamped_by_the_rule_not_the_clock():
    cluster = lecture.cluster()
    it = lecture.steps(cluster)
    for step, _ in it:
        if step.title == "Primary commits its entries":
            break
    assert int(cluster.now) == 12                          # B's clock reads 12 ...
    w = cluster.write("B", Delete("Y"))
    assert (w.stamp, w.server) == (13, "B")                # ... max(12, max(TS) + 1) = 13


def test_the_primary_respects_causality_d_y_commits_after_the_write_it_saw():
    cluster = lecture.cluster()
    for _ in lecture.steps(cluster):
        pass
    order = [row[0] for row in cluster.table("P").rows]
    assert order.index("5:12:A") < order.index("6:13:B")  # B deleted Y after seeing w(Y,4)


def test_b_rolls_back_its_tentative_writes_when_the_committed_ones_arrive():
    cluster = lecture.cluster()
    for step, _ in lecture.steps(cluster):
        if step.title == "Write after anti-entropy session: D(Y) at B":
            before = cluster.server("B").stats["rolled_back"]
            assert cluster.server("B").db == {"X": 3, "Z": 8}
        if step.title == "Anti-Entropy Session P & B":
            b = cluster.server("B")
            # 1:1:P and 2:7:P are committed: they go before all four tentative writes
            assert b.stats["rolled_back"] - before == 4
            assert b.db == {"X": 3, "Z": 8}
            break


def test_render_reads_back_and_matches_the_slides_layout():
    cluster = lecture.cluster()
    for _ in lecture.steps(cluster):
        pass
    t = cluster.table("A")
    assert parse(render(t)) == t
    assert parse(render(t, bold=True)) == t
    assert render(t) == ("A\t\tVersions\n1:1:P\tw(X,4)\tP: 7\n2:7:P\tw(Y,8)\tA: 12\n"
                         "3:5:B\tw(Z,8)\tB: 13\n4:7:A\tw(X,3)\n5:12:A\tw(Y,4)\n6:13:B\tD(Y)")


def test_a_truncated_table_says_so():
    t = Table("A", (("7:3:B", "w(Z,1)", True),), (("P", 4), ("A", 0), ("B", 3)), osn=6)
    assert "(CSN 1..6 truncated)" in render(t)
    assert parse(render(t)) == t


@pytest.mark.parametrize("bad", ["P Versions\nx:1:P\tw(X,4)\tP: 1", "P\t\tStuff\n"])
def test_parse_refuses_what_is_not_a_table(bad):
    with pytest.raises(ValueError):
        parse(bad)
