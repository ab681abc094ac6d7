"""One runtime contract (dynamo_lab.runtime, dynamo_lab.faults) under both runtimes.

* the same partition cuts the same links in the simulator and in every TCP node;
* a ``FaultConfig`` means the same fates on both (one seeded draw order), and on TCP its losses
  happen in the transport and show in the trace;
* a real run's trace is the simulator's format: every node's events merged, each delivery
  carrying the vector timestamp of its send, drawn as a space-time diagram and exported to
  ShiViz with the same code as a simulated run;
* a node's options travel as one JSON file, and flags beside it override its fields.
"""

from __future__ import annotations

import argparse
import json
import random
import re

import pytest

import dynamo_lab as dl
from dynamo_lab.codec import encode
from dynamo_lab.faults import FaultConfig, LinkFaults, partition_links
from dynamo_lab.node import NodeConfig
from dynamo_lab.runtime import client_timeout_s
from dynamo_lab.sim.trace import merge_records
from dynamo_lab.tcp.cluster import TcpCluster, pid_alive
from dynamo_lab.tcp.process import NodeOptions

from test_tcp_cluster import FAST, eventually


def test_one_partition_rule_and_one_fault_model():
    assert partition_links([["A", "B"], ["C"]]) == {("A", "C"), ("B", "C"), ("C", "A"), ("C", "B")}
    assert partition_links([["A"], ["B"], ["C"]], one_way=True) == {("A", "B"), ("A", "C")}
    sim = dl.SimCluster(nodes=5, seed=1)
    sim.partition({"A", "B"}, {"C", "D", "E"}, one_way=True)
    assert sim.sim.net.blocked == partition_links([["A", "B"], ["C", "D", "E"]], one_way=True)
    # The same config and seed give the same fates, whoever draws them.
    config = FaultConfig(drop=0.2, duplicate=0.2, reorder=0.3)
    a, b = LinkFaults(config, random.Random("s")), LinkFaults(config, random.Random("s"))
    fates = [a.fate("A", "B") for _ in range(500)]
    assert fates == [b.fate("A", "B") for _ in range(500)]
    assert {len(f) for f in fates} == {0, 1, 2}
    assert FaultConfig.from_json(config.to_json()) == config
    with pytest.raises(dl.ConfigError, match="keys among"):
        FaultConfig.from_json({"dorp": 0.1})
    assert FaultConfig.none().fate(random.Random(1)) == (0.0,)
    assert client_timeout_s(NodeConfig(request_timeout_s=0.5)) == 3.0


def _tries(thunk) -> bool:
    try:
        thunk()
    except dl.QuorumError:
        return False
    return True


def test_a_real_run_is_traced_in_the_simulators_format(tmp_path):
    from dynamo_lab.viz import draw_spacetime
    with TcpCluster(nodes=4, seed=4, data_dir=str(tmp_path), trace=True,
                    faults=FaultConfig(latency="constant", latency_ms=0.0, drop=0.05),
                    **FAST) as cluster:
        pids = list(cluster.pids.values())
        alice = cluster.client("alice")
        for i in range(10):     # 5% of messages are lost: a put may need a second try
            eventually(lambda: _tries(lambda: alice.put(f"k{i}", i)), what=f"put k{i}")
        cluster.partition({"A", "B"}, {"C", "D"})
        eventually(lambda: _tries(lambda: alice.put("during", 1, via="A")),
                   what="a sloppy write during the partition")
        cluster.heal()
        cluster.crash("D")
        blocked_seen = cluster.status("A")["transport"]["faults"]
        trace = cluster.trace()
        shiviz = trace.shiviz()
        assert cluster.shiviz().startswith(shiviz[:200])   # the same run, a little later
        lines = cluster.trace_lines()
    assert not [p for p in pids if pid_alive(p)]
    assert blocked_seen["blocked"] == [] and blocked_seen["config"]["drop"] == 0.05
    kinds = {e.kind for e in trace.events}
    assert {"send", "deliver", "timer", "partition", "heal", "crash"} <= kinds
    drops = {e.detail for e in trace.events if e.kind == "drop"}
    assert {"partition", "lost"} <= drops
    # The client's requests are on its own lifeline, as in the simulator.
    assert any(e.kind == "send" and e.node == "client:alice" and type(e.msg).__name__ == "ClientPut"
               for e in trace.events)
    assert any(e.kind == "deliver" and e.node == "client:alice" for e in trace.events)
    assert any(re.match(r"T=\s*\d+\.\d{3} A -> [BCD] Gossip\(", line) for line in lines)
    # Each delivery carries its send's vector timestamp: it dominates it, entry by entry.
    sends = {}
    for e in trace.events:
        if e.kind == "send":
            sends.setdefault((e.node, e.peer, json.dumps(encode(e.msg))), []).append(e)
    matched = 0
    for e in trace.events:
        if e.kind == "deliver":
            queue = sends.get((e.peer, e.node, json.dumps(encode(e.msg))))
            if queue:
                sent = dict(queue.pop(0).clock)
                assert all(dict(e.clock).get(k, 0) >= v for k, v in sent.items())
                matched += 1
    assert matched > 50
    pairs = re.findall(r"(.*)\n(\S*) (\{.*\})", shiviz)
    assert len(pairs) == len(trace.events)
    fig = draw_spacetime(trace, key="k1")
    assert fig.axes[0].patches, "the diagram draws the messages about k1"


