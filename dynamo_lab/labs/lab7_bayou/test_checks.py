"""Lab 7's checks pass correct parts written another way than the notebook's solution, the
adapters leave the reference servers exactly as they were (same trace), each classic mistake
loses the promises it breaks and only those, the two breaks show what the lab says, and the
measurements agree with their formulas."""

from __future__ import annotations

import bisect

import pytest

from dynamo_lab import grading
from dynamo_lab.bayou.campaign import run_campaign
from dynamo_lab.errors import ConfigError
from dynamo_lab.grading import GradingFailure
from dynamo_lab.labs import lab
from dynamo_lab.labs.lab7_bayou import checks, measure, scenarios
from dynamo_lab.labs.lab7_bayou.records import Commit, Write
from dynamo_lab.labs.lab7_bayou.widgets import BayouLogWidget, draw_bookings, draw_sessions

FEW = {"examples": 60}


# -- correct parts written differently ------------------------------------------------------------

def c_new_stamp(clock, vector):
    seen = sorted(vector.values())[-1] if vector else 0
    return clock if clock > seen else seen + 1


def c_position(log, write):
    def key(w):
        return (w.csn is None, w.csn if w.csn is not None else w.stamp,
                "" if w.csn is not None else w.server)
    return bisect.bisect([key(w) for w in log], key(write))


def c_writes_to_send(log, receiver_vector, receiver_csn):
    def holds(w):
        return receiver_vector.get(w.server, 0) >= w.stamp
    notices = {i: Commit(w.csn, w.stamp, w.server) for i, w in enumerate(log)
               if w.csn is not None and w.csn > receiver_csn and holds(w)}
    whole = {i: w for i, w in enumerate(log) if not holds(w)
             and (w.csn is None or w.csn > receiver_csn)}
    return [item for _, item in sorted({**notices, **whole}.items())]


def c_commit(log, csn):
    out = []
    for w in log:
        if w.csn is None:
            csn += 1
            out.append(Commit(csn, w.stamp, w.server))
    return out


CORRECT = (c_new_stamp, c_position, c_writes_to_send, c_commit)


def test_correct_parts_written_differently_pass_every_check():
    checks.check_new_stamp(c_new_stamp, **FEW)
    checks.check_position_tentative(c_position, **FEW)
    checks.check_position_committed(c_position, **FEW)
    checks.check_sends_what_is_lacking(c_writes_to_send, **FEW)
    checks.check_sends_in_log_order(c_writes_to_send, **FEW)
    checks.check_commit(c_commit, **FEW)
    checks.check_lecture_example(*CORRECT)
    checks.check_bayou_cluster(*CORRECT)


def test_the_adapters_leave_the_reference_servers_as_they_were():
    reference = run_campaign(3, 40, trace_limit=None)
    mine = run_campaign(3, 40, trace_limit=None, parts=checks.bayou_parts(*CORRECT))
    assert reference.ok and mine.ok
    assert mine.cluster.trace_lines() == reference.cluster.trace_lines()
    assert len(reference.cluster.trace_lines()) > 200


def test_grading_exports_the_labs_checks_and_the_spec_names_every_invariant():
    spec = lab("lab7")
    assert spec.records == (Write, Commit)
    assert set(checks.SELF_CHECK) == {inv.replace("-", "_") for inv in spec.invariants}
    assert grading.bayou_parts is checks.bayou_parts


# -- classic mistakes lose exactly their promises ----------------------------------------------

def _fails(check, *parts, invariant: str, **kw) -> str:
    with pytest.raises(GradingFailure) as info:
        check(*parts, **kw)
    assert str(info.value).startswith(invariant), str(info.value)
    return str(info.value)


def test_a_stamp_not_above_the_highest_seen_fails_the_stamp_rule():
    def equal_to_seen(clock, vector):
        return max([clock, *vector.values()])
    text = _fails(checks.check_new_stamp, equal_to_seen, **FEW,
                  invariant="a-new-write-is-stamped-above-every-stamp-seen")
    assert "max(clock, max(vector) + 1)" in text and "seed 7101" in text


