"""Simulator throughput: a 5-node (3,2,2) cluster under a mixed workload, one 10,000-operation
campaign seed, and the ceiling: the same simulator delivering trivial echo messages."""

from __future__ import annotations

import gc
import time

from dynamo_lab.campaign import _Campaign, run_campaign
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


def _clean_heap() -> None:
    """Collect what earlier rows left (a cluster is cyclic garbage once dropped), so that no
    row pays for walking another's objects and the rows can be run in any order."""
    gc.collect()


def echo_rate(messages: int, wire_check: bool, trace: bool) -> float:
    _clean_heap()
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
    _clean_heap()
    t0 = time.perf_counter()
    c = _Campaign(1, ops, 5, 4, 50, nemesis=False, trace=trace)
    c.cluster.sim.wire_check = wire_check      # the nodes' timers follow it too
    res = c.run(settle_s=1.0)
    wall = time.perf_counter() - t0
    return res.delivered / wall, wall, res.delivered


# Issue 12's targets for these rows.
TARGET_OFF_MSG_S, TARGET_OFF_SHARE = 55_000, 0.15
TARGET_ON_MSG_S = 15_000
TARGET_CAMPAIGN_S = 4.0


def main() -> None:
    rates = {}
    for wire, trace in ((True, True), (False, False)):
        label = f"wire_check={'on' if wire else 'off'}, trace={'on' if trace else 'off'}"
        cl, wall, n = cluster_rate(3000, wire, trace)
        echo = echo_rate(100_000, wire, trace)
        rates[wire] = cl, echo
        print(f"  [{label}]")
        print(f"    5-node (3,2,2) mixed workload: {n:,} messages in {wall:.2f} s = {cl:,.0f} msg/s")
        print(f"    echo ceiling:                  {echo:,.0f} msg/s  -> node logic runs at "
              f"{cl / echo:.0%} of the ceiling")
    _clean_heap()
    t0 = time.perf_counter()
    res = run_campaign(1, 10_000, trace=False)
    campaign_s = time.perf_counter() - t0
    print(f"  one 10,000-operation campaign seed (faults on, trace off): "
          f"{campaign_s:.1f} s wall, {res.ops:,} client ops, "
          f"{res.delivered:,} messages, {res.virtual_s:.0f} s virtual, ok={res.ok}")
    echo_campaign = echo_rate(100_000, True, False)     # a campaign checks the wire, traces nothing
    (off, echo_off), (on, echo_on) = rates[False], rates[True]
    camp_rate = res.delivered / campaign_s
    print("  issue 12's rows (measured | target):")
    print(f"    simulator, wire check and trace off: {off:,.0f} msg/s, {off / echo_off:.1%} of the "
          f"echo ceiling {echo_off:,.0f} | >= {TARGET_OFF_MSG_S:,} msg/s, >= {TARGET_OFF_SHARE:.0%}")
    print(f"    same, wire check and trace on:       {on:,.0f} msg/s, {on / echo_on:.1%} of the "
          f"echo ceiling {echo_on:,.0f} | >= {TARGET_ON_MSG_S:,} msg/s")
    print(f"    one 10,000-operation campaign seed:  {campaign_s:.1f} s ({camp_rate:,.0f} msg/s, "
          f"{camp_rate / echo_campaign:.1%} of the echo ceiling {echo_campaign:,.0f} with the wire "
          f"check on) | <= {TARGET_CAMPAIGN_S:.0f} s")


if __name__ == "__main__":
    main()
