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
