"""Simulator throughput: a 5-node (3,2,2) cluster under a mixed workload, one 10,000-operation
campaign seed, and the ceiling: the same simulator delivering trivial echo messages."""

from __future__ import annotations

import time

from dynamo_lab.campaign import run_campaign
from dynamo_lab.messages import ClientGet
from dynamo_lab.faults import FaultConfig
from dynamo_lab.sim.simulator import Simulator


class _Echo:
    def __init__(self, sim, name, peer):
        self.sim, self.name, self.peer = sim, name, peer

    def deliver(self, src, msg, carried=None):
        self.sim.delivered += 1
        self.sim.trace.add(self.sim.now, "deliver", self.name, src, msg, carried=carried)
        self.sim.send(self.name, self.peer, msg)


def echo_rate(messages: int, wire_check: bool, trace: bool) -> float:
    sim = Simulator(1, FaultConfig(latency="lognormal", latency_ms=2), wire_check=wire_check,
                    trace=trace)
    for a, b in (("A", "B"), ("B", "A"), ("C", "D"), ("D", "C"), ("E", "A")):
        sim.add_endpoint(a, _Echo(sim, a, b)) if a not in sim.endpoints else None
    for i in range(10):
        sim.send("A", "B", ClientGet(str(i), "k"))
    t0 = time.perf_counter()
    while sim.delivered < messages:
        sim.step()
    return sim.delivered / (time.perf_counter() - t0)


def cluster_rate(ops: int, wire_check: bool, trace: bool) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    from dynamo_lab.campaign import _Campaign
    c = _Campaign(1, ops, 5, 4, 50, nemesis=False, trace=trace)
    c.cluster.sim.wire_check = wire_check
    res = c.run(settle_s=1.0)
    wall = time.perf_counter() - t0
    return res.delivered / wall, wall, res.delivered


def main() -> None:
    for wire, trace in ((True, True), (False, False)):
        label = f"wire_check={'on' if wire else 'off'}, trace={'on' if trace else 'off'}"
        cl, wall, n = cluster_rate(3000, wire, trace)
        echo = echo_rate(100_000, wire, trace)
        print(f"  [{label}]")
        print(f"    5-node (3,2,2) mixed workload: {n:,} messages in {wall:.2f} s = {cl:,.0f} msg/s")
        print(f"    echo ceiling:                  {echo:,.0f} msg/s  -> node logic runs at "
              f"{cl / echo:.0%} of the ceiling")
    t0 = time.perf_counter()
    res = run_campaign(1, 10_000, trace=False)
    print(f"  one 10,000-operation campaign seed (faults on, trace off): "
          f"{time.perf_counter() - t0:.1f} s wall, {res.ops:,} client ops, "
          f"{res.delivered:,} messages, {res.virtual_s:.0f} s virtual, ok={res.ok}")


if __name__ == "__main__":
    main()
