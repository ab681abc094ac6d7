"""Lab 3's parts, as a notebook defines them, inside a ``TcpCluster``: the solution's
choose_replicas, Quorum, read_repairs and hinted-handoff decisions are shipped to five node
processes as source, and a crash there gives stand-ins with hints that go home after the
restart (the kernel and its checks are those of ``test_tcp_parts``)."""

from __future__ import annotations

import test_tcp_parts as tp

def test_lab3_solution_parts_run_in_five_node_processes(tmp_path):
    r = tp.run_kernel(tmp_path, """
        import json, time
        from pathlib import Path
        from dynamo_lab.tcp.cluster import TcpCluster
        parts = grading.student_parts(choose_replicas, Quorum, read_repairs, handoff_tick, handoff_ack)
        out = {}
        with TcpCluster(nodes=5, seed=3, data_dir=DATA, parts=parts, **FAST) as cluster:
            out["pids"] = list(cluster.pids.values())
            out["parts"] = sorted(cluster.status("A")["parts"])
            out["shipped"] = Path(DATA, "parts", "shipped_main.py").read_text()
            alice = cluster.client("alice")
            pref = cluster.preference_list("cart")
            alice.put("cart", ["book"], via=pref[0])
            cluster.crash(pref[1])
            time.sleep(2.0)                                # everyone suspects it
            res = alice.put("cart", ["book", "pen"], context=alice.get("cart", via=pref[0]).context,
                            via=pref[0])
            out["replies"] = list(res.replies)
            out["hints"] = sum(cluster.status(n)["hints"].get(pref[1], 0) for n in cluster.nodes
                               if n != pref[1])
            cluster.restart(pref[1])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                held = [v.value for v in cluster.replicas("cart").get(pref[1], [])]
                if held == [["book", "pen"]]:
                    break
                time.sleep(0.2)
            out["handed_back"] = held
            out["errors"] = [cluster.status(n)["errors"] for n in cluster.nodes]
        print("RESULT " + json.dumps(out))
    """, labs=("lab3",))
    assert r["parts"] == ["choose_replicas", "get_quorum", "handoff_ack", "handoff_tick",
                          "put_quorum", "read_repair"]
    for name in ("def choose_replicas", "class Quorum", "def read_repairs", "def handoff_tick",
                 "def handoff_ack"):
        assert name in r["shipped"]
    assert len(r["replies"]) == 2 and r["hints"] == 1
    assert r["handed_back"] == [["book", "pen"]]
    assert r["errors"] == [0] * 5
