"""``python -m bench scale`` counts what it claims: run on tiny sizes (no figures checked,
only the counts its closing note relies on)."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import bench_scale


def test_full_view_gossip_is_two_messages_per_node_per_round_each_carrying_the_whole_view(
        monkeypatch):
    monkeypatch.setattr(bench_scale, "VIRTUAL_S", 2.0)
    rows = [bench_scale.sim_run(n) for n in (5, 10)]
    for r in rows:
        assert r["delivered"] > 0 and r["failed"] == 0 and r["peak_mb"] > 0
        # push-pull with one live peer per tick: a push and its reply per node per round
        assert r["gossip_msgs"] == 2 * r["nodes"] * r["rounds"]
    small, big = (r["gossip_bytes"] / r["rounds"] / r["nodes"] ** 2 for r in rows)
    assert 0.8 < big / small < 1.25, "bytes per round grow as n^2"


def test_memory_per_key_runs_in_its_own_process():
    out = subprocess.run([sys.executable, bench_scale.__file__, "--keys-child", "500"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    mem, mem_s, disk, disk_s = json.loads(out.strip().splitlines()[-1])
    assert mem >= 0 and disk > 0 and mem_s >= 0 and disk_s >= 0


def test_the_tcp_part_leaves_bench_tcp_as_it_found_it(monkeypatch):
    """``python -m bench`` runs scale, then tcp, in one process: a regression (bench tcp ran
    with scale's 1,500 requests against 9 echo servers)."""
    from bench import bench_tcp
    before = bench_tcp.OPS, bench_tcp.NODES

    def rows(module):
        assert module.OPS == bench_scale.TCP_OPS
        module.NODES = 9
    monkeypatch.setattr(bench_scale, "_tcp_rows", rows)
    bench_scale.tcp_part()
    assert (bench_tcp.OPS, bench_tcp.NODES) == before
