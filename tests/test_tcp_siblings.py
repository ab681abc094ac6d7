"""On real processes: a read and one merge supersede every sibling, however many (it used to
take more than five rounds of read+merge, or never happen, from 10 siblings on)."""

from __future__ import annotations

from dynamo_lab.tcp.cluster import TcpCluster, pid_alive

FAST = dict(gossip_interval_s=0.2, suspect_after_s=1.0, request_timeout_s=0.3,
            handoff_interval_s=0.2, anti_entropy_interval_s=0.5, rebalance_interval_s=0.5)


def test_one_merge_supersedes_twelve_siblings_on_every_key(tmp_path):
    keys = [f"cart{i}" for i in range(6)]
    with TcpCluster(nodes=5, seed=4, data_dir=str(tmp_path), **FAST) as cluster:
        pids = list(cluster.pids.values())
        shop = cluster.client("shop")
        for key in keys:
            for i in range(12):
                shop.put(key, [f"item{i}"], via="A")
        for key in keys:
            got = shop.get(key)
            assert sorted(got.values) == sorted([f"item{i}"] for i in range(12)), key
            shop.put(key, sorted(x for v in got.values for x in v), context=got.context)
        for key in keys:
            after = shop.get(key)
            assert after.values == [sorted(f"item{i}" for i in range(12))], \
                f"{key}: {len(after.values)} siblings after one merge"
    assert not [p for p in pids if pid_alive(p)], "every node process is stopped by its PID"


def test_a_forward_held_by_a_stopped_node_is_not_applied_beside_its_retry(tmp_path):
    """SIGSTOP the first coordinator of a key; a put forwarded to it is retried at the next
    one; when the stopped node wakes up and reads the old forward, it must not write again."""
    import os
    import signal
    import time

    with TcpCluster(nodes=5, seed=6, data_dir=str(tmp_path), **FAST) as cluster:
        pids = list(cluster.pids.values())
        key = next(k for k in (f"cart{i}" for i in range(100)) if "A" not in cluster.preference_list(k))
        first = cluster.preference_list(key)[0]
        os.kill(cluster.pids[first], signal.SIGSTOP)
        try:
            res = cluster.client("alice").put(key, ["book"], via="A")
            assert res.coordinator != first
            time.sleep(1.0)                       # the forward is old now
        finally:
            os.kill(cluster.pids[first], signal.SIGCONT)
        cluster.settle(3.0)
        held = {v for vs in cluster.replicas(key).values() for v in vs}
        assert len(held) == 1, f"the put is held as {len(held)} versions: {held}"
        assert cluster.status(first)["stats"].get("forwards_expired", 0) >= 1
    assert not [p for p in pids if pid_alive(p)], "every node process is stopped by its PID"
