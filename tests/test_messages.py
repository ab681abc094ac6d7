"""Every message survives a JSON round trip; anything malformed is a ProtocolError."""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass
from typing import Optional

import pytest
from hypothesis import given, settings, strategies as st

from dynamo_lab import KeyRange, VectorClock, Versioned
from dynamo_lab.errors import ProtocolError
from dynamo_lab import codec
from dynamo_lab.codec import decode, dumps, encode, loads, round_trip
from dynamo_lab.messages import (MESSAGE_TYPES, TIMER_TYPES, ClientGet, ClientPut, ClientReply,
                                 Gossip, MemberState, MerkleLevel, ReplicaPut, SyncVersions,
                                 quick_init)
from dynamo_lab.sim.wire_copies import WireCopies

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8)
clocks = st.dictionaries(st.sampled_from("ABCD"), st.integers(1, 5), max_size=4).map(VectorClock)
versions = st.builds(Versioned, json_values, clocks, st.booleans())


@settings(derandomize=True, max_examples=200)
@given(st.text(min_size=1, max_size=10), st.lists(versions, max_size=3),
       st.none() | st.sampled_from("ABC"), json_values)
def test_round_trip_of_data_messages(key, vs, hint, value):
    for msg in (ReplicaPut("r1", key, tuple(vs), hint), ClientPut("c1", key, value, None),
                SyncVersions("x", ((key, tuple(vs)),), (key,)),
                ClientReply("c1", "get", key, True, values=(value,), replies=("A",))):
        assert round_trip(msg) == msg
        assert json.loads(dumps(msg)) == json.loads(json.dumps(encode(msg))), msg


_SAMPLES = {
    MemberState: MemberState("A", 1, 2, "up", ("123",), "127.0.0.1:1"),
    KeyRange: KeyRange(5, 2**127), VectorClock: VectorClock({"A": 1}),
    Versioned: Versioned(["x"], VectorClock({"A": 1})),
}


def _sample(cls):
    kwargs = {}
    for f in dataclasses.fields(cls):
        t = str(f.type)
        if f.default is not dataclasses.MISSING:
            continue
        if "KeyRange" in t:
            kwargs[f.name] = _SAMPLES[KeyRange]
        elif "VectorClock" in t:
            kwargs[f.name] = _SAMPLES[VectorClock]
        elif "MemberState" in t:
            kwargs[f.name] = (_SAMPLES[MemberState],)
        elif "Versioned" in t and "tuple[tuple" not in t:
            kwargs[f.name] = (_SAMPLES[Versioned],)
        elif t.startswith("tuple[tuple[str"):
            kwargs[f.name] = (("k", (_SAMPLES[Versioned],)),) if "Versioned" in t else (("k", "d"),)
        elif t.startswith("tuple[tuple[int"):
            kwargs[f.name] = ((0, "ab"),)
        elif t.startswith("tuple[int"):
            kwargs[f.name] = (1, 2)
        elif t.startswith("tuple[str"):
            kwargs[f.name] = ("a",)
        elif t == "bool":
            kwargs[f.name] = True
        elif t == "int":
            kwargs[f.name] = 3
        elif "Client" in t:
            kwargs[f.name] = MESSAGE_TYPES["ClientGet"]("r", "k")
        else:
            kwargs[f.name] = "s"
    return cls(**kwargs)


def test_round_trip_of_every_message_type_with_defaults():
    for cls in list(MESSAGE_TYPES.values()) + list(TIMER_TYPES.values()):
        msg = _sample(cls)
        assert round_trip(msg) == msg, cls.__name__
        assert json.loads(dumps(msg))["type"] == cls.__name__
        assert json.loads(dumps(msg)) == json.loads(json.dumps(encode(msg))), cls.__name__


def test_a_version_travels_with_the_value_it_was_built_with():
    """Its digest was taken then; the wire carries the value that digest is of."""
    cart = ["pen"]
    v = Versioned(cart, VectorClock({"A": 1}))
    cart.append("ink")                 # mutated afterwards (a bug the version cannot see)
    got = round_trip(ReplicaPut("r1", "k", (v,), None)).versions[0]
    assert got.value == ["pen"] and got.digest() == v.digest()