def test_merged_records_pair_each_delivery_with_its_send():
    msg = {"type": "GossipTick"}
    records = [{"t": 10.2, "kind": "deliver", "node": "B", "peer": "A", "msg": msg, "detail": ""},
               {"t": 10.0, "kind": "send", "node": "A", "peer": "B", "msg": msg, "detail": ""},
               {"t": 10.1, "kind": "note", "node": "B", "peer": "", "msg": None, "detail": "hi"}]
    trace = merge_records(records, t0=10.0)
    assert [e.kind for e in trace.events] == ["send", "note", "deliver"]
    assert dict(trace.events[2].clock) == {"A": 1, "B": 2}
    assert trace.events[0].time == 0.0


def test_node_options_travel_as_one_json_file_and_flags_override_it(tmp_path):
    opts = NodeOptions("A", str(tmp_path), members=["A", "B", "C"], config=NodeConfig(n=2),
                       faults=FaultConfig(drop=0.1), blocked=[["A", "B"]], secret="s",
                       parts="my_parts.py:PARTS", trace_file="t.jsonl")
    text = json.dumps(opts.to_json())
    assert '"s"' not in text and "secret" not in text
    back = NodeOptions.from_json(json.loads(text), secret="s", environ={})
    assert back == opts
    path = tmp_path / "A.json"
    path.write_text(text)
    from dynamo_lab.cli import build_parser
    args = build_parser().parse_args(["node", "--options", str(path), "--port", "7001",
                                      "--set", "gossip_interval_s=0.5", "--seeds",
                                      "B=127.0.0.1:7002", "--parts", "other.py:PARTS"])
    got = NodeOptions.from_args(args, {"DYNAMO_LAB_SECRET": "x", "DYNAMO_LAB_TOKEN": "t"})
    assert (got.port, got.config.n, got.config.gossip_interval_s) == (7001, 2, 0.5)
    assert got.seeds == ["B"] and got.peers == {"B": "127.0.0.1:7002"}
    assert got.parts == "other.py:PARTS" and got.trace_file == "t.jsonl"
    assert (got.secret, got.token, got.faults.drop, got.members) == ("x", "t", 0.1, ["A", "B", "C"])
    for bad, message in [({"node_id": "A", "data_dir": "d", "secret": "s"}, "unknown node options"),
                         ({"node_id": "A", "data_dir": "d", "port": "7001"}, "port must be int"),
                         ({"data_dir": "d"}, "need node_id"),
                         ({"node_id": "A", "data_dir": "d", "config": {"x": 1}}, "config:")]:
        with pytest.raises(dl.ConfigError, match=message):
            NodeOptions.from_json(bad)
    with pytest.raises(dl.ConfigError, match="DYNAMO_LAB_SECRET"):
        NodeOptions.from_args(argparse.Namespace(options=str(path)), {})
