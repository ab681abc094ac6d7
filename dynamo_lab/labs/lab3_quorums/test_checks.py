"""Lab 3's checks pass correct parts written another way than the notebook's solution, the
adapters leave the reference cluster exactly as it was (same trace), and each classic mistake
the lab names loses the points of the promises it breaks, and only those."""

from __future__ import annotations

import pytest

from dynamo_lab import grading
from dynamo_lab.campaign import run_campaign
from dynamo_lab.grading import GradingFailure
from dynamo_lab.labs import lab
from dynamo_lab.labs.lab3_quorums import checks, pbs, scenarios
from dynamo_lab.node.quorum import choose_replicas as ref_choose_replicas

FEW = {"examples": 40}


# -- correct parts written differently ------------------------------------------------------------

def c_choose_replicas(preference, walk, down, me, sloppy=True):
    if not sloppy:
        return dict.fromkeys(preference)
    missing = [p for p in preference if p != me and p in down]
    spare = (n for n in walk[len(preference):] if n not in down)
    out = {p: None for p in reversed(preference) if p == me or p not in down}
    out.update({s: p for p, s in zip(missing, spare)})   # stand-ins last: order is free
    return out


class CQuorum:
    def __init__(self, needed, primaries, targets, write):
        self.needed, self.write = needed, write
        self.asked = dict(targets)
        self.waiting = list(targets)
        self.acked = 0
        self.state = "open"
        self.timeouts = 0

    def on_reply(self, node):
        if node not in self.waiting:
            return ("wait",)
        self.waiting.remove(node)
        self.acked += 1
        if self.state == "open" and self.acked == self.needed:
            self.state = "answered"
            return ("answer", not self.waiting)
        return ("finish",) if not self.waiting else ("wait",)

    def on_timeout(self, spare, me):
        if self.state != "open":
            return ("finish",)
        self.timeouts += 1
        if self.timeouts == 1:
            need = [self.asked[t] or t for t in self.waiting if (self.asked[t] or t) != me]
            pairs = {s: n for s, n in zip(spare, need)}
            if pairs:
                self.asked.update(pairs)
                self.waiting += list(pairs)
                return ("retry", pairs)
        self.state = "failed"
        return ("fail", self.write and self.acked > 0)


def c_read_repairs(replies, primaries, targets, siblings):
    want = frozenset(siblings)
    stale = [r for r in primaries
             if r in replies and targets.get(r, "x") is None and frozenset(replies[r]) != want]
    return stale[::-1]


def c_handoff_tick(hints, down):
    return [["send", intended, key] for intended, key in hints if intended not in down]


def c_handoff_ack(intended, key, held, acked):
    return [] if held is None or held != acked else [["forget", intended, key]]


DIFFERENT = (c_choose_replicas, CQuorum, c_read_repairs, c_handoff_tick, c_handoff_ack)


def test_correct_parts_written_another_way_pass_every_check():
    grading.check_choose_replicas(c_choose_replicas, **FEW)
    grading.check_stand_in_hints(c_choose_replicas, **FEW)
    grading.check_quorum_answers(CQuorum, **FEW)
    grading.check_quorum_timeouts(CQuorum, **FEW)
    grading.check_failed_write(CQuorum, **FEW)
    grading.check_read_repair(c_read_repairs, **FEW)
    grading.check_handoff_sends(c_handoff_tick, **FEW)
    grading.check_handoff_forgets(c_handoff_tick, c_handoff_ack, **FEW)
    grading.check_sloppy_quorum_story(*DIFFERENT, seed=1)
    grading.check_quorum_cluster(*DIFFERENT, seed=31)


def test_the_adapters_leave_the_reference_cluster_as_it_was():
    """The reference's own parts, in the students' form, through the adapters: the same trace
    as the reference node, on a campaign with every fault."""
    adapted = checks.student_parts(*checks._reference_parts_in_student_form(), _trusted=True)
    for seed in (3, 4):
        plain = run_campaign(seed, 150, settle_s=30)
        through = run_campaign(seed, 150, settle_s=30, parts=adapted)
        assert through.cluster.sim.trace.text() == plain.cluster.sim.trace.text()


# -- the classic mistakes -------------------------------------------------------------------------

def own_write_not_counted():
    """W acknowledgements besides the coordinator's own."""
    class Q(CQuorum):
        def on_reply(self, node):
            if node not in self.waiting:
                return ("wait",)
            self.waiting.remove(node)
            self.acked += 1
            if self.state == "open" and self.acked == self.needed + 1:
                self.state = "answered"
                return ("answer", not self.waiting)
            return ("finish",) if not self.waiting and self.state != "open" else ("wait",)
    return {"Quorum": Q}