@pytest.mark.parametrize("raw,why", [
    (b"not json", "not valid JSON"), (b"[1,2]", "JSON object"), (b'{"type":"Nope"}', "unknown message type"),
    (b'{"type":"ClientGet","req_id":"r"}', "missing field"),
    (b'{"type":"ClientGet","req_id":1,"key":"k"}', "expected str"),
    (b'{"type":"ClientGet","req_id":"r","key":"k","extra":1}', "unknown fields"),
    (b'{"type":"ReplicaPut","req_id":"r","key":"k","versions":[{"value":1}]}', "ReplicaPut.versions"),
    # the fast paths for lists of one scalar type and for exact ints still name the field
    (b'{"type":"Gossip","view":[{"node":"A","generation":1,"heartbeat":2,"status":"up",'
     b'"tokens":["1",2]}]}', "MemberState.tokens: expected str, got int"),
    (b'{"type":"Gossip","view":[{"node":"A","generation":true,"heartbeat":2,"status":"up"}]}',
     "MemberState.generation: expected int, got bool"),
    (b'{"type":"MerkleLeaves","exchange_id":"x","key_range":[1,2],"leaves":[1,false],'
     b'"entries":[]}', "MerkleLeaves.leaves: expected int, got bool"),
    (b'{"type":"Gossip","view":[],"reply":1}', "Gossip.reply: expected bool, got int"),
])
def test_malformed_messages_are_protocol_errors(raw, why):
    with pytest.raises(ProtocolError, match=why):
        loads(raw)


def test_encode_refuses_things_that_are_not_messages():
    with pytest.raises(TypeError):
        encode(object())
    with pytest.raises(TypeError, match="not a dynamo-lab message"):
        dumps(VectorClock({"A": 1}))
    with pytest.raises(ProtocolError):
        decode("ClientGet")


def test_gossip_and_merkle_levels_round_trip():
    g = Gossip((MemberState("A", 1, 7, "leaving", ("1", "2")),), reply=False)
    assert round_trip(g) == g
    m = MerkleLevel("x", KeyRange(1, 2), 6, 3, ((4, "aa"), (5, "bb")))
    assert round_trip(m) == m


def test_a_member_keeps_its_wire_text_and_a_changed_member_gets_its_own():
    a = MemberState("A", 1, 7, "up", ("1", "2"), "127.0.0.1:1")
    first = dumps(Gossip((a,)))
    assert dumps(Gossip((a,))) == first == json.dumps(
        encode(Gossip((a,))), separators=(",", ":"), ensure_ascii=False).encode()
    b = dataclasses.replace(a, heartbeat=8)
    assert loads(dumps(Gossip((a, b)))).view == (a, b)
    assert b'"heartbeat":8' in dumps(Gossip((b,))) and b'"heartbeat":8' not in first


def test_quick_init_keeps_each_message_what_its_dataclass_made_it():
    @dataclass(frozen=True)
    class Plain:
        a: str
        b: int = 3
        c: Optional[str] = None
    reference = inspect.signature(Plain)
    fresh = Plain("x", c="z")
    quick_init(Plain)
    assert inspect.signature(Plain) == reference
    made = Plain("x", c="z")
    assert made == fresh and hash(made) == hash(fresh) and repr(made) == repr(fresh)
    assert vars(made) == {"a": "x", "b": 3, "c": "z"}
    assert dataclasses.replace(made, b=4) == Plain("x", 4, "z")
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.a = "y"
    with pytest.raises(TypeError, match=r"Plain.__init__\(\) missing 1 required positional"):
        Plain()
    for cls in (*MESSAGE_TYPES.values(), *TIMER_TYPES.values()):
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


@pytest.mark.parametrize("shape", ["not frozen", "post_init", "factory"])
def test_quick_init_refuses_a_class_whose_init_does_more(shape):
    if shape == "not frozen":
        @dataclass
        class C:
            a: int
    elif shape == "post_init":
        @dataclass(frozen=True)
        class C:
            a: int

            def __post_init__(self):
                pass
    else:
        @dataclass(frozen=True)
        class C:
            a: tuple = dataclasses.field(default_factory=tuple)
    with pytest.raises(TypeError, match="quick_init takes a frozen dataclass"):
        quick_init(C)