def test_a_committed_write_sorted_by_its_stamp_fails_only_the_committed_position():
    def by_stamp_when_incoming(log, write):
        def key(w):
            return (0, w.csn, "") if w.csn is not None else (1, w.stamp, w.server)
        mine = (1, write.stamp, write.server)          # forgets that it is committed
        return sum(1 for w in log if key(w) < mine)
    checks.check_position_tentative(by_stamp_when_incoming, **FEW)
    text = _fails(checks.check_position_committed, by_stamp_when_incoming, **FEW,
                  invariant="a-committed-write-goes-after-the-committed-before-the-tentative")
    assert "whatever its stamp" in text


def test_a_newest_first_sender_sends_the_right_items_in_the_wrong_order():
    def newest_first(log, vector, csn):
        return list(reversed(c_writes_to_send(log, vector, csn)))
    checks.check_sends_what_is_lacking(newest_first, **FEW)
    text = _fails(checks.check_sends_in_log_order, newest_first, **FEW,
                  invariant="a-session-sends-in-the-senders-log-order")
    assert "prefix property" in text
    _fails(checks.check_bayou_cluster, c_new_stamp, c_position, newest_first, c_commit,
           invariant="servers-with-your-parts-match-the-reference")


def test_a_sender_that_resends_held_writes_instead_of_notices_fails_what_is_lacking():
    def whole_writes(log, vector, csn):
        return [w for w in log if (w.csn is not None and w.csn > csn)
                or (w.csn is None and w.stamp > vector.get(w.server, 0))]
    checks.check_sends_in_log_order(whole_writes, **FEW)
    text = _fails(checks.check_sends_what_is_lacking, whole_writes, **FEW,
                  invariant="the-sender-sends-exactly-what-the-receiver-lacks")
    assert "send only the notice" in text


def test_a_commit_by_server_name_fails_the_commit_and_the_lecture():
    def by_server(log, csn):
        tentative = sorted((w for w in log if w.csn is None), key=lambda w: (w.server, w.stamp))
        return [Commit(csn + i, w.stamp, w.server) for i, w in enumerate(tentative, start=1)]
    _fails(checks.check_commit, by_server, **FEW,
           invariant="the-primary-commits-its-tentative-writes-in-log-order")
    text = _fails(checks.check_lecture_example, c_new_stamp, c_position, c_writes_to_send,
                  by_server, invariant="the-lectures-example-with-your-parts")
    assert "Primary commits its entries (again)" in text
    text = _fails(checks.check_bayou_cluster, c_new_stamp, c_position, c_writes_to_send,
                  by_server, invariant="servers-with-your-parts-match-the-reference")
    assert "causal-order" in text


def test_a_part_returning_something_else_is_told_what_to_return():
    parts = checks.bayou_parts(writes_to_send=lambda log, v, c: [(w.stamp, w.server) for w in log])
    with pytest.raises(ConfigError, match="each item is a Write"):
        parts.writes_to_send(scenarios.lecture.cluster().server("P").log or [_one()], {}, 0)
    parts = checks.bayou_parts(position=lambda log, w: len(log) + 1)
    with pytest.raises(ConfigError, match="return an int from 0 to 0"):
        parts.position([], _one())


def _one():
    from dynamo_lab.bayou import Put
    from dynamo_lab.bayou.writes import Write as RefWrite
    return RefWrite(1, "P", Put("X", 4))


def test_using_the_reference_gets_no_marks():
    from dynamo_lab.bayou.anti_entropy import writes_to_send as reference

    def wraps(log, vector, csn):
        return reference(log, vector, csn)
    wraps.__module__ = "__main__"             # as a notebook's (code in dynamo_lab is the library)
    with pytest.raises(GradingFailure) as info:
        checks.check_sends_what_is_lacking(wraps, **FEW)
    assert grading.REFERENCE_USED_MARK in str(info.value)


# -- the breaks, the widget and the measurements --------------------------------------------------

