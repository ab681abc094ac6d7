"""Bayou's messages cross the project's JSON codec and come back equal; the Dynamo codec's
registry never lists them, so Dynamo nodes and their tests never see them."""

from __future__ import annotations

import json

import pytest

from dynamo_lab import codec as dynamo_codec, messages as dynamo_wire
from dynamo_lab.bayou import messages as wire
from dynamo_lab.bayou.truncation import Checkpoint
from dynamo_lab.bayou.writes import Add, Book, Commit, Delete, Put, Write
from dynamo_lab.errors import ProtocolError

SAMPLES = [
    wire.ClientWrite("w1", Put("X", 4)),
    wire.ClientWrite("w2", Book("room", "mon-10", "alice", ("tue-10", "wed-9"))),
    wire.ClientWrite("w3", Put("cart", ["a", {"n": 1}, None])),
    wire.WriteAccepted("w1", 7, "A"),
    wire.ClientRead("r1", "X"),
    wire.ReadReply("r1", "X", [1, 2], None),
    wire.StartSession("B", "s1"),
    wire.CommitNow(),
    wire.Truncate(3),
    wire.SessionRequest("s1", (("P", 7), ("A", 12), ("B", 5)), 2),
    wire.SessionReply("s1", (Write(1, "P", Put("X", 4), 1), Commit(7, "P", 2),
                             Write(13, "B", Delete("Y")), Write(14, "B", Add("c", "i")))),
    wire.SessionReply("s2", (), Checkpoint(4, (("A", 4),), (("cart", ["book"]), ("k", 1)))),
    wire.SessionTick(),
    wire.CommitTick(),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_bayou_message_survives_the_wire(msg):
    assert wire.round_trip(msg) == msg
    assert json.loads(wire.dumps(msg))["type"] == type(msg).__name__


def test_every_type_has_a_sample():
    assert {type(m).__name__ for m in SAMPLES} == set(wire.MESSAGE_TYPES) | set(wire.TIMER_TYPES)


def test_the_dynamo_registry_is_left_as_it_was():
    before = dict(dynamo_wire.MESSAGE_TYPES)
    for msg in SAMPLES:
        wire.round_trip(msg)
    assert dynamo_wire.MESSAGE_TYPES == before
    assert not set(before) & (set(wire.MESSAGE_TYPES) | set(wire.NESTED_TYPES))
    with pytest.raises(ProtocolError, match="unknown message type"):
        dynamo_codec.loads(wire.dumps(SAMPLES[0]))          # a Dynamo node refuses it


def test_each_codec_refuses_the_others_messages_and_malformed_input():
    with pytest.raises(TypeError):
        wire.dumps(dynamo_wire.ClientGet("r", "k"))
    with pytest.raises(ProtocolError):
        wire.loads(dynamo_codec.dumps(dynamo_wire.ClientGet("r", "k")))
    with pytest.raises(ProtocolError):
        wire.loads(b'{"type":"Write","stamp":1,"server":"A","op":{"type":"Put","key":"X","value":1}}')
    with pytest.raises(ProtocolError, match="expected int"):
        wire.loads(b'{"type":"WriteAccepted","req_id":"w","stamp":"7","server":"A"}')
    with pytest.raises(ProtocolError):
        wire.loads(b'{"type":"ClientWrite","req_id":"w","op":"rm -rf"}')
