"""Real node processes on 127.0.0.1: the HTTP API, crashes by SIGKILL, restarts from SQLite,
partitions set through the admin endpoints.

Every cluster binds port 0 only and is closed by the test, which stops each process by its PID
(checked at the end of each test). Nothing sleeps to synchronise: the tests poll node status
with a deadline (:func:`eventually`).
"""

from __future__ import annotations

import importlib.util
import json
import time

import pytest

import dynamo_lab as dl
from dynamo_lab.storage import SqliteStore
from dynamo_lab.tcp.cluster import TcpCluster, pid_alive
from dynamo_lab.tcp.http_client import http_json, kv_path

FAST = dict(gossip_interval_s=0.2, suspect_after_s=1.0, request_timeout_s=0.3,
            handoff_interval_s=0.2, anti_entropy_interval_s=0.5, rebalance_interval_s=0.5)


def eventually(check, timeout_s: float = 30.0, what: str = "condition"):
    """Poll ``check()`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached after {timeout_s} s")
        time.sleep(0.05)


def started(cluster: TcpCluster) -> list[int]:
    return list(cluster.pids.values())


def assert_all_stopped(pids: list[int]) -> None:
    assert not [p for p in pids if pid_alive(p)], "every node process is stopped by its PID"


def keys_on(cluster, node: str, count: int) -> list[str]:
    """Keys whose preference list holds ``node`` (but does not start with it)."""
    out = []
    for i in range(10_000):
        k = f"key{i}"
        pref = cluster.preference_list(k)
        if node in pref and pref[0] != node:
            out.append(k)
            if len(out) == count:
                return out
    raise AssertionError("not enough keys")


# -- the HTTP API on a 5-node cluster -----------------------------------------------------------

def test_put_and_get_over_http_with_status_codes_that_mean_what_they_say(tmp_path):
    with TcpCluster(nodes=5, seed=1, data_dir=str(tmp_path), **FAST) as cluster:
        pids = started(cluster)
        assert len(pids) == 5 and len(set(pids)) == 5
        a, b = cluster.http_address("A"), cluster.http_address("B")

        code, body = http_json("PUT", a, kv_path("cart"), {"value": ["book"], "context": None})
        assert code == 200 and body["ok"] and len(body["replies"]) >= 2
        code, got = http_json("GET", b, kv_path("cart"))
        assert code == 200 and got["values"] == [["book"]] and got["coordinator"]
        assert set(got) >= {"values", "context", "coordinator", "replies"}

        code, body = http_json("PUT", b, kv_path("cart"),
                               {"value": ["book", "pen"], "context": got["context"]})
        assert code == 200
        assert http_json("GET", a, kv_path("cart"))[1]["values"] == [["book", "pen"]]

        # 404: no value, but a context to write with (here: never written, so null).
        code, body = http_json("GET", a, kv_path("nobody/home?"))
        assert code == 404 and body["values"] == [] and "context" in body

        # 400 with a message; nothing written.
        code, body = http_json("PUT", a, kv_path("cart"), {"value": 1, "context": "forged"})
        assert code == 400 and "context" in body["error"]
        code, body = http_json("PUT", a, kv_path("cart"), [1, 2])
        assert code == 400 and "JSON object" in body["error"]
        assert http_json("GET", a, kv_path("cart"))[1]["values"] == [["book", "pen"]]

        # The same through the Client API of the cluster.
        alice = cluster.client("alice")
        res = alice.get("cart")
        assert res.values == [["book", "pen"]]
        alice.delete("cart", context=res.context)
        gone = alice.get("cart")
        assert gone.values == [] and gone.context
        with pytest.raises(dl.InvalidValue):
            alice.put("cart", {1, 2})

        # 503: a coordinator cut off from everyone cannot reach W; it says the write may
        # have applied (it wrote its own copy).
        pref = cluster.preference_list("lonely")
        others = [n for n in cluster.nodes if n != pref[0]]
        cluster.partition({pref[0]}, set(others))
        code, body = http_json("PUT", cluster.http_address(pref[0]), kv_path("lonely"),
                               {"value": 1, "context": None})
        assert code == 503 and body["may_have_applied"] is True and body["got"] < body["needed"]
        with pytest.raises(dl.QuorumError) as err:
            alice.get("lonely", via=pref[0])
        assert "nothing was changed" in str(err.value)
        cluster.heal()
        assert all(cluster.status(n)["transport"]["faults"]["blocked"] == [] for n in cluster.nodes)
        # Nodes run on uvloop's event loop wherever it is installed (a dependency off Windows).
        loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        assert {cluster.status(n)["event_loop"] for n in cluster.nodes} == {loop}
    assert_all_stopped(pids)


# -- crashes ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sigkill_a_replica_during_writes_then_hints_drain_after_its_restart(tmp_path):
    with TcpCluster(nodes=5, seed=2, data_dir=str(tmp_path), **FAST) as cluster:
        pids = started(cluster)
        alice = cluster.client("alice")
        keys = keys_on(cluster, "C", 30)
        via = {k: cluster.preference_list(k)[0] for k in keys}
        victim_pid = cluster.pids["C"]

        # Writes in flight while C is killed, then more while C is down but not yet suspected.
        ops = [alice.submit_put(k, {"n": i}, via=via[k]) for i, k in enumerate(keys[:10])]
        cluster.crash("C")
        assert not pid_alive(victim_pid)
        ops += [alice.submit_put(k, {"n": i}, via=via[k]) for i, k in enumerate(keys[10:20], 10)]
        # Once C is suspected, the sloppy quorum writes to stand-ins, with hints.
        eventually(lambda: all("C" in cluster.status(n)["suspected"] for n in cluster.up()),
                   what="every node suspects C")
        ops += [alice.submit_put(k, {"n": i}, via=via[k]) for i, k in enumerate(keys[20:], 20)]
        cluster.wait(*ops)
        assert [op.error for op in ops if op.error] == []
        hints = cluster.hints()
        assert sum(hints.values()) >= 5, hints
        hinted = [k for k in keys[20:] if "C" not in ops[keys.index(k)].reply.replies]
        assert hinted, "writes after the suspicion went to stand-ins"

        cluster.restart("C")
        assert cluster.pids["C"] != victim_pid
        eventually(lambda: sum(cluster.hints().values()) == 0, what="every hint handed off")
        for k in hinted:
            assert [v.value for v in cluster.replicas(k)["C"]] == [{"n": keys.index(k)}]
        for i, k in enumerate(keys):
            assert alice.get(k).values == [{"n": i}]
        pids += started(cluster)
    assert_all_stopped(pids)


@pytest.mark.slow
def test_sigkill_every_node_then_restart_all_keeps_every_acknowledged_write(tmp_path):
    with TcpCluster(nodes=5, seed=3, data_dir=str(tmp_path), **FAST) as cluster:
        pids = started(cluster)
        alice = cluster.client("alice")
        ops = [alice.submit_put(f"k{i}", [i, "x" * i]) for i in range(40)]
        cluster.wait(*ops)
        acked = {op.key: op.value for op in ops if op.error is None}
        assert len(acked) == 40
        for name in cluster.nodes:
            cluster.crash(name)
        assert cluster.up() == [] and not any(pid_alive(p) for p in pids)
        # Straight from the SQLite files while every process is dead: W=2 copies of each.
        for key, value in acked.items():
            held = [vs for vs in cluster.replicas(key).values() if vs]
            assert len(held) >= 2 and all([v.value for v in vs] == [value] for vs in held)
        gens = {}
        for name in cluster.nodes:
            cluster.restart(name, converge=False)
            gens[name] = cluster.status(name)["generation"]
        cluster.wait_converged()
        assert gens == {n: 2 for n in cluster.nodes}, "each restart bumped the generation"
        for key, value in acked.items():
            assert alice.get(key).values == [value]
        new_pids = started(cluster)
    assert_all_stopped(pids + new_pids)


@pytest.mark.slow
def test_sigkill_every_node_after_many_concurrent_writers_keeps_every_acknowledged_write(tmp_path):
    """Group commit under load: 8 writers, 200 puts in flight together (32 at a time), so
    that each node commits many writes per fsync; every write acknowledged before the
    SIGKILLs is on disk W times (own data or a hint), and read back after the restart."""
    with TcpCluster(nodes=5, seed=5, data_dir=str(tmp_path), **FAST) as cluster:
        pids = started(cluster)
        writers = [cluster.client(f"writer{w}") for w in range(8)]
        ops = [c.submit_put(f"w{w}:{i}", {"w": w, "i": i, "pad": "x" * (i * 7 % 300)})
               for i in range(25) for w, c in enumerate(writers)]
        cluster.wait(*ops)
        acked = {op.key: op.value for op in ops if op.error is None}
        assert len(acked) >= 150, [op.error for op in ops if op.error][:3]
        commits = [cluster.status(n)["commits"] for n in cluster.nodes]
        assert sum(c["writes"] for c in commits) > sum(c["groups"] for c in commits), \
            f"writes were committed in groups: {commits}"
        assert all(c["failed"] == 0 for c in commits)
        for name in cluster.nodes:
            cluster.crash(name)
        assert not any(pid_alive(p) for p in pids)
        copies = {key: 0 for key in acked}         # straight from the SQLite files
        for name in cluster.nodes:
            with SqliteStore(tmp_path / f"{name}.sqlite3") as store:
                for key, value in acked.items():
                    held = [v.value for v in store.get(key)]
                    held += [v.value for h in store.hints() if h.key == key for v in h.versions]
                    copies[key] += value in held
        assert {k: c for k, c in copies.items() if c < 2} == {}, "W=2 durable copies of each"
        for name in cluster.nodes:
            cluster.restart(name, converge=False)
        cluster.wait_converged()
        reader = cluster.client("reader")
        for key, value in acked.items():
            assert reader.get(key).values == [value]
        new_pids = started(cluster)
    assert_all_stopped(pids + new_pids)


# -- partitions ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_partition_through_admin_endpoints_concurrent_writes_then_heal_gives_siblings(tmp_path):
    with TcpCluster(nodes=5, seed=4, data_dir=str(tmp_path), **FAST) as cluster:
        pids = started(cluster)
        alice, bob = cluster.client("alice"), cluster.client("bob")
        base = alice.put("cart", ["book"])
        left, right = ["A", "B"], ["C", "D", "E"]
        # Through the admin endpoint of every node (what cluster.partition does too).
        blocked = [[x, y] for x in left for y in right] + [[y, x] for x in left for y in right]
        for name in cluster.nodes:
            code, body = http_json("POST", cluster.http_address(name), "/admin/partition",
                                   {"blocked": blocked})
            assert code == 403, "even on loopback, an admin request needs the token"
            code, body = http_json("POST", cluster.http_address(name), "/admin/partition",
                                   {"blocked": blocked}, token=cluster.token)
            assert code == 200 and len(body["blocked"]) == 12
        eventually(lambda: all(set(cluster.status(n)["suspected"]) == set(right)
                               for n in left), what="each side suspects the other")
        w1 = alice.submit_put("cart", ["book", "lamp"], context=base.context, via="A")
        w2 = bob.submit_put("cart", ["book", "mug"], context=base.context, via="C")
        cluster.wait(w1, w2)
        assert w1.error is None and w2.error is None     # sloppy quorum on both sides
        assert alice.get("cart", via="A").values == [["book", "lamp"]]
        assert bob.get("cart", via="D").values == [["book", "mug"]]
        # A crash and restart inside one side: the new process inherits the partition.
        cluster.crash("E")
        cluster.restart("E")
        assert cluster.status("E")["transport"]["faults"]["blocked"] == sorted(blocked)
        for name in cluster.nodes:
            assert http_json("POST", cluster.http_address(name), "/admin/heal", {},
                             token=cluster.token)[0] == 200

        def siblings():
            res = alice.get("cart")
            return res if len(res.values) == 2 else None
        res = eventually(siblings, what="both writes back as siblings")
        assert sorted(res.values) == [["book", "lamp"], ["book", "mug"]]
        merged = alice.put("cart", ["book", "lamp", "mug"], context=res.context)
        assert merged.context
        eventually(lambda: cluster.check(["cart"]) == [] and all(
            [v.value for v in vs] == [["book", "lamp", "mug"]]
            for vs in cluster.replicas("cart").values()), what="replicas converge")
    assert_all_stopped(pids)


# -- the simulator's scenarios on both kinds of cluster ----------------------------------------

def make_cluster(kind: str, tmp_path, **kw):
    if kind == "sim":
        return dl.SimCluster(**kw)
    return dl.TcpCluster(data_dir=str(tmp_path), **FAST, **kw)


def settle(cluster, check) -> None:
    """Run until ``check()`` holds: virtual time in the simulator, real time over TCP."""
    if isinstance(cluster, dl.SimCluster):
        cluster.run_for(5)
        assert check()
    else:
        eventually(check, what="the cluster settles")


def test_paper_d1_to_d5_story_on_real_processes(tmp_path):
    """The same story as tests/test_scenarios.py, on three real node processes."""
    from test_scenarios import paper_d1_to_d5_story
    with make_cluster("tcp", tmp_path, nodes=["Sx", "Sy", "Sz"], n=3, r=2, w=2, seed=1) as cluster:
        paper_d1_to_d5_story(cluster, settle)


@pytest.mark.parametrize("kind", ["sim", "tcp"])
def test_two_clients_racing_get_siblings_never_a_silent_loss_on_both_runtimes(kind, tmp_path):
    cluster = make_cluster(kind, tmp_path, nodes=5, seed=9)
    try:
        alice, bob = cluster.client("alice"), cluster.client("bob")
        base = alice.put("cart", ["book"])
        pref = cluster.preference_list("cart")
        ops = [alice.submit_put("cart", ["book", "a"], context=base.context, via=pref[0]),
               bob.submit_put("cart", ["book", "b"], context=base.context, via=pref[1])]
        cluster.wait(*ops)
        assert all(op.error is None for op in ops)
        settle(cluster, lambda: len(alice.get("cart").values) == 2)
        assert sorted(alice.get("cart").values) == [["book", "a"], ["book", "b"]]
        settle(cluster, lambda: cluster.check() == [])
    finally:
        if kind == "tcp":
            cluster.close()


def test_tcp_cluster_refuses_bad_parameters_and_reports_a_node_that_will_not_start(tmp_path):
    with pytest.raises(dl.ConfigError, match="R and W cannot exceed N"):
        TcpCluster(nodes=3, n=2, r=3, data_dir=str(tmp_path))
    with pytest.raises(dl.ConfigError, match="at least 3 nodes"):
        TcpCluster(nodes=2, data_dir=str(tmp_path))
    with pytest.raises(dl.ConfigError, match="parts must be a dynamo_lab.Parts or a reference"):
        TcpCluster(nodes=3, parts=object(), data_dir=str(tmp_path))
    # A store file that is not a dynamo-lab store: the node exits, the error shows its log.
    tmp_path.joinpath("B.sqlite3").write_text("not a database")
    from dynamo_lab.tcp.cluster import ClusterError
    with pytest.raises(ClusterError, match="node B exited during startup") as err:
        TcpCluster(nodes=3, data_dir=str(tmp_path), **FAST)
    assert "not a dynamo-lab store" in str(err.value)
    assert not any(pid_alive(int(json.loads(f.read_text())["pid"]))
                   for f in tmp_path.joinpath("run").glob("*.ready.json"))


@pytest.mark.slow
def test_a_join_and_a_leave_move_keys_and_lose_none(tmp_path):
    with TcpCluster(nodes=4, seed=5, data_dir=str(tmp_path), **FAST) as cluster:
        pids = started(cluster)
        alice = cluster.client("alice")
        cluster.wait(*[alice.submit_put(f"k{i}", i) for i in range(30)])
        cluster.add_node("E")
        pids += [cluster.pids["E"]]
        assert all("E" in cluster.status(n)["members"] for n in cluster.up())
        owned = [f"k{i}" for i in range(30) if "E" in cluster.preference_list(f"k{i}")]
        assert owned
        eventually(lambda: all(cluster.replicas(k)["E"] for k in owned),
                   what="E receives the keys it now replicates")
        cluster.remove_node("A")
        assert cluster.nodes == ["B", "C", "D", "E"] and cluster.up() == cluster.nodes
        assert not pid_alive(pids[0])
        for i in range(30):
            assert alice.get(f"k{i}").values == [i]
        eventually(lambda: cluster.check() == [], what="replicas converge")
    assert_all_stopped(pids)