def test_the_out_of_order_receiver_loses_a_write_for_good():
    good = scenarios.out_of_order_receiver(checks.bayou_parts(writes_to_send=c_writes_to_send).writes_to_send)
    assert good.violations == []
    assert good.frames[-1].tables["B"].labels() == ["1:7:A w(X,3)", "2:12:A w(Y,4)"]

    def newest_first(log, vector, csn):
        return list(reversed(c_writes_to_send(log, vector, csn)))
    bad = scenarios.out_of_order_receiver(checks.bayou_parts(writes_to_send=newest_first).writes_to_send)
    assert [r[0] for r in bad.frames[-1].tables["B"].rows] == ["1:12:A"]
    assert dict(bad.frames[-1].tables["B"].versions)["A"] == 12        # the vector lies
    assert any(v.startswith("prefix-property at B") and "missing [7]" in v for v in bad.violations)


def test_a_commit_against_causality_keeps_a_deleted_value_everywhere():
    good = scenarios.commit_against_causality(checks.bayou_parts(commit=c_commit).commit)
    assert good.violations == [] and good.frames[-1].databases == {"P": {}, "A": {}, "B": {}}

    def by_server(log, csn):
        tentative = sorted((w for w in log if w.csn is None), key=lambda w: w.server)
        return [Commit(csn + i, w.stamp, w.server) for i, w in enumerate(tentative, start=1)]
    bad = scenarios.commit_against_causality(checks.bayou_parts(commit=by_server).commit)
    assert bad.frames[-1].databases == {n: {"X": 1} for n in "PAB"}
    assert any(v.startswith("causal-order") for v in bad.violations)


def test_the_log_widget_steps_through_the_lecture_with_committed_rows_marked():
    w = BayouLogWidget(scenarios.lecture_frames(checks.bayou_parts(*CORRECT)))
    assert w.step_slider.max == 6 and "data-label='∞:1:P'" in w.html
    w.next_button.click()
    assert w.frame.title == "Anti-Entropy Session A & B"
    assert "data-server='B' data-label='∞:7:A' data-committed='no' data-new='yes'" in w.html
    w.step_slider.value = 6
    assert w.html.count("data-committed='yes'") == 18 and "data-committed='no'" not in w.html
    w.next_button.click()                                   # past the end: stays
    assert w.step_slider.value == 6
    with pytest.raises(ValueError):
        BayouLogWidget([])


def test_sessions_to_spread_one_write_match_the_simple_epidemic():
    for n in (5, 12):
        row = measure.sessions_to_converge(n, seeds=range(1, 81))
        assert abs(row.mean - measure.one_write_expectation(n)) < 0.12 * measure.one_write_expectation(n), \
            (n, row.mean)
    assert measure.one_write_expectation(3) == 3.0
    fig = draw_sessions([measure.sessions_to_converge(4, seeds=range(1, 5))])
    assert {a.get_gid() for a in fig.axes[0].get_lines()} >= {"measured", "formula"}


def test_longer_partitions_change_more_bayou_results_and_double_book_more_dynamo_slots():
    short, long = measure.bookings(0, seeds=range(1, 4)), measure.bookings(10, seeds=range(1, 4))
    assert short.double_booked == 0 and long.double_booked > 0
    assert long.changed_rate > short.changed_rate
    assert long.bookings > short.bookings and long.sessions > 0
    fig = draw_bookings([short, long])
    assert {a.get_gid() for a in fig.axes[0].get_lines()} >= {"bayou-changed", "dynamo-double"}


def test_records_cross_the_grading_sandbox_as_themselves():
    from grader.preludes import prelude
    from grader.sandbox import Sandbox
    cells = [{"id": "commit", "source": "def commit(log, csn):\n"
              "    assert type(log[0]) is Write and log[0].stamp == 5\n"
              "    return [Commit(csn + 1, log[0].stamp, log[0].server)]\n"}]
    with Sandbox(prelude("lab7_bayou"), cells) as sb:
        got = sb.proxy("commit")([Write(None, 5, "B", "w(Z,8)")], 2)
    assert got == [Commit(3, 5, "B")] and type(got[0]) is Commit
