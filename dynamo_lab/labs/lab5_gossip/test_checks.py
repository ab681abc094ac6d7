"""Lab 5's checks pass correct parts written another way than the notebook's solution, the
adapters leave the reference cluster exactly as it was (same trace), each classic mistake
loses the promises it breaks and only those, and the lab's measurements reproduce the
published figures (Pittel's rounds, Demers' residue) and the break-it stories."""

from __future__ import annotations

import math
import random

import pytest

from dynamo_lab.failure_detector import PhiAccrualDetector as RefPhi
from dynamo_lab.failure_detector import TimeoutDetector as RefTimeout
from dynamo_lab.grading import GradingFailure
from dynamo_lab.labs.lab5_gossip import checks, detection, rumours, scenarios, widgets
from dynamo_lab.node import Parts

FEW = {"examples": 60}
RANK = {"up": 0, "leaving": 1, "left": 2}


# -- correct parts written differently ------------------------------------------------------------

def c_merge_views(me, local, remote):
    def key(st):
        return st[0], st[1], RANK[st[2]], tuple(st[3])
    names = set(local) | set(remote)
    out = {}
    for n in sorted(names):
        if n == me:
            g, hb, status, tokens = local[me]
            c = remote.get(me)
            if c is not None and c[0] > g:
                g, hb = c[0] + 1, 0
            elif c is not None and c[0] == g and c[1] >= hb and list(c) != list(local[me]):
                hb = c[1] + 1
            out[n] = (g, hb, status, tokens)
        else:
            out[n] = max((s for s in (local.get(n), remote.get(n)) if s is not None), key=key)
    return out


def c_gossip_round(me, view, suspected, seeds, rand):
    g, hb, status, tokens = view[me]
    new = {**view, me: (g, hb + 1, status, tokens)}
    known = [n for n in sorted(view) if n != me and view[n][2] != "left"]
    ok = [n for n in known if n not in suspected]
    bad = [n for n in known if n in suspected]
    out = [ok[math.floor(rand[0] * len(ok))]] if ok else seeds[:1] if not known else []
    if bad:
        out.append(bad[math.floor(rand[1] * len(bad))])
    for s in seeds:
        if s not in view and s not in out:
            out.append(s)
    return new, out


class CTimeout:
    def __init__(self, limit):
        self.limit, self.seen = limit, {}

    def heard(self, node, now):
        if now >= self.seen.get(node, -math.inf):
            self.seen[node] = now

    def suspected(self, node, now):
        return not (node in self.seen and now - self.seen[node] <= self.limit)


class CPhi:
    def __init__(self, threshold=8.0, window=100, first_interval_s=1.0):
        self.t, self.w, self.first = threshold, window, first_interval_s
        self.times = {}

    def heard(self, node, now):
        ts = self.times.setdefault(node, [])
        if not ts or now > ts[-1]:
            ts.append(now)
            del ts[:-(self.w + 1)]

    def phi(self, node, now):
        ts = self.times.get(node)
        if not ts:
            return float("inf")
        mean = (ts[-1] - ts[0]) / (len(ts) - 1) if len(ts) > 1 else self.first
        return (now - ts[-1]) / mean / math.log(10)

    def suspected(self, node, now):
        return self.phi(node, now) > self.t


def test_correct_parts_written_differently_pass_every_check():
    checks.check_merge_views(c_merge_views, seed=1, **FEW)
    checks.check_own_entry(c_merge_views, seed=2, **FEW)
    checks.check_heartbeat_raised(c_gossip_round, seed=3, **FEW)
    checks.check_gossip_targets(c_gossip_round, seed=4, **FEW)
    checks.check_timeout_detector(CTimeout, seed=5, **FEW)
    checks.check_phi_detector(CPhi, seed=6, **FEW)
    checks.check_gossip_cluster(c_merge_views, c_gossip_round, CTimeout, seed=51)


