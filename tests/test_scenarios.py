"""Dynamo's techniques, one scenario each, through real nodes in the simulator.

Each test reads like the story it tells; every cluster is seeded, so a failure replays exactly.
"""

from __future__ import annotations

import pytest

import dynamo_lab as dl
from dynamo_lab.node import Parts


def clocks(versions):
    return sorted(v.clock.counters().items() for v in versions)


def holders_of(cluster, key):
    return sorted(cluster.holders(key))


# -- the paper's D1..D5 story (section 4.4, figure 3) ------------------------------------------

def sim_settle(cluster, check) -> None:
    """Let virtual time pass, then the condition must hold (TCP tests poll instead)."""
    cluster.run_for(5)
    assert check()


def paper_d1_to_d5_story(cluster, settle=sim_settle) -> None:
    """The story, on any cluster with nodes Sx, Sy, Sz and (N, R, W) = (3, 2, 2). The TCP tests
    run this same function on real processes."""
    key = cluster.config.cluster_key
    alice, bob, carol = cluster.client("alice"), cluster.client("bob"), cluster.client("carol")

    # D1 and D2: two writes handled by Sx.
    d1 = alice.put("cart", ["book"], via="Sx")
    d2 = alice.put("cart", ["book", "pen"], context=d1.context, via="Sx")
    assert dl.decode_context(d2.context, key) == dl.VectorClock({"Sx": 2})

    # Sx goes down. Two clients read D2 and write concurrently through Sy and Sz.
    cluster.crash("Sx")
    read = bob.get("cart", via="Sy")
    assert read.values == [["book", "pen"]]
    w3 = bob.submit_put("cart", ["book", "pen", "lamp"], context=read.context, via="Sy")
    w4 = carol.submit_put("cart", ["book", "pen", "mug"], context=read.context, via="Sz")
    cluster.wait(w3, w4)
    d3 = dl.decode_context(w3.result().context, key)
    d4 = dl.decode_context(w4.result().context, key)
    assert d3 == dl.VectorClock({"Sx": 2, "Sy": 1})
    assert d4 == dl.VectorClock({"Sx": 2, "Sz": 1})
    assert d3.compare(d4) is dl.Order.CONCURRENT

    # Sx is back. A read returns both siblings; the client merges them and writes D5 via Sx.
    cluster.restart("Sx")
    settle(cluster, lambda: len(alice.get("cart", via="Sx").values) == 2)
    res = alice.get("cart", via="Sx")
    assert sorted(map(tuple, res.values)) == [("book", "pen", "lamp"), ("book", "pen", "mug")]
    merged = sorted({item for v in res.values for item in v})
    d5 = alice.put("cart", merged, context=res.context, via="Sx")
    d5_clock = dl.decode_context(d5.context, key)
    assert d5_clock == dl.VectorClock({"Sx": 3, "Sy": 1, "Sz": 1})
    assert d5_clock.descends(d3) and d5_clock.descends(d4)
    assert alice.get("cart").values == [merged]
    settle(cluster, lambda: cluster.check() == [])


def test_paper_d1_to_d5_story():
    paper_d1_to_d5_story(dl.SimCluster(nodes=["Sx", "Sy", "Sz"], n=3, r=2, w=2, seed=1))


# -- sloppy quorum and hinted handoff ----------------------------------------------------------

def test_sloppy_quorum_writes_a_hint_and_hands_it_off_after_restart():
    cluster = dl.SimCluster(nodes=5, seed=2, anti_entropy=False, read_repair=False)
    client = cluster.client("alice")
    pref = cluster.preference_list("cart")
    down = pref[1]
    cluster.crash(down)
    cluster.run_for(6)                       # long enough for the others to suspect it

    put = client.put("cart", ["book"], via=pref[0])
    assert down not in put.replies and len(put.replies) >= 2
    stand_ins = [n for n in cluster.nodes if n not in pref and cluster.stores[n].hints(down)]
    assert len(stand_ins) == 1, "one node beyond the top N keeps the replica, with a hint"
    hint = cluster.stores[stand_ins[0]].hints(down)[0]
    assert hint.key == "cart" and hint.intended == down
    assert "cart" not in cluster.stores[stand_ins[0]]     # kept apart from its own data

    cluster.restart(down)
    cluster.run_for(10)
    assert [v.value for v in cluster.stores[down].get("cart")] == [["book"]]
    assert cluster.hints()[stand_ins[0]] == 0, "the hint is deleted once delivered"


def test_put_survives_a_replica_crash_without_waiting_for_suspicion():
    cluster = dl.SimCluster(nodes=5, seed=3)
    client = cluster.client("alice")
    pref = cluster.preference_list("k")
    cluster.crash(pref[2])
    put = client.put("k", 1, via=pref[0])     # the crash is not yet suspected: the coordinator
    assert len(put.replies) >= 2              # waits W acks from the two live primaries
    cluster.crash(pref[1])
    put = client.put("k", 2, context=put.context, via=pref[0])   # the timeout finds a stand-in
    assert pref[1] not in put.replies and pref[2] not in put.replies
    assert client.get("k", via=pref[0]).values == [2]


