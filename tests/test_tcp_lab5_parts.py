"""Lab 5's parts, as a notebook defines them, inside a ``TcpCluster``: the solution's
merge_views, gossip_round and TimeoutDetector are shipped to four node processes as source;
a crashed node is suspected by the others and no longer once it is back (the kernel and its
checks are those of ``test_tcp_parts``)."""

from __future__ import annotations

import test_tcp_parts as tp

def test_lab5_solution_parts_run_in_four_node_processes(tmp_path):
    r = tp.run_kernel(tmp_path, """
        import json, time
        from pathlib import Path
        from dynamo_lab.tcp.cluster import TcpCluster
        parts = grading.student_gossip_parts(merge_views, gossip_round, TimeoutDetector)
        out = {}

        def wait_for(test, seconds=30):
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not test():
                time.sleep(0.1)
            return test()

        with TcpCluster(nodes=4, seed=3, data_dir=DATA, parts=parts, **FAST) as cluster:
            out["pids"] = list(cluster.pids.values())
            out["parts"] = sorted(cluster.status("A")["parts"])
            out["shipped"] = Path(DATA, "parts", "shipped_main.py").read_text()
            alice = cluster.client("alice")
            alice.put("cart", ["book"])
            out["read"] = alice.get("cart").values
            cluster.crash("D")
            out["suspected"] = wait_for(lambda: all("D" in cluster.status(n)["suspected"]
                                                    for n in ("A", "B", "C")))
            cluster.restart("D")
            out["back"] = wait_for(lambda: all("D" not in cluster.status(n)["suspected"]
                                               for n in ("A", "B", "C")))
            out["generation"] = cluster.status("A")["members"]["D"]["generation"]
            out["errors"] = [cluster.status(n)["errors"] for n in cluster.nodes]
        print("RESULT " + json.dumps(out))
    """, labs=("lab5",))
    assert r["parts"] == ["failure_detector", "gossip_round", "merge_views"]
    for name in ("def merge_views", "def gossip_round", "class TimeoutDetector"):
        assert name in r["shipped"]
    assert r["read"] == [["book"]]
    assert r["suspected"] and r["back"]
    assert r["generation"] == 2, "D's restart is a new life, and A's view says so"
    assert r["errors"] == [0] * 4