def test_the_adapters_leave_the_reference_cluster_as_it_was():
    ref = checks.gossip_cluster_log(Parts(), 53)
    merge, round_, timeout, _ = checks._reference_parts_in_student_form()
    adapted = checks.gossip_cluster_log(
        checks.student_gossip_parts(merge, round_, timeout, _trusted=True), 53)
    assert adapted[1] == ref[1] and adapted[0] == ref[0]
    assert any("J1" in step for step, _ in ref[0]), "the run has a join"
    assert any(got == "left" for _, got in ref[0]), "the run has a leave"


# -- classic mistakes lose exactly their promises --------------------------------------------------

def last_heard(me, local, remote):
    out = dict(local)
    out.update({n: s for n, s in remote.items() if n != me})
    return out


def me_like_the_others(me, local, remote):
    out = dict(local)
    for n, s in remote.items():
        o = out.get(n)
        if o is None or (s[0], s[1], RANK[s[2]], tuple(s[3])) > (o[0], o[1], RANK[o[2]], tuple(o[3])):
            out[n] = s
    return out


def no_heartbeat(me, view, suspected, seeds, rand):
    return dict(view), c_gossip_round(me, view, suspected, seeds, rand)[1]


def own_random(me, view, suspected, seeds, rand):
    new, targets = c_gossip_round(me, view, suspected, seeds, rand)
    ok = [n for n in sorted(view) if n != me and view[n][2] != "left" and n not in suspected]
    if ok:
        targets[0] = random.Random(repr(rand)).choice(ok)
    return new, targets


class AtLeast(CTimeout):
    def suspected(self, node, now):
        return node not in self.seen or now - self.seen[node] >= self.limit


class NoWindow(CPhi):
    def heard(self, node, now):
        ts = self.times.setdefault(node, [])
        if not ts or now > ts[-1]:
            ts.append(now)


def _fails(check, *args, invariant, **kw):
    with pytest.raises(GradingFailure) as info:
        check(*args, **kw)
    text = str(info.value)
    assert invariant in text and "smallest failing input" in text and "seed" in text, text
    return text


def test_the_last_heard_merge_loses_the_merge_and_the_cluster():
    text = _fails(checks.check_merge_views, last_heard, seed=1, **FEW,
                  invariant="merge-keeps-the-higher-generation-and-heartbeat")
    assert "expected:" in text and "got:" in text
    _fails(checks.check_gossip_cluster, last_heard, c_gossip_round, CTimeout, seed=51,
           invariant="cluster-with-your-gossip-matches-the-reference")
    checks.check_heartbeat_raised(c_gossip_round, seed=3, **FEW)


def test_a_merge_that_lets_others_raise_my_entry_loses_only_that_promise():
    _fails(checks.check_own_entry, me_like_the_others, seed=2, **FEW,
           invariant="my-own-entry-is-raised-only-by-me")
    checks.check_merge_views(me_like_the_others, seed=1, **FEW)


def test_a_round_without_a_heartbeat_loses_its_promise_and_the_cluster():
    _fails(checks.check_heartbeat_raised, no_heartbeat, seed=3, **FEW,
           invariant="a-round-raises-my-heartbeat-and-nothing-else")
    checks.check_gossip_targets(no_heartbeat, seed=4, **FEW)
    _fails(checks.check_gossip_cluster, c_merge_views, no_heartbeat, CTimeout, seed=51,
           invariant="cluster-with-your-gossip-matches-the-reference")


def test_a_round_with_its_own_randomness_loses_the_targets():
    _fails(checks.check_gossip_targets, own_random, seed=4, **FEW,
           invariant="a-round-gossips-with-one-peer-picked-uniformly")
    checks.check_heartbeat_raised(own_random, seed=3, **FEW)


def test_detector_mistakes_lose_their_promises():
    _fails(checks.check_timeout_detector, AtLeast, seed=5, **FEW,
           invariant="a-timeout-detector-suspects-after-suspect-after-s")
    _fails(checks.check_phi_detector, NoWindow, seed=6, **FEW,
           invariant="phi-grows-with-silence-in-units-of-the-mean-interval")


