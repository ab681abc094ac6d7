"""h2-style sweep: any well-typed message, in any state, from any sender, is either handled or
refused with ProtocolError. Nothing else may escape a node (the TCP runtime relies on it)."""

from __future__ import annotations

import dataclasses
import typing

from hypothesis import HealthCheck, given, settings, strategies as st

import dynamo_lab as dl
from dynamo_lab.errors import ProtocolError
from dynamo_lab.messages import MESSAGE_TYPES, TIMER_TYPES, MemberState

KEYS = st.sampled_from(["cart", "k1", "", "x" * 2000, "ü"])
NODES = st.sampled_from(["A", "B", "C", "Z", "", "client:x"])
json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
                           lambda i: st.lists(i, max_size=2), max_leaves=4)
clocks = st.dictionaries(st.sampled_from(["A", "B", "C", "Z"]), st.integers(1, 4),
                         max_size=3).map(dl.VectorClock)
versions = st.builds(dl.Versioned, json_values, clocks, st.booleans())
ranges = st.builds(dl.KeyRange, st.integers(0, dl.RING_SIZE - 1), st.integers(0, dl.RING_SIZE - 1))
members = st.builds(MemberState, NODES, st.integers(0, 3), st.integers(0, 5),
                    st.sampled_from(["up", "leaving", "left", "weird"]),
                    st.lists(st.integers(0, dl.RING_SIZE - 1).map(str), max_size=2).map(tuple),
                    st.just(""))


def strategy_for(tp):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is typing.Any:
        return json_values
    if origin is typing.Union:
        return st.one_of(*[strategy_for(a) for a in args])
    if tp is type(None):
        return st.none()
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
        return st.tuples(*[strategy_for(a) for a in args])
    if tp is str:
        return st.one_of(KEYS, NODES, st.text(max_size=6))
    if tp is int:
        return st.integers(-1, 8)
    if tp is float:
        return st.floats(0, 10)
    if tp is bool:
        return st.booleans()
    if tp is dl.VectorClock:
        return clocks
    if tp is dl.Versioned:
        return versions
    if tp is dl.KeyRange:
        return ranges
    if tp is MemberState:
        return members
    if dataclasses.is_dataclass(tp):
        return message_of(tp)
    raise AssertionError(f"no strategy for {tp!r}")


def message_of(cls):
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: strategy_for(hints[f.name]) for f in dataclasses.fields(cls)})


any_message = st.one_of(*[message_of(c) for c in MESSAGE_TYPES.values()])
any_timer = st.one_of(*[message_of(c) for c in TIMER_TYPES.values()])


@settings(derandomize=True, max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(NODES, st.one_of(any_message, any_timer)), min_size=1, max_size=6),
       st.integers(0, 3))
def test_a_node_handles_or_refuses_anything(inputs, warmup):
    cluster = dl.SimCluster(nodes=3, seed=warmup)
    cluster.client("a").put("cart", ["book"])
    cluster.run_for(warmup)
    node = cluster.node("A")
    for src, msg in inputs:
        try:
            if type(msg).__name__ in TIMER_TYPES:
                node.on_timer(msg, cluster.now)
            else:
                node.on_message(src, msg, cluster.now)
        except ProtocolError:
            pass
    # and the node still serves clients afterwards (what it answers depends on what it was told)
    cluster.run_for(2)
    cluster.client("a").get("cart", via="A")
