"""The simulator's network model, crash semantics and trace, with tiny endpoints."""

from __future__ import annotations

import re

import pytest

import dynamo_lab as dl
from dynamo_lab.messages import ClientGet
from dynamo_lab.faults import FaultConfig
from dynamo_lab.sim.simulator import Simulator
from dynamo_lab.sim.trace import SHIVIZ_REGEX


class Echo:
    def __init__(self, sim, name):
        self.sim, self.name, self.got = sim, name, []

    def deliver(self, src, msg, carried=None):
        self.got.append((self.sim.now, src, msg))
        self.sim.trace.add(self.sim.now, "deliver", self.name, src, msg, carried=carried)


def net(faults=None, seed=1):
    sim = Simulator(seed, faults or FaultConfig(latency="constant", latency_ms=10))
    eps = {n: Echo(sim, n) for n in "ABC"}
    for n, e in eps.items():
        sim.add_endpoint(n, e)
    return sim, eps


def test_constant_latency_and_virtual_time():
    sim, eps = net()
    sim.send("A", "B", ClientGet("1", "k"))
    sim.run_for(1)
    assert [(round(t, 6), s) for t, s, _ in eps["B"].got] == [(0.01, "A")]
    assert sim.now == 1


def test_one_way_partition_blocks_only_one_direction_and_heal_restores():
    sim, eps = net()
    sim.partition([{"A"}, {"B", "C"}], one_way=True)
    sim.send("A", "B", ClientGet("1", "k"))
    sim.send("B", "A", ClientGet("2", "k"))
    sim.run_for(1)
    assert eps["B"].got == [] and len(eps["A"].got) == 1
    assert "dropped: partition" in sim.trace.text()
    sim.heal()
    sim.send("A", "B", ClientGet("3", "k"))
    sim.run_for(1)
    assert len(eps["B"].got) == 1


def test_drop_and_duplicate_rates_follow_the_config():
    sim, eps = net(FaultConfig(latency="uniform", latency_ms=5, drop=0.2, duplicate=0.1))
    for i in range(2000):
        sim.send("A", "B", ClientGet(str(i), "k"))
    sim.run_for(5)
    got = len(eps["B"].got)
    # expected deliveries: 2000 * 0.8 * 1.1 = 1760
    assert 1650 < got < 1870, got


def test_reorder_delivers_out_of_send_order():
    sim, eps = net(FaultConfig(latency="constant", latency_ms=1, reorder=0.5, reorder_ms=50))
    for i in range(50):
        sim.send("A", "B", ClientGet(str(i), "k"))
    sim.run_for(1)
    order = [int(m.req_id) for _, _, m in eps["B"].got]
    assert sorted(order) == list(range(50)) and order != list(range(50))


def test_messages_cross_a_json_wire():
    sim, eps = net()
    sim.send("A", "B", dl.messages.ClientPut("1", "k", ("a", "tuple"), None))
    sim.run_for(1)
    assert eps["B"].got[0][2].value == ["a", "tuple"]   # what JSON would deliver


def test_bad_fault_config_is_a_clear_error():
    with pytest.raises(dl.ConfigError, match="probability"):
        FaultConfig(drop=1.5)
    with pytest.raises(dl.ConfigError, match="latency"):
        FaultConfig(latency="gaussian")
    with pytest.raises(dl.ConfigError, match="seed"):
        Simulator("7")
    # A delay that is not a finite, non-negative number would put an arrival in the past (or
    # nowhere) of the event queue: refused where it is set.
    for knob, bad in (("latency_ms", float("nan")), ("sigma", float("inf")),
                      ("reorder_ms", "40"), ("jitter_ms", True)):
        with pytest.raises(dl.ConfigError, match=f"{knob} is a finite number"):
            FaultConfig(**{knob: bad})
    with pytest.raises(dl.ConfigError, match="cannot be negative"):
        FaultConfig(reorder=0.5, reorder_ms=-5)


def test_timers_set_before_a_crash_never_fire_after_restart():
    cluster = dl.SimCluster(nodes=3, seed=1)
    cluster.run_for(3)
    cluster.crash("A")
    n_timer_lines = sum(1 for e in cluster.sim.trace.events if e.kind == "timer" and e.node == "A")
    cluster.run_for(5)
    assert sum(1 for e in cluster.sim.trace.events
               if e.kind == "timer" and e.node == "A") == n_timer_lines
    cluster.restart("A")
    cluster.run_for(3)
    assert sum(1 for e in cluster.sim.trace.events
               if e.kind == "timer" and e.node == "A") > n_timer_lines


def test_clock_skew_shifts_node_time_only():
    cluster = dl.SimCluster(nodes=3, seed=2, faults=FaultConfig(skew_s=2.0))
    skews = [cluster.hosts[n].skew_s for n in cluster.nodes]
    assert len(set(skews)) == 3 and all(abs(s) <= 2.0 for s in skews)
    cluster.client("a").put("k", 1)
    assert cluster.check() == []


def test_trace_lines_and_shiviz_export():
    cluster = dl.SimCluster(nodes=3, seed=3)
    cluster.client("alice").put("cart", ["book"], via="A")
    lines = cluster.trace_lines()
    assert any(re.match(r"T=\s*\d+\.\d{3} \S+ -> \S+ ReplicaPut\(", l) for l in lines)
    log = cluster.shiviz()
    pairs = re.findall(r"(.*)\n(\S*) (\{.*\})", log)
    assert len(pairs) == len(cluster.sim.trace.events)
    assert SHIVIZ_REGEX.startswith("(?<event>")
    # vector timestamps grow along each host's events and a receive follows its send
    import json
    last = {}
    for _, host, clock in pairs:
        c = json.loads(clock)
        assert c[host] == last.get(host, 0) + 1
        last[host] = c[host]


def _story(trace, read_between=False):
    """A to B, B to C, with chatter between, on ``trace``; read its events midway or not."""
    s1 = trace.add(0.1, "send", "A", "B")
    trace.add(0.2, "note", "A", detail="chatter")
    if read_between:
        assert dict(trace.events[0].clock) == {"A": 1}
    trace.add(0.3, "deliver", "B", "A", carried=s1)
    s2 = trace.add(0.4, "send", "B", "C")
    for i in range(5):
        trace.add(0.5 + i, "note", "C", detail=str(i))
    trace.add(1.0, "deliver", "C", "B", carried=s2)
    return [(e.seq, e.clock) for e in trace.events]


def test_trace_timestamps_are_those_of_each_event_when_it_happened():
    from dynamo_lab.sim.trace import Trace
    whole = _story(Trace())
    assert whole[-1][1] == (("A", 1), ("B", 2), ("C", 6))
    assert _story(Trace(), read_between=True) == whole
    # A trace that keeps only its last events drops the oldest, not what they did to clocks.
    kept = _story(Trace(limit=2))
    assert kept == whole[-len(kept):] and len(kept) < len(whole)


def test_trace_about_a_key_shows_its_story():
    cluster = dl.SimCluster(nodes=3, seed=4)
    cluster.client("alice").put("cart", ["book"])
    cluster.client("alice").put("other", 1)
    story = cluster.sim.trace.about("cart")
    assert story and all("other" not in l for l in story)