def test_a_part_that_raises_in_the_cluster_names_itself():
    def broken(me, local, remote):
        raise KeyError("oops")
    text = _fails(checks.check_gossip_cluster, broken, c_gossip_round, CTimeout, seed=51,
                  invariant="cluster-with-your-gossip-matches-the-reference")
    assert "KeyError" in text


# -- the measurements --------------------------------------------------------------------------------

def test_push_rounds_stay_within_pittel_plus_two_and_push_pull_is_faster():
    sizes = (10, 100, 1000)
    push = rumours.rounds_to_all(c_merge_views, sizes, lambda n: 30)
    pp = rumours.rounds_to_all(c_merge_views, sizes, lambda n: 30, "push-pull")
    for a, b in zip(push, pp):
        assert rumours.pittel(a.n) - 1 <= a.mean <= rumours.pittel(a.n) + 2, (a.n, str(a))
        assert b.mean < a.mean, (a.n, str(a), str(b))


def test_push_with_the_students_round_picking_peers_follows_the_same_law():
    mine = rumours.rounds_to_all(c_merge_views, (10, 40), lambda n: 4, gossip_round=c_gossip_round)
    ref = rumours.rounds_to_all(c_merge_views, (10, 40), lambda n: 4,
                                gossip_round=checks.reference_gossip_round)
    assert [r.rounds for r in mine] == [r.rounds for r in ref]
    for r in rumours.rounds_to_all(c_merge_views, (10, 100), lambda n: 30,
                                   gossip_round=c_gossip_round):
        assert rumours.pittel(r.n) - 1 <= r.mean <= rumours.pittel(r.n) + 2, (r.n, str(r))


def test_a_merge_that_ranks_heartbeats_first_never_spreads_a_restart():
    def heartbeat_first(me, local, remote):
        out = dict(local)
        for n, s in remote.items():
            if n != me and (n not in out or (s[1], s[0]) > (out[n][1], out[n][0])):
                out[n] = s
        return out
    assert rumours.spread(heartbeat_first, 20, seed=1, max_rounds=10) == [1] * 11


def test_a_spread_counts_every_node_once_and_ends_when_all_know():
    counts = rumours.spread(c_merge_views, 50, seed=1)
    assert counts[0] == 1 and counts[-1] == 50
    assert all(b >= a for a, b in zip(counts, counts[1:]))
    assert all(b <= 2 * a for a, b in zip(counts, counts[1:])), "push at most doubles per round"


def test_rumour_mongering_residue_matches_demers_within_a_hundredth():
    assert [round(rumours.demers_residue(k), 3) for k in (1, 2, 3)] == [0.203, 0.06, 0.02]
    for k, (mean, _se) in rumours.residues(c_merge_views, 3000, seeds=6).items():
        assert abs(mean - rumours.demers_residue(k)) <= 0.01, (k, mean)


def test_a_merge_that_never_learns_informs_nobody():
    counts = rumours.spread(lambda me, local, remote: dict(local), 20, seed=1, max_rounds=30)
    assert counts[-1] == 1 and len(counts) == 31


def test_a_timeout_below_the_tail_latency_suspects_live_nodes_and_phi_adapts():
    rows1 = detection.compare(RefTimeout, lambda t: RefPhi(t, 100, 1.0), (1.5, 6), (1, 3),
                              seeds=(1, 2))
    rows2 = detection.compare(RefTimeout, lambda t: RefPhi(t, 100, 1.0), (1.5, 6), (1, 3),
                              seeds=(1, 2), interval_s=2.0)
    by = {(r.name, r.setting): r for r in rows1}
    assert detection.tail_latency_s() > 1.5
    assert by["timeout", 1.5].per_hour > 10 and by["timeout", 6].per_hour == 0
    assert by["timeout", 6].detection_s == pytest.approx(6, abs=1.0)
    assert by["timeout", 1.5].detection_s < by["timeout", 6].detection_s
    by2 = {(r.name, r.setting): r for r in rows2}
    assert by2["timeout", 1.5].per_hour > 5 * by["timeout", 1.5].per_hour
    assert by2["phi", 3].per_hour <= by["phi", 3].per_hour + 2
    assert by2["phi", 3].detection_s > 1.5 * by["phi", 3].detection_s, "phi waits longer"


