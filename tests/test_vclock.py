"""Vector clocks: the partial-order laws, the paper's D1..D5 story, truncation, the wire form."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_lab.errors import ClientError
from dynamo_lab.vclock import EMPTY, Order, VectorClock

NODES = ["A", "B", "C", "D"]
STAMPS = st.sampled_from([0.0, 1.0, 2.5, 7.0, 100.0])

# A small alphabet and small counters, so random pairs are often comparable, equal or nested.
clocks = st.dictionaries(
    st.sampled_from(NODES),
    st.tuples(st.integers(1, 4), STAMPS),
    max_size=len(NODES),
).map(VectorClock)

laws = settings(derandomize=True, max_examples=200, deadline=None)


# --------------------------------------------------------------------------- construction

def test_construction_and_reading():
    vc = VectorClock({"B": 1, "A": (2, 3.5)})
    assert vc.get("A") == 2 and vc["B"] == 1 and vc.get("Z") == 0 and vc["Z"] == 0
    assert vc.counters() == {"A": 2, "B": 1}
    assert list(vc.counters()) == ["A", "B"]
    assert vc.timestamp("A") == 3.5 and vc.timestamp("B") == 0.0 and vc.timestamp("Z") == 0.0
    assert vc.nodes == ("A", "B") and list(vc) == ["A", "B"] and len(vc) == 2
    assert "A" in vc and "Z" not in vc
    assert vc and not EMPTY and len(EMPTY) == 0 and VectorClock() == EMPTY
    assert VectorClock(vc) == vc and VectorClock(vc).timestamp("A") == 3.5


def test_counters_returns_a_copy():
    vc = VectorClock({"A": 1})
    vc.counters()["A"] = 99
    assert vc.get("A") == 1


@pytest.mark.parametrize("entries", [
    {"": 1}, {3: 1}, {None: 1}, {"A": 0}, {"A": -1}, {"A": True}, {"A": 1.0}, {"A": "1"},
    {"A": (1,)}, {"A": (1, 2.0, 3)}, {"A": (1, float("nan"))}, {"A": (1, "now")},
    {"A": (True, 1.0)}, [("A", 1)], "A",
])
def test_construction_rejects_bad_entries(entries):
    with pytest.raises(ValueError) as info:
        VectorClock(entries)
    assert isinstance(info.value, ClientError)


def test_immutable():
    vc = VectorClock({"A": 1})
    with pytest.raises(AttributeError):
        vc._counters = {}
    with pytest.raises(AttributeError):
        vc.x = 1
    assert copy.copy(vc) is vc and copy.deepcopy(vc) is vc


def test_repr_and_str():
    vc = VectorClock({"B": 1, "A": 2})
    assert repr(vc) == "VectorClock({'A': 2, 'B': 1})"
    assert str(vc) == "[(A,2), (B,1)]"
    assert str(EMPTY) == "[]" and repr(EMPTY) == "VectorClock({})"
    assert eval(repr(vc)) == vc


# --------------------------------------------------------------------------- partial order laws

@laws
@given(clocks)
def test_compare_reflexive(a):
    assert a.compare(a) is Order.EQUAL
    assert a.descends(a)
    assert not a.concurrent_with(a)


@laws
@given(clocks, clocks)
def test_antisymmetry(a, b):
    if a.descends(b) and b.descends(a):
        assert a == b and a.counters() == b.counters()


@laws
@given(clocks, clocks, clocks)
def test_descends_transitive(a, b, c):
    if a.descends(b) and b.descends(c):
        assert a.descends(c)


MIRROR = {Order.BEFORE: Order.AFTER, Order.AFTER: Order.BEFORE,
          Order.EQUAL: Order.EQUAL, Order.CONCURRENT: Order.CONCURRENT}


@laws
@given(clocks, clocks)
def test_compare_mirrors_and_matches_descends(a, b):
    order = a.compare(b)
    assert b.compare(a) is MIRROR[order]
    expected = {(True, True): Order.EQUAL, (True, False): Order.AFTER,
                (False, True): Order.BEFORE, (False, False): Order.CONCURRENT}
    assert order is expected[(a.descends(b), b.descends(a))]
    assert a.concurrent_with(b) == (order is Order.CONCURRENT)
    # descends read off the counters directly, independently of the implementation
    assert a.descends(b) == all(a.get(n) >= b.get(n) for n in NODES)


@laws
@given(clocks, clocks, clocks)
def test_merge_is_a_semilattice_join(a, b, c):
    m = a.merge(b)
    assert m == b.merge(a)
    assert a.merge(b).merge(c) == a.merge(b.merge(c))
    assert a.merge(a) == a
    assert m.descends(a) and m.descends(b)
    assert m.counters() == {n: max(a.get(n), b.get(n)) for n in NODES if max(a.get(n), b.get(n))}
    # least upper bound: anything that descends both descends the merge
    if c.descends(a) and c.descends(b):
        assert c.descends(m)
    assert a.merge(EMPTY) == a and EMPTY.merge(a) == a


@laws
@given(clocks, clocks)
def test_merge_timestamps_commute(a, b):
    ab, ba = a.merge(b), b.merge(a)
    assert ab.to_json() == ba.to_json()


def test_merge_keeps_timestamp_of_larger_counter():
    a = VectorClock({"A": (3, 1.0), "B": (1, 9.0), "C": (2, 4.0)})
    b = VectorClock({"A": (2, 8.0), "B": (2, 2.0), "C": (2, 6.0)})
    m = a.merge(b)
    assert m.counters() == {"A": 3, "B": 2, "C": 2}
    assert (m.timestamp("A"), m.timestamp("B"), m.timestamp("C")) == (1.0, 2.0, 6.0)


@laws
@given(clocks, st.sampled_from(NODES + ["E"]), STAMPS)
def test_increment_strictly_descends(a, node, now):
    b = a.increment(node, now)
    assert b.compare(a) is Order.AFTER and a.compare(b) is Order.BEFORE
    assert b.get(node) == a.get(node) + 1 and b.timestamp(node) == now
    assert all(b.get(n) == a.get(n) for n in NODES if n != node)


def test_increment_rejects_bad_input():
    for node in ["", 1, None]:
        with pytest.raises(ClientError):
            EMPTY.increment(node)
    with pytest.raises(ClientError):
        EMPTY.increment("A", float("inf"))


def test_operations_reject_non_clocks():
    vc = VectorClock({"A": 1})
    for op in (vc.merge, vc.descends, vc.compare, vc.concurrent_with):
        with pytest.raises(TypeError):
            op({"A": 1})


def test_no_total_order_operators():
    a, b = VectorClock({"A": 1}), VectorClock({"B": 1})
    for op in (lambda: a < b, lambda: a <= b, lambda: a > b, lambda: a >= b, lambda: a < a):
        with pytest.raises(TypeError, match="only partially ordered"):
            op()
    with pytest.raises(TypeError):
        sorted([a, b])


@laws
@given(clocks, st.lists(STAMPS, min_size=4, max_size=4))
def test_equality_and_hash_ignore_timestamps(a, stamps):
    restamped = VectorClock({n: (c, stamps[i]) for i, (n, c) in enumerate(a.counters().items())})
    assert restamped == a and hash(restamped) == hash(a)
    assert len({a, restamped}) == 1


def test_equality_with_other_types():
    assert VectorClock({"A": 1}) != {"A": 1}
    assert VectorClock({"A": 1}) != VectorClock({"A": 2})


# --------------------------------------------------------------------------- the paper's example

def test_paper_d1_to_d5():
    """Figure 3 of the paper: the shopping cart handled by Sx, then Sy and Sz concurrently."""
    d1 = EMPTY.increment("Sx", 1.0)
    assert str(d1) == "[(Sx,1)]"
    d2 = d1.increment("Sx", 2.0)
    assert str(d2) == "[(Sx,2)]"
    assert d2.descends(d1) and d2.compare(d1) is Order.AFTER
    d3 = d2.increment("Sy", 3.0)
    d4 = d2.increment("Sz", 4.0)
    assert str(d3) == "[(Sx,2), (Sy,1)]" and str(d4) == "[(Sx,2), (Sz,1)]"
    assert d3.concurrent_with(d4) and d3.compare(d4) is Order.CONCURRENT
    assert d3.descends(d2) and d4.descends(d2)
    d5 = d3.merge(d4).increment("Sx", 5.0)
    assert d5 == VectorClock({"Sx": 3, "Sy": 1, "Sz": 1})
    assert str(d5) == "[(Sx,3), (Sy,1), (Sz,1)]"
    assert d5.descends(d3) and d5.descends(d4) and d5.descends(d1)
    assert d5.compare(d3) is Order.AFTER and d5.compare(d4) is Order.AFTER


# --------------------------------------------------------------------------- truncation

MANY = [f"N{i:02d}" for i in range(15)]
wide_clocks = st.dictionaries(
    st.sampled_from(MANY),
    st.tuples(st.integers(1, 5), st.sampled_from([float(t) for t in range(8)])),
    max_size=len(MANY),
).map(VectorClock)


@laws
@given(wide_clocks, st.integers(1, 16))
def test_truncate_drops_oldest(vc, threshold):
    t = vc.truncate(threshold)
    assert len(t) == min(len(vc), threshold)
    assert vc.descends(t)
    for n in t:
        assert t.get(n) == vc.get(n) and t.timestamp(n) == vc.timestamp(n)
    kept = [(vc.timestamp(n), n) for n in t]
    dropped = [(vc.timestamp(n), n) for n in vc if n not in t]
    if kept and dropped:
        assert max(dropped) < min(kept)
    if len(vc) <= threshold:
        assert t == vc


def test_truncate_default_threshold_is_ten():
    vc = VectorClock({f"N{i:02d}": (1, float(i)) for i in range(12)})
    t = vc.truncate()
    assert len(t) == 10 and "N00" not in t and "N01" not in t and "N11" in t


def test_truncate_ties_broken_by_node_id():
    vc = VectorClock({"A": (5, 1.0), "B": (1, 1.0), "C": (1, 1.0)})
    assert vc.truncate(2).nodes == ("B", "C")
    assert vc.truncate(1).nodes == ("C",)


def test_truncate_rejects_bad_threshold():
    for bad in (0, -1, True, 2.0, None):
        with pytest.raises(ClientError):
            VectorClock({"A": 1}).truncate(bad)


# --------------------------------------------------------------------------- wire form

@laws
@given(clocks)
def test_json_round_trip(vc):
    obj = vc.to_json()
    assert list(obj) == sorted(obj)
    back = VectorClock.from_json(json.loads(json.dumps(obj)))
    assert back == vc and back.to_json() == obj


def test_to_json_shape():
    assert VectorClock({"B": (1, 2.5), "A": 2}).to_json() == {"A": [2, 0.0], "B": [1, 2.5]}


@pytest.mark.parametrize("obj", [
    None, [], "A", {"A": 1}, {"A": [1]}, {"A": [1, 2.0, 3]}, {"A": [0, 1.0]}, {"A": [1.0, 1.0]},
    {"A": [True, 1.0]}, {"A": [1, "t"]}, {"A": [1, None]}, {"A": [1, True]}, {"": [1, 1.0]},
    {"A": {"counter": 1}},
])
def test_from_json_is_strict(obj):
    with pytest.raises(ClientError) as info:
        VectorClock.from_json(obj)
    assert str(info.value)
