"""Hinted handoff's pure decisions (node.hints) and the part that carries them out: a hint goes
back to its node once that node is believed up, and is forgotten only when the node
acknowledged exactly what is held; the swap points take a student's decisions."""

from __future__ import annotations

import dynamo_lab as dl
from dynamo_lab.node import Parts
from dynamo_lab.node.hints import handoff_ack, handoff_tick


def test_a_tick_sends_the_hints_of_nodes_believed_up_in_order_and_forgets_nothing():
    hints = [("C", "k2"), ("C", "k1"), ("D", "k1"), ("E", "k3")]
    assert handoff_tick(hints, {"D"}) == [("send", "C", "k2"), ("send", "C", "k1"),
                                          ("send", "E", "k3")]
    assert handoff_tick(hints, {"C", "D", "E"}) == []
    assert handoff_tick([], set()) == []


def test_an_ack_forgets_only_exactly_what_is_held():
    assert handoff_ack("C", "k", "d1", "d1") == [("forget", "C", "k")]
    assert handoff_ack("C", "k", "d2", "d1") == []        # a newer write reached the hint
    assert handoff_ack("C", "k", None, "d1") == []        # nothing held any more


def _crashed_replica_story(parts=None):
    """C is down while a put lands on a stand-in; C comes back; the hint goes home."""
    cluster = dl.SimCluster(nodes=5, seed=4, parts=parts, anti_entropy=False)
    key = next(k for k in (f"k{i}" for i in range(100)) if "C" in cluster.preference_list(k)
               and cluster.preference_list(k)[0] != "C")
    cluster.crash("C")
    cluster.run_for(6)                                   # everyone suspects C
    cluster.client("a").put(key, ["x"])
    held = sum(cluster.hints().values())
    cluster.restart("C")
    cluster.run_for(10)
    return key, held, cluster


def test_a_hint_goes_home_and_is_forgotten_after_the_ack():
    key, held, cluster = _crashed_replica_story()
    assert held == 1 and sum(cluster.hints().values()) == 0
    assert [v.value for v in cluster.stores["C"].get(key)] == [["x"]]
    assert "delivered to C; deleted" in cluster.sim.trace.text()


def test_the_swap_points_take_other_decisions():
    calls = []

    def tick(hints, down):
        calls.append(("tick", list(hints), sorted(down)))
        return handoff_tick(hints, down)

    def ack(intended, key, held, acked):
        calls.append(("ack", intended, key))
        return handoff_ack(intended, key, held, acked)

    key, held, cluster = _crashed_replica_story(Parts(handoff_tick=tick, handoff_ack=ack))
    reference = _crashed_replica_story()[2]
    assert cluster.sim.trace.text() == reference.sim.trace.text()
    assert ("ack", "C", key) in calls and any(c[0] == "tick" and c[1] for c in calls)


def test_a_handoff_that_forgets_on_send_loses_the_hint_when_the_send_is_lost():
    def forgetful(hints, down):
        out = []
        for a in handoff_tick(hints, down):
            out += [a, ("forget", a[1], a[2])]
        return out

    cluster = dl.SimCluster(nodes=5, seed=4, parts=Parts(handoff_tick=forgetful),
                            anti_entropy=False)
    key = next(k for k in (f"k{i}" for i in range(100)) if "C" in cluster.preference_list(k)
               and cluster.preference_list(k)[0] != "C")
    cluster.crash("C")
    cluster.run_for(6)
    cluster.client("a").put(key, ["x"])
    holder = next(n for n, count in cluster.hints().items() if count)
    cluster.partition({holder}, {"C"}, one_way=True)      # the handoff is lost on the way
    cluster.restart("C")
    cluster.run_for(10)
    cluster.heal()
    cluster.run_for(10)
    assert sum(cluster.hints().values()) == 0 and cluster.stores["C"].get(key) == []
