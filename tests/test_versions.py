"""Versions: digests, syntactic reconciliation, JSON values, and the signed client context."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_lab.errors import ClientError, InvalidContext, InvalidValue
from dynamo_lab.vclock import EMPTY, Order, VectorClock
from dynamo_lab.versions import (
    Versioned, canonical_json, check_value, decode_context, encode_context, live_values,
    merged_clock, reconcile,
)

NODES = ["A", "B", "C", "D"]
clocks = st.dictionaries(
    st.sampled_from(NODES),
    st.tuples(st.integers(1, 3), st.sampled_from([0.0, 1.0, 5.0])),
    max_size=len(NODES),
).map(VectorClock)
values = st.sampled_from([None, 1, "x", ["book"], ["book", "pen"], {"qty": 2}])
versions = st.builds(Versioned, values, clocks, st.booleans())
version_lists = st.lists(versions, max_size=8)

props = settings(derandomize=True, max_examples=150, deadline=None)

KEY = "cluster-key-1"


# --------------------------------------------------------------------------- Versioned

def test_digest_ignores_timestamps_but_not_content():
    a = Versioned(["book"], VectorClock({"A": (1, 1.0)}))
    b = Versioned(["book"], VectorClock({"A": (1, 99.0)}))
    assert a.digest() == b.digest() and a == b and hash(a) == hash(b)
    for other in (Versioned(["pen"], a.clock), Versioned(["book"], a.clock, deleted=True),
                  Versioned(["book"], VectorClock({"A": 2})), Versioned(["book"], EMPTY)):
        assert other.digest() != a.digest() and other != a
    # JSON's distinctions count: 1 is not 1.0 is not true
    assert len({Versioned(v, EMPTY).digest() for v in (1, 1.0, True, "1")}) == 4


def test_digest_is_canonical_over_dict_order():
    a = Versioned({"x": 1, "y": [1, {"b": 2, "a": 3}]}, VectorClock({"B": 1, "A": 2}))
    b = Versioned({"y": [1, {"a": 3, "b": 2}], "x": 1}, VectorClock({"A": 2, "B": 1}))
    assert a.digest() == b.digest()


GOLDEN = ("Versioned({'cart': ['book', 'pen'], 'n': 2, 'note': 'café'}, "
          "VectorClock({'Sx': (3, 17.5), 'Sy': 1, 'Sz': 1}))")


def test_digest_is_pinned_and_stable_across_hash_seeds():
    """The digest must be the same on every machine: check two PYTHONHASHSEEDs and a pinned
    value (a change to the canonical form would silently split every existing replica)."""
    code = ("from dynamo_lab.versions import Versioned\n"
            "from dynamo_lab.vclock import VectorClock\n"
            f"print({GOLDEN}.digest())\n")
    outs = []
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=60, check=True)
        outs.append(proc.stdout.strip())
    local = eval(GOLDEN).digest()
    assert outs == [local, local]
    # sha256 of the documented canonical form, computed with sha256sum by hand
    assert local == "6af0fff6ff93a2b5961c440d43947f7f436d2609c7aa9deb3e0ce6122fb08f30"
    canonical = ('{"clock":{"Sx":3,"Sy":1,"Sz":1},"deleted":false,'
                 '"value":{"cart":["book","pen"],"n":2,"note":"café"}}')
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == local


def test_versioned_validates():
    with pytest.raises(InvalidValue):
        Versioned({1, 2}, EMPTY)
    with pytest.raises(InvalidValue):
        Versioned(("a",), EMPTY)
    with pytest.raises(ClientError):
        Versioned(1, {"A": 1})
    with pytest.raises(ClientError):
        Versioned(1, EMPTY, deleted=1)
    v = Versioned(1, EMPTY)
    with pytest.raises(AttributeError):
        v.value = 2
    with pytest.raises(TypeError, match="partially ordered"):
        v < v


@props
@given(versions)
def test_versioned_json_round_trip(v):
    obj = v.to_json()
    assert set(obj) == {"value", "clock", "deleted"}
    back = Versioned.from_json(json.loads(json.dumps(obj)))
    assert back == v and back.clock.to_json() == v.clock.to_json()
    assert back.deleted == v.deleted and back.value == v.value


@pytest.mark.parametrize("obj", [
    None, [], {"value": 1, "clock": {}}, {"value": 1, "clock": {}, "deleted": False, "x": 0},
    {"value": 1, "clock": {"A": 1}, "deleted": False}, {"value": 1, "clock": {}, "deleted": 0},
    {"value": float("nan"), "clock": {}, "deleted": False},
])
def test_versioned_from_json_is_strict(obj):
    with pytest.raises(ValueError):
        Versioned.from_json(obj)


@props
@given(versions, versions)
def test_versioned_descends_is_clock_descends(a, b):
    assert a.descends(b) == a.clock.descends(b.clock)


# --------------------------------------------------------------------------- reconcile

def test_paper_d1_to_d5_reconcile():
    d1 = Versioned(["book"], EMPTY.increment("Sx", 1.0))
    d2 = Versioned(["book", "pen"], d1.clock.increment("Sx", 2.0))
    d3 = Versioned(["book", "pen", "cup"], d2.clock.increment("Sy", 3.0))
    d4 = Versioned(["book", "pen", "hat"], d2.clock.increment("Sz", 4.0))
    assert d2.descends(d1) and reconcile([d1, d2]) == [d2]
    assert d3.clock.compare(d4.clock) is Order.CONCURRENT
    assert sorted(reconcile([d3, d4]), key=Versioned.digest) == reconcile([d3, d4])
    assert set(reconcile([d3, d4])) == {d3, d4} and len(reconcile([d3, d4])) == 2
    merged = sorted(set(d3.value) | set(d4.value))  # the application's semantic merge
    d5 = Versioned(merged, merged_clock([d3, d4]).increment("Sx", 5.0))
    assert d5.clock == VectorClock({"Sx": 3, "Sy": 1, "Sz": 1})
    assert d5.descends(d3) and d5.descends(d4)
    assert reconcile([d3, d4, d5]) == [d5]
    assert reconcile([d1, d2, d3, d4, d5]) == [d5]
    assert live_values([d3, d4, d5]) == [merged]


@props
@given(version_lists)
def test_reconcile_properties(vs):
    out = reconcile(vs)
    # antichain: pairwise concurrent
    for i, a in enumerate(out):
        for b in out[i + 1:]:
            assert a.clock.compare(b.clock) is Order.CONCURRENT
    # nothing is lost that is not superseded
    for v in vs:
        assert any(w.descends(v) for w in out)
    # every output is one of the inputs, and is not strictly descended by any input
    for w in out:
        assert any(w is v for v in vs)
        assert not any(v.clock.compare(w.clock) is Order.AFTER for v in vs)
    assert [w.digest() for w in out] == sorted(w.digest() for w in out)
    assert reconcile(out) == out
    assert (out == []) == (vs == [])


@props
@given(version_lists.flatmap(lambda vs: st.tuples(st.just(vs), st.permutations(vs))))
def test_reconcile_ignores_input_order(pair):
    vs, shuffled = pair
    a, b = reconcile(vs), reconcile(shuffled)
    assert a == b
    # identical down to the timestamps kept
    assert [v.clock.to_json() for v in a] == [v.clock.to_json() for v in b]


def test_reconcile_collapses_equal_clocks():
    c = VectorClock({"A": 1, "B": 2})
    x, y = Versioned("x", c), Versioned("y", VectorClock({"B": 2, "A": 1}))
    out = reconcile([x, y, x])
    assert len(out) == 1
    assert out[0].digest() == min(x.digest(), y.digest())
    assert reconcile([y, x]) == out


def test_reconcile_collapse_is_deterministic_on_timestamps():
    early = Versioned("x", VectorClock({"A": (1, 1.0)}))
    late = Versioned("x", VectorClock({"A": (1, 2.0)}))
    assert reconcile([early, late])[0].clock.to_json() == \
        reconcile([late, early])[0].clock.to_json()


def test_tombstones_order_against_writes():
    w = Versioned(["book"], VectorClock({"A": 1}))
    delete = Versioned(None, w.clock.increment("A"), deleted=True)
    concurrent = Versioned(["pen"], w.clock.increment("B"))
    assert reconcile([w, delete]) == [delete]
    assert live_values([w, delete]) == []
    assert set(reconcile([w, delete, concurrent])) == {delete, concurrent}
    assert live_values([w, delete, concurrent]) == [["pen"]]


def test_reconcile_accepts_iterables_and_rejects_junk():
    v = Versioned(1, VectorClock({"A": 1}))
    assert reconcile(iter([v])) == [v] and reconcile(()) == []
    with pytest.raises(TypeError):
        reconcile([v, {"value": 1}])


@props
@given(version_lists)
def test_merged_clock(vs):
    m = merged_clock(vs)
    assert all(m.descends(v.clock) for v in vs)
    assert m == merged_clock(reconcile(vs))
    if not vs:
        assert m == EMPTY


@props
@given(version_lists)
def test_live_values(vs):
    out = reconcile(vs)
    assert live_values(vs) == [v.value for v in out if not v.deleted]


# --------------------------------------------------------------------------- JSON values

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=12,
)


@props
@given(json_values)
def test_check_value_accepts_json(value):
    assert check_value(value) is value
    text = canonical_json(value)
    assert json.loads(text) == value
    assert canonical_json(json.loads(text)) == text


def test_check_value_accepts_nested_json():
    value = {"cart": [{"sku": "b-1", "qty": 2, "price": 9.5, "gift": False, "note": None}],
             "owner": "ålice", "tags": [[], {}]}
    assert check_value(value) is value
    assert canonical_json(value) == (
        '{"cart":[{"gift":false,"note":null,"price":9.5,"qty":2,"sku":"b-1"}],'
        '"owner":"ålice","tags":[[],{}]}')


class Thing:
    pass


@pytest.mark.parametrize("value, fragment", [
    ({"a", "b"}, "set"), (frozenset(), "set"), (b"xy", "bytes"), (bytearray(b"x"), "bytes"),
    (float("nan"), "nan"), (float("inf"), "inf"), ([1, {"k": -float("inf")}], "value[1]['k']"),
    (Thing(), "Thing"), ({1: "a"}, "key"), ({"ok": {None: 1}}, "key"), (("a",), "tuple"),
    ({"a": [1, object()]}, "value['a'][1]"), ("\ud800", "surrogate"),
])
def test_check_value_rejects_non_json(value, fragment):
    with pytest.raises(InvalidValue) as info:
        check_value(value)
    assert fragment.lower() in str(info.value).lower()


def test_check_value_rejects_cycles_and_deep_nesting():
    loop: list = []
    loop.append(loop)
    deep: list = []
    for _ in range(1000):
        deep = [deep]
    for value in (loop, deep):
        with pytest.raises(InvalidValue, match="deep"):
            check_value(value)


def test_check_value_size_limit():
    assert check_value("x" * 98, max_bytes=100) == "x" * 98        # 100 bytes with quotes
    with pytest.raises(InvalidValue, match="limit is 100"):
        check_value("x" * 99, max_bytes=100)
    with pytest.raises(InvalidValue):
        check_value("é" * 50, max_bytes=100)                       # 102 bytes of UTF-8
    with pytest.raises(InvalidValue):
        check_value(["x" * 600_000, "y" * 600_000])                # default 1 MB


def test_canonical_json_format():
    assert canonical_json({"b": [1, 2.0], "a": "é"}) == '{"a":"é","b":[1,2.0]}'
    assert canonical_json((1, 2)) == "[1,2]"
    with pytest.raises(InvalidValue):
        canonical_json({"a": {1, 2}})


# --------------------------------------------------------------------------- contexts

def _forge(raw: bytes, key: str = KEY) -> str:
    """A context built from the documented format alone, independently of encode_context."""
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    sig = hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()[:16]
    return f"c1.{payload}.{sig}"


HELP = "pass the context returned by get() on this cluster, or None for a blind write"


@props
@given(clocks)
def test_context_round_trip(vc):
    ctx = encode_context(vc, KEY)
    assert ctx.startswith("c1.")
    assert all(ch.isalnum() or ch in "._-" for ch in ctx) and ctx.isascii()
    back = decode_context(ctx, KEY)
    assert back == vc and back.to_json() == vc.to_json()
    assert encode_context(vc, KEY) == ctx


def test_context_format():
    vc = VectorClock({"Sx": (2, 1.5)})
    ctx = encode_context(vc, KEY)
    prefix, payload, sig = ctx.split(".")
    assert prefix == "c1" and len(sig) == 16 and "=" not in payload
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert raw.decode() == canonical_json(vc.to_json())
    assert ctx == _forge(raw)


def test_no_context_is_a_blind_write():
    assert decode_context(None, KEY) is EMPTY and decode_context("", KEY) is EMPTY
    assert decode_context(encode_context(EMPTY, KEY), KEY) == EMPTY


def test_context_tampering_any_character_is_refused():
    ctx = encode_context(VectorClock({"A": (3, 2.0), "B": (1, 7.25)}), KEY)
    for i, ch in enumerate(ctx):
        for repl in ("A", "0", "a", "_", "."):
            if repl == ch:
                continue
            bad = ctx[:i] + repl + ctx[i + 1:]
            with pytest.raises(InvalidContext, match="get\\(\\) on this cluster"):
                decode_context(bad, KEY)


@pytest.mark.parametrize("bad", [
    "garbage", "c1.", "c1..", "c1.e30", "c2.e30.0123456789abcdef", "c1.e30.0123456789ABCDEF",
    "c1.e30.0123456789abcdef", " c1.e30.0123456789abcdef", "c1.e30=.0123456789abcdef",
    "c1.e!30.0123456789abcdef", "x" * 200_000, 12, b"c1.e30.0123456789abcdef", ["c1"],
    {"A": [1, 0.0]}, VectorClock({"A": 1}),
])
def test_garbage_contexts_are_refused_helpfully(bad):
    with pytest.raises(InvalidContext) as info:
        decode_context(bad, KEY)
    assert HELP in str(info.value)
    assert isinstance(info.value, ValueError)


def test_context_from_another_cluster_is_refused():
    ctx = encode_context(VectorClock({"A": 1}), "cluster-one")
    with pytest.raises(InvalidContext, match="another cluster"):
        decode_context(ctx, "cluster-two")
    assert decode_context(ctx, "cluster-one") == VectorClock({"A": 1})


def test_signed_but_corrupt_payload_is_refused():
    """Defence in depth: even with the right key, a payload that is not a clock is refused."""
    for raw in (b"\xff\xfe", b"not json", b"[1,2]", b'{"A":[0,1.0]}'):
        with pytest.raises(InvalidContext, match="corrupt"):
            decode_context(_forge(raw), KEY)


def test_cluster_key_must_be_a_string():
    with pytest.raises(ValueError):
        encode_context(EMPTY, None)
    with pytest.raises(ValueError):
        decode_context("", b"key")
    with pytest.raises(TypeError):
        encode_context({"A": 1}, KEY)