def hints_to_the_wrong_node():
    """Every stand-in is hinted with the first node believed down."""
    def choose(preference, walk, down, me, sloppy=True):
        out = c_choose_replicas(preference, walk, down, me, sloppy)
        first = next((p for p in preference if p in down and p != me), None)
        return {t: (first if h is not None else None) for t, h in out.items()}
    return {"choose_replicas": choose}


def read_repair_of_stand_ins():
    def repairs(replies, primaries, targets, siblings):
        return [r for r, vs in replies.items() if set(vs) != set(siblings)]
    return {"read_repairs": repairs}


def handoff_before_ack():
    """The hint is deleted as it is sent."""
    def tick(hints, down):
        return [a for i, k in hints if i not in down for a in (("send", i, k), ("forget", i, k))]
    return {"handoff_tick": tick}


#: mistake -> (what it replaces, the test cells it must lose)
MISTAKES = {
    "own write not counted": (own_write_not_counted, {
        "a_quorum_answers_at_the_needed_th_reply_its_own_included",
        "a_timeout_tries_stand_ins_once_then_fails",
        "cluster_with_your_quorum_parts_matches_the_reference",
        "the_seeds_sloppy_quorum_story_with_your_parts"}),
    "hints to the wrong node": (hints_to_the_wrong_node, {
        "each_stand_in_is_hinted_with_the_node_it_replaces",
        "cluster_with_your_quorum_parts_matches_the_reference",
        "the_seeds_sloppy_quorum_story_with_your_parts"}),
    "read repair of stand-ins": (read_repair_of_stand_ins, {
        "read_repair_sends_the_siblings_to_stale_primaries_only",
        "cluster_with_your_quorum_parts_matches_the_reference"}),
    "handoff before ack": (handoff_before_ack, {
        "a_hint_is_forgotten_only_after_its_node_acknowledged_it",
        "cluster_with_your_quorum_parts_matches_the_reference",
        "the_seeds_sloppy_quorum_story_with_your_parts"}),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_classic_mistake_loses_the_points_of_the_promises_it_breaks(mistake):
    make, lost = MISTAKES[mistake]
    names = dict(zip(checks.PARTS, DIFFERENT))
    names.update(make())
    failed = {}
    for test, (func, args, kwargs) in checks.SELF_CHECK.items():
        kwargs = dict(kwargs)
        if "examples" in kwargs:
            kwargs["examples"] = 60
        try:
            getattr(grading, func)(*[names[a] for a in args], **kwargs)
        except GradingFailure as failure:
            failed[test] = str(failure)
    assert set(failed) == lost
    for test, report in failed.items():
        invariant = test.replace("_", "-")
        assert report.startswith(f"{invariant}: ")          # the promise, by name
        assert "seed " in report and ("smallest failing input" in report)
        assert "expected:" in report and "got:" in report
    points = lab("lab3").parts
    assert sum(points[t] for t in lost) < lab("lab3").points


# -- the stories and the measurements, a short seeded slice --------------------------------------

def test_the_lecture_story_is_stale_then_fresh_and_the_checker_sees_no_violation():
    log, cluster = scenarios.seeds_story()
    steps = dict(log)
    reads = [seen for step, seen in log if step == "... and returns"]
    assert reads == [['["book"]'], ['["book", "pen"]']]
    assert [r for step, r in log if step.startswith("C and D are back; a read")] == [["C", "D"]]
    assert steps["hints still held"] == {"E": 1, "F": 1}
    assert steps["after 5 s: hints still held"] == {}
    assert steps["consistency checker"] == []
    assert ref_choose_replicas(["A", "C", "D"], list(cluster.ring().successors(scenarios.STORY_KEY)),
                               {"C", "D"}, "A") == {"A": None, "E": "C", "F": "D"}


def test_a_forgetful_handoff_loses_an_acknowledged_write_and_the_checker_says_so():
    good = dict(scenarios.lost_write_story()[0])
    bad = dict(scenarios.lost_write_story(checks.student_parts(**handoff_before_ack()))[0])
    assert good["consistency checker: acknowledged writes lost"] == []
    assert len(bad["consistency checker: acknowledged writes lost"]) == 1
    assert "acknowledged-write-survives" in bad["consistency checker: acknowledged writes lost"][0]


def test_one_put_moments_are_in_order():
    cluster, key = scenarios.one_put_story()
    moments = scenarios.one_put_moments(cluster, key)
    times = [t for _, t, _ in moments]
    assert times == sorted(times) and len(moments) == 7


@pytest.mark.parametrize("n, r, w", pbs.PBS_CONFIGS)
def test_stale_reads_agree_with_the_closed_form(n, r, w):
    """A short slice (600 trials); ``python -m bench pbs`` runs 10,000 per setting."""
    measured = pbs.stale_reads(n, r, w, trials=600, seed=11)
    lo, hi = pbs.wilson(measured.hits, measured.trials, z=3.29)          # 99.9%
    assert lo <= pbs.closed_form(n, r, w) <= hi


def test_k_versions_stale_is_the_closed_form_to_the_k():
    measured = pbs.stale_reads(3, 1, 1, trials=600, seed=12, k=2)
    lo, hi = pbs.wilson(measured.hits, measured.trials, z=3.29)
    assert pbs.closed_form(3, 1, 1, 2) == pytest.approx(4 / 9)
    assert lo <= 4 / 9 <= hi


def test_t_visibility_is_the_papers_within_its_interval():
    """A short slice (1,500 trials); the bench runs 20,000 and compares within 2 points."""
    for preset, paper in pbs.PAPER_T_VISIBILITY.items():
        res = pbs.t_visibility(preset, ts_ms=sorted(paper), trials=1500, seed=21)
        for t, p in paper.items():
            lo, hi = pbs.wilson(res.consistent[t].hits, res.consistent[t].trials, z=3.29)
            assert lo - 0.02 <= p <= hi + 0.02, (preset, t, str(res.consistent[t]))


def test_sloppy_quorum_keeps_puts_available_and_strict_quorum_refuses_some():
    sloppy = pbs.availability(puts=150, seed=1, sloppy=True)
    strict = pbs.availability(puts=150, seed=1, sloppy=False)
    # Right after the crashes a put can still time out at its client: a node outside the key's
    # top N forwards it to D, which does not answer, then (once) to C, which does not either.
    assert sloppy.value > 0.97
    assert 0.05 < 1 - strict.value < 0.4         # keys whose top 3 hold both C and D
    assert strict.value < sloppy.value


def test_closed_form_and_wilson():
    assert pbs.closed_form(3, 1, 1) == pytest.approx(2 / 3)
    assert pbs.closed_form(3, 2, 2) == 0.0
    assert pbs.closed_form(5, 2, 2) == pytest.approx(0.3)
    lo, hi = pbs.wilson(50, 100)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.19, abs=0.01)
    with pytest.raises(ValueError):
        pbs.closed_form(3, 4, 1)


