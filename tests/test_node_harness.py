"""The coordinator, one step at a time, on dynamo_lab.testing.NodeHarness: each test says
exactly what the node must send after each input, and fails on anything else."""

from __future__ import annotations

import pytest

from dynamo_lab.messages import (ClientGet, ClientPut, ClientReply, Forward, ForwardTimeout,
                                 ReplicaGet, ReplicaGetReply, ReplicaPut, ReplicaPutAck,
                                 RequestTimeout)
from dynamo_lab.testing import NodeHarness, UnexpectedEffect
from dynamo_lab.vclock import VectorClock
from dynamo_lab.versions import Versioned

MEMBERS = ["A", "B", "C", "D", "E"]
CLIENT = "client:x"


def key_where(h: NodeHarness, first: bool) -> tuple[str, list[str]]:
    """A key whose preference list starts at the harness's node (or leaves it out)."""
    for i in range(1000):
        key = f"cart{i}"
        pref = h.node.preference_list(key)
        if (pref[0] == h.node.id) if first else (h.node.id not in pref):
            return key, pref
    raise AssertionError("no such key")


def test_a_put_answers_after_w_acks_and_then_says_nothing():
    h = NodeHarness("A", MEMBERS)
    key, pref = key_where(h, first=True)
    h.deliver(CLIENT, ClientPut("x#1", key, ["book"]))
    puts = h.expect_send(ReplicaPut, count=2)
    assert sorted(p.dst for p in puts) == sorted(pref[1:])
    assert all(p.msg.versions[0].clock == VectorClock({"A": 1}) for p in puts)
    h.expect_timer(RequestTimeout, delay_s=h.node.config.request_timeout_s)
    h.expect_nothing_else()
    h.deliver(puts[0].dst, ReplicaPutAck(puts[0].msg.req_id, key))
    reply = h.expect_send(ClientReply, to=CLIENT)
    assert reply.msg.ok and reply.msg.got == 2 and reply.msg.req_id == "x#1"
    h.expect_nothing_else()
    h.deliver(puts[1].dst, ReplicaPutAck(puts[1].msg.req_id, key))
    h.expect_nothing_else()                       # the late third ack: nothing to do


def test_a_get_answers_after_r_replies_with_the_reconciled_siblings():
    h = NodeHarness("A", MEMBERS)
    key, pref = key_where(h, first=True)
    h.deliver(CLIENT, ClientGet("x#2", key))
    asks = h.expect_send(ReplicaGet, count=2)
    h.expect_timer(RequestTimeout)
    held = Versioned(["book"], VectorClock({"B": 1}), write_id="y:1")
    h.deliver(asks[0].dst, ReplicaGetReply(asks[0].msg.req_id, key, (held,)))
    reply = h.expect_send(ClientReply, to=CLIENT)
    assert reply.msg.values == (["book"],) and reply.msg.context
    h.expect_nothing_else()


def test_a_node_outside_the_top_n_forwards_with_the_writes_identity():
    h = NodeHarness("A", MEMBERS)
    key, pref = key_where(h, first=False)
    h.deliver(CLIENT, ClientPut("x#3", key, ["book"]), at=1.5)
    fwd = h.expect_send(Forward, to=pref[0])
    assert fwd.msg.write_id == f"{CLIENT}:x#3" and fwd.msg.sent_at == 1.5 and not fwd.msg.retry
    h.expect_timer(ForwardTimeout, delay_s=3 * h.node.config.request_timeout_s)
    h.expect_nothing_else()
    h.deliver(pref[0], ClientReply(fwd.msg.fwd_id, "put", key, True, coordinator=pref[0]))
    relayed = h.expect_send(ClientReply, to=CLIENT)
    assert relayed.msg.req_id == "x#3" and relayed.msg.coordinator == pref[0]
    h.expect_nothing_else()


def test_a_forward_without_answer_is_retried_once_as_the_same_write_then_fails():
    h = NodeHarness("A", MEMBERS)
    key, pref = key_where(h, first=False)
    h.deliver(CLIENT, ClientPut("x#4", key, ["book"]))
    first = h.expect_send(Forward, to=pref[0])
    timer = h.expect_timer(ForwardTimeout)
    h.fire(timer.timer, at=3 * h.node.config.request_timeout_s)
    retry = h.expect_send(Forward, to=pref[1])          # the first target is suspected now
    assert retry.msg.retry and retry.msg.write_id == first.msg.write_id
    h.fire(h.expect_timer(ForwardTimeout).timer, at=6 * h.node.config.request_timeout_s)
    failed = h.expect_send(ClientReply, to=CLIENT)
    assert (failed.msg.ok, failed.msg.error_kind, failed.msg.may_have_applied) == \
        (False, "quorum", True)
    assert pref[1] in failed.msg.error
    h.expect_nothing_else()


def test_a_duplicated_forward_sends_the_same_version_again():
    h = NodeHarness("A", MEMBERS)
    key, pref = key_where(h, first=True)
    fwd = Forward("E.1.7", ClientPut("E.1.7", key, ["book"]), write_id="w:1", sent_at=0.0)
    h.deliver("E", fwd)
    first = h.expect_send(ReplicaPut, count=2)
    h.expect_timer(RequestTimeout)
    h.deliver("E", fwd)                           # the network delivered it twice
    again = h.expect_send(ReplicaPut, count=2)
    h.expect_timer(RequestTimeout)
    assert {p.msg.versions[0] for p in again} == {p.msg.versions[0] for p in first}
    assert h.node.stats["duplicate_writes"] == 1
    h.expect_nothing_else()


def test_a_forward_older_than_its_senders_patience_is_refused():
    h = NodeHarness("A", MEMBERS, now=2.0)
    key, _ = key_where(h, first=True)
    h.deliver("E", Forward("E.1.8", ClientPut("E.1.8", key, ["book"]), write_id="w:2",
                           sent_at=2.0 - 2.5 * h.node.config.request_timeout_s))
    refused = h.expect_send(ClientReply, to="E")
    assert not refused.msg.ok and refused.msg.error_kind == "expired"
    h.expect_nothing_else()
    assert list(h.node.store.get(key)) == []


def test_the_harness_fails_on_what_the_test_did_not_expect():
    h = NodeHarness("A", MEMBERS)
    key, _ = key_where(h, first=True)
    h.deliver(CLIENT, ClientPut("x#9", key, ["book"]))
    with pytest.raises(UnexpectedEffect, match="ReplicaPut"):
        h.expect_nothing_else()
    h.deliver(CLIENT, ClientGet("x#10", key))
    with pytest.raises(UnexpectedEffect, match="expected 1 ReplicaPut"):
        h.expect_send(ReplicaPut)
