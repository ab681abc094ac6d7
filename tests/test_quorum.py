"""The pure quorum core: sloppy quorum's choice of replicas, the decisions of one request's
quorum, read repair's choice of stale replicas; and a node built from parts that see only
its services."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

import dynamo_lab as dl
from dynamo_lab.node import Node, NodeConfig, NodeServices, Parts
from dynamo_lab.node.quorum import (Answer, Fail, Finish, GetQuorum, PutQuorum, Retry, Wait,
                                    choose_replicas, stand_ins)
from dynamo_lab.node.read_repair import read_repairs
from dynamo_lab.storage import MemoryStore
from dynamo_lab.vclock import VectorClock
from dynamo_lab.versions import Versioned, reconcile

NODES = list("ABCDEFGH")


@st.composite
def walks(draw):
    """A ring walk of 1..8 nodes, its top N, the nodes believed down, and the coordinator."""
    walk = draw(st.permutations(NODES))[:draw(st.integers(1, len(NODES)))]
    n = draw(st.integers(1, len(walk)))
    down = set(draw(st.sets(st.sampled_from(walk))))
    me = draw(st.sampled_from(walk))
    return list(walk), list(walk[:n]), down, me


@settings(max_examples=300, deadline=None)
@given(walks())
def test_choose_replicas_is_the_first_n_healthy_nodes(case):
    walk, pref, down, me = case
    targets = choose_replicas(pref, walk, down, me)
    up = [p for p in pref if p == me or p not in down]
    missing = [p for p in pref if p != me and p in down]
    spare = [s for s in walk[len(pref):] if s not in down]
    # every top-N node believed up stands for itself; down ones are replaced, in order
    assert [t for t, h in targets.items() if h is None] == up
    assert [(t, h) for t, h in targets.items() if h is not None] == list(zip(spare, missing))
    assert len(targets) == len(up) + min(len(spare), len(missing)) <= len(pref)
    assert me not in down or targets.get(me, None) is None


def test_sloppy_quorum_off_sends_to_the_top_n_whatever_is_down():
    assert choose_replicas(["A", "B", "C"], list("ABCDE"), {"B", "C"}, "A", sloppy=False) == \
        {"A": None, "B": None, "C": None}


def test_the_seeds_example_c_and_d_down_e_and_f_stand_in():
    targets = choose_replicas(["B", "C", "D"], list("BCDEFA"), {"C", "D"}, "B")
    assert targets == {"B": None, "E": "C", "F": "D"}
    assert stand_ins(["B", "C", "D"], list("BCDEFA"), {"C", "D"}, exclude=targets) == ["A"]


def test_a_put_answers_at_the_w_th_ack_and_finishes_at_the_last():
    q = PutQuorum(2, ["A", "B", "C"], {"A": None, "B": None, "C": None})
    assert q.on_reply("A") == Wait()
    assert q.on_reply("Z") == Wait()                   # a stranger's ack counts for nothing
    assert q.on_reply("A") == Wait()                   # nor does a duplicate
    assert q.on_reply("C") == Answer(done=False)
    assert q.on_reply("B") == Finish()
    assert q.on_reply("B") == Wait()


def test_when_the_last_needed_reply_is_the_last_awaited_the_answer_is_done():
    q = GetQuorum(2, ["A", "B"], {"A": None, "B": None})
    assert q.on_reply("A", ["x"]) == Wait()
    assert q.on_reply("B", ["y"]) == Answer(done=True)
    assert q.replies == {"A": ["x"], "B": ["y"]}


def test_a_timeout_tries_stand_ins_once_then_fails_saying_whether_a_write_may_have_applied():
    q = PutQuorum(2, ["A", "B", "C"], {"A": None, "B": None, "E": "C"})
    q.on_reply("A")
    # B and E (standing in for C) are silent: the next stand-ins take their places
    assert q.on_timeout(["F", "G"], me="A") == Retry({"F": "B", "G": "C"})
    assert q.targets == {"A": None, "B": None, "E": "C", "F": "B", "G": "C"}
    assert q.on_timeout(["H"], me="A") == Fail(may_have_applied=True, silent=("B", "E", "F", "G"))
    assert q.answered


def test_a_get_that_heard_nobody_fails_without_may_have_applied_and_no_spare_means_fail_at_once():
    q = GetQuorum(1, ["B"], {"B": None})
    assert q.on_timeout([], me="A") == Fail(may_have_applied=False, silent=("B",))


def test_a_timeout_after_the_answer_only_stops_the_wait():
    q = GetQuorum(1, ["A", "B"], {"A": None, "B": None})
    assert q.on_reply("A", []) == Answer(done=False)
    assert q.on_timeout(["C"], me="A") == Finish()


def _v(value, **clock):
    return Versioned(value, VectorClock(clock))


def test_read_repair_sends_the_reconciled_siblings_to_stale_primaries_only():
    old, new, other = _v(["a"], A=1), _v(["b"], A=2), _v(["c"], B=1)
    replies = {"A": [new, other], "B": [old], "C": [new, other], "E": [old]}
    targets = {"A": None, "B": None, "C": None, "E": "D"}
    merged, stale = read_repairs(replies, ["A", "B", "C"], targets, reconcile)
    assert sorted(v.value for v in merged) == [["b"], ["c"]]
    assert stale == ["B"]          # E is a stand-in (it keeps a hint for D), not repaired


class _Recorder:
    """A part that records what it was built with."""
    seen: list = []

    def __init__(self, node):
        _Recorder.seen.append(node)


def test_every_part_is_built_with_the_services_not_the_node():
    _Recorder.seen = []
    parts = Parts(coordinator=_Recorder, replica=_Recorder, handoff=_Recorder,
                  anti_entropy=_Recorder, gossip=_Recorder)
    Node("A", MemoryStore(), __import__("random").Random(1), NodeConfig(), members=["A"],
         parts=parts)
    assert len(_Recorder.seen) == 5
    assert all(type(s) is NodeServices for s in _Recorder.seen)
    assert not hasattr(_Recorder.seen[0], "store") and not hasattr(_Recorder.seen[0], "gossip")


def test_a_swapped_choice_of_replicas_steers_the_cluster():
    """Parts.choose_replicas is a real swap point: a rule that never uses stand-ins makes a
    put fail while one of the top N is down, where the reference writes a hint."""
    def strict(preference, walk, down, me, sloppy=True):
        return {p: None for p in preference if p == me or p not in down}

    results = {}
    for name, parts in [("reference", None), ("strict", Parts(choose_replicas=strict))]:
        cluster = dl.SimCluster(nodes=5, n=3, r=2, w=3, seed=4, parts=parts)
        pref = cluster.preference_list("cart")
        cluster.crash(pref[2])
        cluster.run_for(10)          # long enough for the others to suspect it
        try:
            cluster.client("c").put("cart", ["book"], via=pref[0])
            results[name] = "ok"
        except dl.QuorumError:
            results[name] = "quorum error"
    assert results == {"reference": "ok", "strict": "quorum error"}
