"""dynamo_lab.jsontext gives the standard library's JSON text and errors, only faster."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from dynamo_lab import jsontext

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_encoders_write_what_the_standard_encoder_writes(value):
    for sort_keys in (False, True):
        std = json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False,
                               allow_nan=False).encode
        assert jsontext.encoder(sort_keys=sort_keys)(value) == std(value)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(["", " ", "\n", "\t "]), st.sampled_from(["", " ", "\r\n"]))
def test_loads_reads_what_json_loads_reads(value, before, after):
    text = before + json.dumps(value, ensure_ascii=False) + after
    for doc in (text, text.encode("utf-8")):
        got = jsontext.loads(doc)
        assert got == json.loads(doc) and type(got) is type(json.loads(doc))


@pytest.mark.parametrize("doc", ['{"a":1} x', '{"a":', "", "[1,]", b"\xff\xfe[]", "\ufeff[1]",
                                 b'{"a":"\\ud800"', '{"a":1}{"b":2}', "nul"])
def test_loads_raises_exactly_what_json_loads_raises(doc):
    with pytest.raises(Exception) as std:
        json.loads(doc)
    with pytest.raises(Exception) as fast:
        jsontext.loads(doc)
    assert type(fast.value) is type(std.value) and str(fast.value) == str(std.value)


def test_loads_keeps_json_loads_readings_of_a_bom_and_of_constants():
    assert jsontext.loads(b"\xef\xbb\xbf[1]") == json.loads(b"\xef\xbb\xbf[1]") == [1]
    assert math.isnan(jsontext.loads("NaN")) and jsontext.loads("[Infinity]") == [math.inf]


def test_an_encoder_refuses_what_the_standard_one_refuses_and_works_on_afterwards():
    enc = jsontext.encoder()
    cyclic: list = []
    cyclic.append(cyclic)
    for error, bad in ((ValueError, math.nan), (TypeError, {1}), (TypeError, object())):
        outer = [[], {"x": bad}]
        with pytest.raises(error):
            enc(outer)
        # A failed call leaves nothing behind: once fixed, the same list encodes, without a
        # false "Circular reference detected" from the failed call's marks.
        outer[1]["x"] = 1
        assert enc(outer) == '[[],{"x":1}]'
    with pytest.raises(ValueError, match="Circular"):
        enc(cyclic)
    assert enc("é\"") == json.dumps("é\"", ensure_ascii=False)
