"""Lab 4's parts, as a notebook defines them, inside a ``TcpCluster``: the solution's
MerkleTree, diff_level, differing_keys and repair_key are shipped to five node processes as
source, and a node whose disk was wiped gets its keys back through anti-entropy alone
(hinted handoff and read repair off; the kernel and its checks are those of
``test_tcp_parts``)."""

from __future__ import annotations

import test_tcp_parts as tp

def test_lab4_solution_parts_rebuild_a_wiped_node_in_five_node_processes(tmp_path):
    r = tp.run_kernel(tmp_path, """
        import json, time
        from pathlib import Path
        from dynamo_lab.tcp.cluster import TcpCluster
        parts = grading.student_ae_parts(MerkleTree, diff_level, differing_keys, repair_key)
        out = {}
        config = dict(FAST, anti_entropy_interval_s=0.2, hinted_handoff=False, read_repair=False)
        with TcpCluster(nodes=5, seed=3, data_dir=DATA, parts=parts, **config) as cluster:
            out["pids"] = list(cluster.pids.values())
            out["parts"] = sorted(cluster.status("A")["parts"])
            out["shipped"] = Path(DATA, "parts", "shipped_main.py").read_text()
            alice = cluster.client("alice")
            keys = [f"doc:{i}" for i in range(20)]
            for i, key in enumerate(keys):
                alice.put(key, [i])
            mine = [k for k in keys if "C" in cluster.preference_list(k)]
            cluster.crash("C")
            cluster.wipe("C")
            cluster.restart("C")
            out["pids"] += list(cluster.pids.values())       # C's new process too
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                back = sum(bool(cluster.replicas(k).get("C")) for k in mine)
                if back == len(mine):
                    break
                time.sleep(0.3)
            out["mine"], out["back"] = len(mine), back
            out["repaired"] = cluster.status("C")["stats"].get("ae_keys_repaired", 0)
            out["errors"] = [cluster.status(n)["errors"] for n in cluster.nodes]
        print("RESULT " + json.dumps(out))
    """, labs=("lab4",))
    assert r["parts"] == ["diff_level", "differing_keys", "merkle_tree", "repair_key"]
    for name in ("class MerkleTree", "def leaf_hash", "def diff_level", "def differing_keys",
                 "def repair_key"):
        assert name in r["shipped"]
    # Every key C replicates is back, each one written by C's anti-entropy (its repairs count
    # them; with handoff and read repair off nothing else can bring them back).
    assert r["mine"] > 0 and r["back"] == r["mine"] and r["repaired"] >= r["mine"]
    assert r["errors"] == [0] * 5