def test_strict_quorum_fails_with_a_clear_error_that_says_the_write_may_have_applied():
    cluster = dl.SimCluster(nodes=5, seed=4, sloppy_quorum=False)
    client = cluster.client("alice")
    pref = cluster.preference_list("k")
    cluster.crash(pref[1])
    cluster.crash(pref[2])
    with pytest.raises(dl.QuorumError) as err:
        client.put("k", 1, via=pref[0])
    assert err.value.may_have_applied is True
    assert "MAY have been applied" in str(err.value)
    with pytest.raises(dl.QuorumError) as err:
        client.get("k", via=pref[0])
    assert "nothing was changed" in str(err.value)


def test_a_request_outside_the_top_n_is_forwarded():
    cluster = dl.SimCluster(nodes=5, seed=5)
    client = cluster.client("alice")
    pref = cluster.preference_list("cart")
    outsider = next(n for n in cluster.nodes if n not in pref)
    res = client.put("cart", ["book"], via=outsider)
    assert res.coordinator in pref
    assert any("Forward(" in line for line in cluster.trace_lines())


# -- read repair --------------------------------------------------------------------------------

def test_read_repair_fixes_a_stale_replica():
    cluster = dl.SimCluster(nodes=5, seed=6, anti_entropy=False, hinted_handoff=False)
    client = cluster.client("alice")
    pref = cluster.preference_list("cart")
    first = client.put("cart", ["book"], via=pref[0])
    cluster.crash(pref[2])
    client.put("cart", ["book", "pen"], context=first.context, via=pref[0])
    cluster.restart(pref[2])
    cluster.run_for(6)
    assert [v.value for v in cluster.stores[pref[2]].get("cart")] == [["book"]]   # stale

    assert client.get("cart", via=pref[0]).values == [["book", "pen"]]
    cluster.run_for(1)                                   # repair follows the answer
    assert [v.value for v in cluster.stores[pref[2]].get("cart")] == [["book", "pen"]]
    assert cluster.node(pref[0]).stats.get("read_repairs", 0) >= 1


# -- anti-entropy ---------------------------------------------------------------------------------

def test_anti_entropy_repairs_a_replica_whose_store_was_wiped():
    cluster = dl.SimCluster(nodes=5, seed=7, read_repair=False, hinted_handoff=False,
                            anti_entropy_interval_s=0.5)
    client = cluster.client("alice")
    keys = [f"k{i}" for i in range(60)]
    for k in keys:
        client.put(k, {"v": k})
    victim = "C"
    mine = [k for k in keys if victim in cluster.preference_list(k)]
    assert len(mine) > 10 and all(k in cluster.stores[victim] for k in mine)
    cluster.crash(victim)
    cluster.wipe(victim)
    cluster.restart(victim)
    assert len(cluster.stores[victim]) == 0
    cluster.run_for(60)
    assert sorted(cluster.stores[victim].keys()) == sorted(mine)
    assert cluster.check() == []
    stats = cluster.node(victim).stats
    assert stats.get("ae_keys_repaired", 0) > 0 or any(
        cluster.node(n).stats.get("ae_keys_repaired", 0) for n in cluster.nodes)


# -- deletes --------------------------------------------------------------------------------------

def test_delete_is_a_tombstone_and_a_concurrent_put_survives_it():
    cluster = dl.SimCluster(nodes=5, seed=8)
    alice, bob = cluster.client("alice"), cluster.client("bob")
    ctx = alice.put("cart", ["book"]).context
    alice.delete("cart", context=ctx)
    res = alice.get("cart")
    assert res.values == [] and res.context is not None    # gone, but its clock is known
    assert any(v.deleted for vs in cluster.replicas("cart").values() for v in vs)

    # Bob adds to the cart he read before the delete: concurrent with it, so it survives.
    again = alice.put("cart", ["pen"], context=res.context)
    d = alice.submit_delete("cart", context=again.context)
    p = bob.submit_put("cart", ["pen", "lamp"], context=again.context)
    cluster.wait(d, p)
    assert alice.get("cart").values == [["pen", "lamp"]]
    assert cluster.check() == []


def test_tombstones_are_reaped_once_every_replica_has_them():
    cluster = dl.SimCluster(nodes=5, seed=9, tombstone_grace_s=5.0)
    client = cluster.client("alice")
    ctx = client.put("gone", 1).context
    client.delete("gone", context=ctx)
    cluster.run_for(10)
    assert all("gone" not in cluster.stores[n] for n in cluster.nodes)
    assert client.get("gone").values == []


# -- membership: join, leave, gossip ----------------------------------------------------------