def test_wire_copies_decode_identical_bytes_once_and_share_nothing_a_receiver_can_change():
    copies = WireCopies()
    put = ReplicaPut("r1", "k", (Versioned(["pen"], VectorClock({"A": 1}), write_id="w1"),), "B")
    first, second = copies(put), copies(ReplicaPut("r1", "k", put.versions, "B"))
    assert first == second == round_trip(put) == put
    assert first.versions[0] is not second.versions[0]
    first.versions[0].value.append("ink")           # one receiver changes what it got...
    assert second.versions[0].value == ["pen"]       # ...and the other does not see it
    assert copies(put).versions[0].value == ["pen"]
    assert second.versions[0].digest() == put.versions[0].digest()
    get = ClientGet("r2", "k")
    assert copies(get) is copies(get) == get         # all frozen: one object serves both
    value_put = ClientPut("r3", "k", {"n": [1]})
    a, b = copies(value_put), copies(value_put)      # a client's JSON: decoded every time
    assert a == b and a.value is not b.value
    with pytest.raises(TypeError, match="not a dynamo-lab message"):
        copies(VectorClock({"A": 1}))


# The codec's generated writer and reader against its general paths, on every class and on
# values of the right type and of the wrong one: the same text, the same message, the same error.
_CLASSES = sorted([*MESSAGE_TYPES.values(), *TIMER_TYPES.values(), MemberState], key=lambda c: c.__name__)


class _Text(str):
    pass


_ODD = [None, True, False, 0, 7, -1, 2.5, "", "é\"q", _Text("sub"), ["a", 1], [], {"k": [1]},
        ("1", "2"), (3, 4), VectorClock({"A": 1}), KeyRange(1, 9),
        (Versioned({"b": 1, "a": [2]}, VectorClock({"B": 2}), write_id="w"),),
        (MemberState("A", 1, 2, "up"),), MemberState("B", 1, 1, "left")]
_JSON_ODD = [None, True, False, 0, 7, 2.5, "", "s", ["a", "b"], ["a", 1], [1, 2], [], {},
             {"k": 1}, [{"value": 1, "clock": {}, "deleted": False}], [[1, "aa"]]]


def _outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except (ProtocolError, TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)


def _general_text(msg):
    parts = ['{"type":' + json.dumps(type(msg).__name__)]
    for name in codec._field_names(type(msg)):
        parts.append(f',"{name}":' + codec._wire_text(getattr(msg, name)))
    return "".join(parts) + "}"


def test_generated_writers_write_what_the_general_path_writes():
    for cls in _CLASSES:
        good = _sample(cls).__dict__
        for name in good:
            for odd in _ODD:                          # each field in turn holds each odd value
                msg = object.__new__(cls)
                object.__setattr__(msg, "__dict__", dict(good, **{name: odd}))
                assert _outcome(codec._writer(cls), msg) == _outcome(_general_text, msg), (cls, name, odd)


def test_generated_readers_agree_with_the_general_path_on_every_input():
    for cls in _CLASSES:
        good = json.loads(dumps(_sample(cls))) if cls is not MemberState else dict(
            json.loads(dumps(Gossip((_sample(cls),))))["view"][0])
        cases = [good, dict(good, extra=1)]
        cases += [{k: v for k, v in good.items() if k != name} for name in good]
        cases += [dict(good, **{name: odd}) for name in good if name != "type" for odd in _JSON_ODD]
        for obj in cases:
            assert _outcome(codec._reader(cls), obj) == _outcome(codec._build, cls, obj), (cls, obj)


def test_a_reader_fills_in_a_missing_optional_field_and_refuses_a_missing_required_one():
    assert loads(b'{"type":"ClientPut","req_id":"r","key":"k","value":[1]}') == ClientPut("r", "k", [1])
    assert loads(b'{"key":"k","value":null,"req_id":"r","type":"ClientPut"}') == ClientPut("r", "k", None)
    with pytest.raises(ProtocolError, match="ClientPut is missing field 'key'"):
        loads(b'{"type":"ClientPut","req_id":"r","value":1,"context":null}')
