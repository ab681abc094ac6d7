"""A merge supersedes every sibling it read, however many; concurrent writes are never lost; a
clock has one entry per coordinating node (dotted version vectors, see docs/architecture.md)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dynamo_lab as dl
from dynamo_lab.errors import ClientError
from dynamo_lab.node import Versioning
from dynamo_lab.vclock import VectorClock
from dynamo_lab.versions import Versioned, merged_clock, reconcile


# -- the clock with dots -----------------------------------------------------------------------

def test_a_dot_is_one_event_and_folds_into_the_counter_once_contiguous():
    gap = VectorClock({"A": 1}, dots=[("A", 3)])
    assert gap.counters() == {"A": 1} and gap.dots == (("A", 3),)
    assert gap.has_event("A", 3) and not gap.has_event("A", 2) and gap.max_counter("A") == 3
    assert str(gap) == "[(A,1) +(A,3)]"
    assert gap.add_event("A", 2) == VectorClock({"A": 3})          # the gap filled: a plain clock
    assert VectorClock({"A": 2}, dots=[("A", 1), ("A", 3)]) == VectorClock({"A": 3})


def test_descends_with_dots_is_inclusion_of_histories():
    a1, a2 = VectorClock({"A": 1}), VectorClock(dots=[("A", 2)])  # two writes from the empty context
    assert a1.concurrent_with(a2)
    both = a1.merge(a2)
    assert both == VectorClock({"A": 2}) and both.descends(a1) and both.descends(a2)
    assert not VectorClock({"A": 1}, dots=[("A", 3)]).descends(VectorClock({"A": 2}))
    assert VectorClock({"A": 3}).descends(VectorClock({"A": 1}, dots=[("A", 3)]))


def test_a_clock_without_dots_is_the_papers_clock_on_the_wire_too():
    plain = VectorClock({"Sx": (2, 1.5), "Sy": (1, 2.0)})
    assert plain.to_json() == {"Sx": [2, 1.5], "Sy": [1, 2.0]}
    gap = VectorClock({"A": (1, 1.0)}, dots=[("A", 3), ("B", 2)])
    assert gap.to_json() == {"A": [1, 1.0, [3]], "B": [0, 0.0, [2]]}
    assert VectorClock.from_json(gap.to_json()) == gap
    for bad in ({"A": [0, 1.0]}, {"A": [1, 1.0, []]}, {"A": [1, 1.0, [0]]}, {"A": [1, 1.0, 3]}):
        with pytest.raises(ClientError):
            VectorClock.from_json(bad)


def test_the_d1_d5_story_stamps_the_papers_clocks():
    ver = Versioning()
    d1 = ver.new_clock(VectorClock(), "Sx", 0.0, [])
    d2 = ver.new_clock(d1, "Sx", 0.0, [Versioned(1, d1)])
    d3 = ver.new_clock(d2, "Sy", 0.0, [])
    d4 = ver.new_clock(d2, "Sz", 0.0, [])
    d5 = ver.new_clock(d3.merge(d4), "Sx", 0.0, [Versioned(2, d2)])
    assert [c.counters() for c in (d1, d2, d3, d4, d5)] == [
        {"Sx": 1}, {"Sx": 2}, {"Sx": 2, "Sy": 1}, {"Sx": 2, "Sz": 1}, {"Sx": 3, "Sy": 1, "Sz": 1}]
    assert not any(c.dots for c in (d1, d2, d3, d4, d5))


# -- on a cluster ------------------------------------------------------------------------------

@pytest.mark.parametrize("siblings", [1, 2, 9, 10, 11, 12, 50, 200])
@pytest.mark.parametrize("via", ["A", None])
def test_a_put_with_a_gets_context_supersedes_every_sibling(siblings, via):
    c = dl.SimCluster(nodes=5, seed=1)
    cl = c.client("x")
    for i in range(siblings):
        cl.put("k", f"v{i}", via=via)
    got = cl.get("k")
    assert sorted(got.values) == sorted(f"v{i}" for i in range(siblings)), "a concurrent write was lost"
    cl.put("k", "merged", context=got.context)
    c.run_for(5)
    assert cl.get("k").values == ["merged"], f"seed=1 siblings={siblings}: resurrected writes"
    pref = c.ring().preference_list("k", 3)
    for node, held in c.replicas("k").items():
        assert [v.value for v in held] == ["merged"], f"{node} holds {held}"
        clock = held[0].clock
        assert set(clock.nodes) <= set(pref) and not clock.dots, f"{node}: {clock}"


def test_writes_racing_through_one_coordinator_stay_siblings_with_one_entry():
    c = dl.SimCluster(nodes=3, seed=5)
    base = c.client("alice").put("cart", ["book"], via="A")
    ops = [c.client(name).submit_put("cart", ["book", item], context=base.context, via="A")
           for name, item in [("alice", "pen"), ("bob", "mug"), ("carol", "cup")]]
    c.wait(*ops)
    got = c.client("dave").get("cart")
    assert sorted(got.values) == [["book", "cup"], ["book", "mug"], ["book", "pen"]]
    held = c.replicas("cart")["A"]
    assert all(v.clock.nodes == ("A",) for v in held), [str(v.clock) for v in held]
    assert c.check() == []


# -- random histories --------------------------------------------------------------------------

NODES = ["A", "B", "C", "D", "E"]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_truncation_never_turns_merged_into_concurrent(data):
    """Random histories of one key: writes through random coordinators, each with the context
    of a read that returned any subset of the current siblings, the coordinator holding what it
    wrote and a random other node receiving it. Every write descends all it read, no unseen
    concurrent write is superseded, and a clock has one entry per coordinating node."""
    ver = Versioning(clock_threshold=len(NODES))
    live: list[Versioned] = []
    held: dict[str, list[Versioned]] = {n: [] for n in NODES}
    coordinators: set[str] = set()
    for step in range(data.draw(st.integers(1, 60), label="writes")):
        node = data.draw(st.sampled_from(NODES), label="coordinator")
        picks = data.draw(st.lists(st.booleans(), min_size=len(live), max_size=len(live)),
                          label="read")
        read = [v for v, p in zip(live, picks) if p]
        ctx = merged_clock(read)
        clock = ver.new_clock(ctx, node, float(step), held[node])
        coordinators.add(node)
        for v in read:
            assert clock.descends(v.clock) and clock != v.clock, f"{clock} does not supersede {v.clock}"
        for v in live:
            if not ctx.descends(v.clock):
                assert not clock.descends(v.clock), f"{clock} supersedes unseen {v.clock}"
        assert set(clock.nodes) <= coordinators
        if len(read) == len(live):
            assert not clock.dots, f"a full read still leaves dots: {clock}"
        new = Versioned(step, clock)
        live = reconcile(live + [new])
        other = data.draw(st.sampled_from(NODES), label="replica")
        for n in {node, other}:
            held[n] = reconcile(held[n] + [new])