def test_a_join_moves_keys_only_to_the_new_node_and_gossip_converges():
    cluster = dl.SimCluster(nodes=5, seed=10)
    client = cluster.client("alice")
    keys = [f"item{i}" for i in range(120)]
    for k in keys:
        client.put(k, k)
    before = cluster.ring()
    cluster.add_node("F")
    t0 = cluster.now
    while not all(("F" in cluster.node(n).ring.nodes) for n in cluster.nodes):
        cluster.run_for(0.5)
        assert cluster.now - t0 < 15, "gossip should spread a join within a few rounds"
    cluster.run_for(30)
    after = cluster.ring()
    for k in keys:
        gained = set(after.preference_list(k, 3)) - set(before.preference_list(k, 3))
        assert gained <= {"F"}
        assert holders_of(cluster, k) == sorted(after.preference_list(k, 3)), k
    assert 0 < len(cluster.stores["F"]) < len(keys)
    assert cluster.check() == []


def test_a_leave_hands_every_key_to_its_new_owners():
    cluster = dl.SimCluster(nodes=5, seed=11)
    client = cluster.client("alice")
    keys = [f"item{i}" for i in range(80)]
    for k in keys:
        client.put(k, k)
    cluster.remove_node("A")
    assert "A" not in cluster.nodes
    cluster.run_for(20)
    for k in keys:
        assert holders_of(cluster, k) == sorted(cluster.preference_list(k)), k
        assert client.get(k).values == [k]


def test_a_restarted_node_keeps_its_data_and_rejoins():
    cluster = dl.SimCluster(nodes=5, seed=12)
    client = cluster.client("alice")
    client.put("cart", ["book"])
    for n in cluster.nodes:
        cluster.crash(n)
    for n in cluster.nodes:
        cluster.restart(n)
    cluster.run_for(5)
    assert client.get("cart").values == [["book"]]
    assert cluster.node("A").membership.mine.generation == 2


# -- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("key,value,exc", [
    ("", 1, dl.InvalidKey), (42, 1, dl.InvalidKey), ("k", {1, 2}, dl.InvalidValue),
    ("k", b"bytes", dl.InvalidValue), ("k", float("nan"), dl.InvalidValue),
])
def test_bad_input_is_a_clear_value_error_and_writes_nothing(key, value, exc):
    cluster = dl.SimCluster(nodes=3, seed=13)
    client = cluster.client("alice")
    with pytest.raises(exc) as err:
        client.put(key, value)
    assert isinstance(err.value, ValueError) and len(str(err.value)) > 20
    assert all(len(s) == 0 for s in cluster.stores.values())


def test_a_context_from_another_cluster_is_refused():
    one = dl.SimCluster(nodes=3, seed=14)
    other = dl.SimCluster(nodes=3, seed=14, cluster_key="another-cluster")
    ctx = one.client("a").put("k", 1).context
    with pytest.raises(dl.InvalidContext, match="context"):
        other.client("b").put("k", 2, context=ctx)
    with pytest.raises(dl.InvalidContext):
        one.client("a").put("k", 2, context=ctx[:-3] + "abc")
    assert all(len(s) == 0 for s in other.stores.values())


def test_bad_cluster_parameters_say_what_to_do():
    with pytest.raises(dl.ConfigError, match="R and W cannot exceed N"):
        dl.SimCluster(nodes=5, n=3, r=4)
    with pytest.raises(dl.ConfigError, match="at least 3 nodes"):
        dl.SimCluster(nodes=2, n=3)
    cluster = dl.SimCluster(nodes=3, seed=1)
    with pytest.raises(dl.ConfigError, match="no node 'Q'"):
        cluster.crash("Q")


# -- concurrency -------------------------------------------------------------------------------------

def test_two_clients_racing_get_siblings_never_a_silent_loss():
    cluster = dl.SimCluster(nodes=5, seed=15)
    alice, bob = cluster.client("alice"), cluster.client("bob")
    base = alice.put("cart", ["book"])
    pref = cluster.preference_list("cart")
    # Same coordinator, same context: the paper's rule alone would stamp both alike.
    a = alice.submit_put("cart", ["book", "pen"], context=base.context, via=pref[0])
    b = bob.submit_put("cart", ["book", "mug"], context=base.context, via=pref[0])
    cluster.wait(a, b)
    res = alice.get("cart")
    assert sorted(map(tuple, res.values)) == [("book", "mug"), ("book", "pen")]
    assert cluster.check() == []


def test_a_student_versioning_part_is_used_by_every_node():
    calls = []

    class Spy(dl.Versioning):
        def reconcile(self, versions):
            calls.append(1)
            return super().reconcile(versions)

    cluster = dl.SimCluster(nodes=3, seed=16, parts=Parts(versioning=Spy()))
    cluster.client("a").put("k", 1)
    assert calls


def test_a_forwarded_request_whose_target_died_is_tried_again():
    cluster = dl.SimCluster(nodes=5, seed=17)
    client = cluster.client("alice")
    pref = cluster.preference_list("cart")
    outsider = next(n for n in cluster.nodes if n not in pref)
    cluster.crash(pref[0])                 # not yet suspected: the outsider forwards to it
    res = client.put("cart", ["book"], via=outsider)
    assert res.coordinator in pref[1:]
    assert any("trying again" in line for line in cluster.trace_lines())