def test_the_pause_alone_makes_a_tight_timeout_suspect():
    trace = detection.heartbeat_trace(1, sigma=0.01, median_ms=10)
    assert detection.run_detector(lambda: RefTimeout(2.5), trace).false_suspicions == 1
    assert detection.run_detector(lambda: RefTimeout(3.5), trace).false_suspicions == 0


# -- the stories and pictures ----------------------------------------------------------------------

def test_an_old_rumour_resurrects_a_left_node_only_under_the_last_heard_merge():
    good = dict(scenarios.resurrection(checks.student_gossip_parts(c_merge_views)))
    bad = dict(scenarios.resurrection(checks.student_gossip_parts(last_heard)))
    key = "over the next 10 s, nodes that had E in their ring"
    assert good[key] == [] and bad[key] == ["A", "B", "C", "D"]


def test_a_join_reaches_all_20_rings_and_its_keys_move_to_the_newcomer():
    spread = scenarios.join_spread(checks.student_gossip_parts(c_merge_views, c_gossip_round, CTimeout))
    assert spread.counts[0] <= 4 and spread.counts[-1] == 20
    assert 0.08 < len(spread.moved) / spread.keys < 0.3
    assert spread.held_by_newcomer == sorted(spread.moved)
    assert spread.dropped_by_old > 0
    fig = widgets.draw_who_knows(spread)
    assert fig.axes[0].findobj(lambda a: a.get_gid() == "knows")
    w = widgets.JoinRoundsWidget(spread)
    assert w.shown == spread.counts[0] and w.renders == 1
    w.round_slider.value = len(spread.knows) - 1
    assert w.shown == 20 and w.renders == 2 and w.error is None


def test_zero_hop_views_hold_every_member_and_gossip_grows_as_n_squared():
    rows = scenarios.zero_hop(sizes=(10, 40))
    assert [r.view_entries for r in rows] == [10, 40]
    assert [r.messages_per_round for r in rows] == [20, 80]
    ratio = rows[1].bytes_per_round / rows[0].bytes_per_round
    assert 12 < ratio < 20, ratio          # (40/10)^2 = 16
    fig = widgets.draw_zero_hop(rows)
    assert {a.get_gid() for a in fig.axes[0].lines} >= {"bytes", "n2"}


def test_the_rounds_and_detector_drawings_carry_their_series():
    push = rumours.rounds_to_all(c_merge_views, (10, 100), lambda n: 3)
    fig = widgets.draw_rounds(push, push)
    gids = {a.get_gid() for a in fig.axes[0].lines}
    assert {"pittel", "bound", "push", "push-pull"} <= gids
    rows = detection.compare(RefTimeout, lambda t: RefPhi(t), (2, 4), (1, 2), seeds=(1,))
    fig = widgets.draw_detectors(rows)
    assert {"timeout", "phi"} <= {a.get_gid() for a in fig.axes[0].lines}


def test_the_phi_detector_plugs_into_a_cluster_and_suspects_a_crashed_node():
    from dynamo_lab import SimCluster
    parts = checks.student_gossip_parts(
        c_merge_views, failure_detector=checks.student_failure_detector(CPhi, 3.0, 50, 1.0))
    cluster = SimCluster(nodes=5, seed=2, parts=parts)
    cluster.run_for(20)
    assert not cluster.node("A").membership.suspected("B", cluster.now)
    cluster.crash("B")
    cluster.run_for(3 * math.log(10) + 3)
    assert cluster.node("A").membership.suspected("B", cluster.now)
    assert not cluster.node("A").membership.suspected("C", cluster.now)