# -- the pictures ----------------------------------------------------------------------------------

def test_the_put_steps_widget_shows_more_of_the_put_at_each_step():
    from dynamo_lab.labs.lab3_quorums.widgets import PutStepsWidget
    cluster, key = scenarios.one_put_story()
    w = PutStepsWidget(cluster, key, scenarios.one_put_moments(cluster, key))
    shown = []
    for step in range(len(w.moments)):
        w.step_slider.value = step
        shown.append(w.space.shown)
        assert f"{step + 1}/7" in w.caption.value and w.space.error is None
    assert shown == sorted(shown) and shown[0] == 1 and shown[1] == 3      # the put, then its writes
    assert shown[3] == shown[2] + 1                                         # the answer
    assert shown[-1] == len(w.space.messages)


def test_the_drawings_mark_what_they_show_and_the_trade_off_widget_keeps_its_results():
    from dynamo_lab.labs.lab3_quorums.widgets import TradeOffWidget, draw_stale_reads, draw_t_visibility
    rows = [((3, 1, 1), pbs.Rate(20, 30)), ((5, 2, 2), pbs.Rate(9, 30))]
    fig = draw_stale_reads(rows)
    gids = {a.get_gid() for a in fig.axes[0].get_children() if a.get_gid()}
    assert {"formula:3,1,1", "formula:5,2,2"} <= gids
    res = pbs.t_visibility("LNKD-SSD", ts_ms=(0, 5), trials=20, seed=1)
    gids = {a.get_gid() for a in draw_t_visibility([res]).axes[0].get_children() if a.get_gid()}
    assert {"curve:LNKD-SSD", "paper:LNKD-SSD"} <= gids
    w = TradeOffWidget(trials=20)
    assert w.result.preset == "LNKD-DISK" and (w.result.r, w.result.w) == (1, 1)
    w.r_slider.value = 2
    assert w.result.r == 2 and len(w.cache) == 2 and "p99.9 write latency" in w.info.value
    w.r_slider.value = 1
    assert len(w.cache) == 2 and w.renders == 3
