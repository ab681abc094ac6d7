"""One client write is one version: a retried forward, a duplicated message or a forward that
also arrived is applied once (issue: "a retried request must not write twice")."""

from __future__ import annotations

import dynamo_lab as dl
from dynamo_lab.checker import OpRecord, check_key_history
from dynamo_lab.faults import FaultConfig
from dynamo_lab.vclock import VectorClock
from dynamo_lab.versions import Versioned, distinct_writes, reconcile


def _layout(c: dl.SimCluster, key: str):
    """The key's top three nodes, and a node outside them (it forwards)."""
    pref = c.ring().preference_list(key, 3)
    outside = next(n for n in c.nodes if n not in pref)
    return pref, outside


def _one_version_everywhere(c: dl.SimCluster, key: str, value) -> Versioned:
    held = c.replicas(key)
    assert len(held) >= 3, held
    versions = {v for vs in held.values() for v in vs}
    assert len(versions) == 1, f"the write is held as {len(versions)} versions: {held}"
    (v,) = versions
    assert v.value == value and v.write_id is not None
    return v


def test_a_forward_answered_too_late_is_not_applied_twice():
    """The first coordinator applies the write but its answer is lost; the forwarding node
    retries at the next coordinator, which holds the write already and sends it again."""
    c = dl.SimCluster(nodes=5, seed=3)
    pref, f = _layout(c, "cart")
    c.partition({pref[0]}, {f}, one_way=True)       # pref[0] hears f, f never hears it
    res = c.client("alice").put("cart", ["book"], via=f)
    assert res.coordinator == pref[1], "the retry should be coordinated by the next top-N node"
    c.heal()
    c.run_for(10)
    v = _one_version_everywhere(c, "cart", ["book"])
    assert v.clock.nodes == (pref[0],), f"stamped by the first coordinator only: {v.clock}"
    assert c.node(pref[1]).stats.get("duplicate_writes") == 1
    assert c.check() == []


def test_a_retry_reads_the_replicas_for_the_write_before_stamping_it():
    """The next coordinator does not hold the write yet; a replica does. The retry finds it
    by reading before stamping."""
    c = dl.SimCluster(nodes=5, seed=3)
    pref, f = _layout(c, "cart")
    c.partition({pref[0]}, {f, pref[1]}, one_way=True)   # pref[0] reaches only itself and pref[2]
    res = c.client("alice").put("cart", ["book"], via=f)
    assert res.coordinator == pref[1]
    assert any("reading the replicas for it" in line for line in c.trace_lines())
    c.heal()
    c.run_for(10)
    v = _one_version_everywhere(c, "cart", ["book"])
    assert v.clock.nodes == (pref[0],)
    assert c.check() == []


def test_duplicated_and_reordered_forwards_apply_each_write_once():
    c = dl.SimCluster(nodes=5, seed=11, faults=FaultConfig(duplicate=0.5, reorder=0.3))
    keys = [f"k{i}" for i in range(30)]
    for k in keys:
        _, f = _layout(c, k)
        c.client("alice").put(k, [k], via=f)
    c.run_for(10)
    for k in keys:
        _one_version_everywhere(c, k, [k])
    assert sum(c.node(n).stats.get("duplicate_writes", 0) for n in c.nodes) > 0, \
        "seed=11: no forward was duplicated, so this test proves nothing"
    assert c.check() == []


def test_two_copies_of_one_write_are_one_sibling_and_fall_together():
    """Where two coordinators did stamp one write (neither could see the other), a read shows
    it once, and a put that read either copy supersedes both."""
    ctx = VectorClock({"C": 1})
    copy1 = Versioned(["book"], ctx.increment("A"), write_id="alice:7")
    copy2 = Versioned(["book"], ctx.increment("B"), write_id="alice:7")
    other = Versioned(["pen"], ctx.increment("D"), write_id="bob:1")
    assert len(reconcile([copy1, copy2, other])) == 3
    assert [v.value for v in distinct_writes(reconcile([copy1, copy2, other]))] == [
        v.value for v in reconcile([copy1, other])]
    after = Versioned(["book", "mug"], copy1.clock.increment("A"), write_id="carol:1")
    assert reconcile([copy2, after, copy1]) == [after]
    # A different value under the same id is not the same write: both stay.
    impostor = Versioned(["mug"], ctx.increment("B"), write_id="alice:7")
    assert reconcile([after, copy1, impostor]) == sorted([after, impostor], key=lambda v: v.digest())


def test_the_checker_names_a_write_held_twice():
    ctx = VectorClock({"C": 1})
    copies = [Versioned(["book"], ctx.increment(n), write_id="alice:7") for n in ("A", "B")]
    put = OpRecord(1, "alice", "put", "cart", ["book"], 0.0, 1.0, ok=True, clock=copies[0].clock)
    found = check_key_history("cart", [put], {"A": copies, "B": copies})
    assert [v.check for v in found] == ["writes-applied-once"]
    assert "alice:7" in found[0].detail


def test_a_read_modify_write_campaign_with_faults_leaves_no_write_twice():
    """Seed 4 of the campaign (duplicate, drop and reorder faults, crashes) used to end with a
    cart holding the same write as two identical siblings."""
    from dynamo_lab.campaign import run_campaign
    from dynamo_lab.versions import canonical_json

    res = run_campaign(4, 400, trace=False)
    assert res.ok, res.report()
    for key in [f"cart{i}" for i in range(6)]:
        final = reconcile(v for vs in res.cluster.replicas(key).values() for v in vs)
        values = [canonical_json(v.value) for v in final if not v.deleted]
        assert len(values) == len(set(values)), f"seed=4 {key}: identical siblings {values}"


def test_a_forward_that_arrives_after_its_sender_gave_up_is_not_applied():
    """The receiver was stopped (or the network held the forward) past the point where the
    sender retried elsewhere: applying it too would write the client's request twice."""
    from dynamo_lab.messages import ClientPut, Forward
    c = dl.SimCluster(nodes=5, seed=3)
    pref, f = _layout(c, "cart")
    late = Forward("f.1.9", ClientPut("f.1.9", "cart", ["book"]), write_id="alice:9",
                   sent_at=c.node(f).now - 5.0)
    c.hosts[pref[0]].deliver(f, late)
    c.run_for(2)
    assert not any(c.replicas("cart").values()), "the late forward was applied"
    assert c.node(pref[0]).stats.get("forwards_expired") == 1
    assert any("expired" in line and "ClientReply" in line for line in c.trace_lines())
