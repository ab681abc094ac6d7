"""Seeded fault campaigns: a shopping-cart workload under random faults, then heal, settle and
check every promise (TigerBeetle's VOPR, in miniature).

Phases, for one seed:

1. **safety**: several clients read-modify-write a few carts (and sometimes delete one), all
   concurrently, while a nemesis crashes and restarts nodes, partitions the network, and turns
   message loss, duplication and reordering on and off; clocks are skewed throughout;
2. **liveness**: heal, restart everyone, stop the message faults, let the cluster settle;
3. **check**: :func:`dynamo_lab.checker.check_history` over every key.

Every derived parameter is printed with the seed, and ``--replay SEED`` runs one seed again,
printing its trace around the first broken check::

    python -m dynamo_lab.campaign --seeds 50 --ops 400      # many seeds
    python -m dynamo_lab.campaign --replay 17 --ops 400     # one seed, with its trace
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Optional

from .checker import Violation
from .cluster import SimCluster
from .faults import FaultConfig


@dataclass
class CampaignResult:
    seed: int
    ops: int
    failed_ops: int
    violations: list[Violation]
    virtual_s: float
    wall_s: float
    delivered: int
    faults: list[str] = field(default_factory=list)
    cluster: Optional[SimCluster] = None

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        status = "ok" if self.ok else f"FAILED ({len(self.violations)} violations)"
        return (f"seed={self.seed} ops={self.ops} failed_ops={self.failed_ops} "
                f"faults={len(self.faults)} virtual={self.virtual_s:.1f}s "
                f"messages={self.delivered} wall={self.wall_s:.2f}s {status}")

    def report(self, trace_lines: int = 40) -> str:
        """What a failing seed prints: the seed, the broken checks, the trace that shows them,
        and the command that replays it."""
        out = [self.summary()]
        for v in self.violations[:5]:
            out.append(f"  {v}")
        if self.violations and self.cluster is not None:
            key = self.violations[0].key
            out.append(f"  trace of {key!r} (last {trace_lines} events that mention it):")
            out += ["    " + line for line in self.cluster.sim.trace.about(key, trace_lines)]
        out.append(f"  replay: python -m dynamo_lab.campaign --replay {self.seed} --ops {self.ops}")
        return "\n".join(out)


class _Shopper:
    """One client's loop: read the cart, merge siblings (union of items), add an item, write
    back with the context; sometimes empty the cart (a delete) or only look."""

    def __init__(self, campaign: "_Campaign", name: str):
        self.c = campaign
        self.client = campaign.cluster.client(name)
        self.name = name
        self.rng = campaign.cluster.sim.rng(f"shopper/{name}")
        self.items = 0

    def next(self) -> None:
        c = self.c
        if c.started >= c.ops:
            return
        c.started += 1
        key = f"cart{self.rng.randrange(c.keys)}"
        roll = self.rng.random()
        action = "rmw" if roll < 0.7 else ("delete" if roll < 0.8 else "look")
        op = self.client.submit_get(key)
        op.callbacks.append(lambda o: self._after_get(o, key, action))

    def _after_get(self, op, key, action) -> None:
        if op.error is not None or action == "look":
            self._pause()
            return
        res = op.reply
        if action == "delete":
            if not res.values:
                self._pause()
                return
            nxt = self.client.submit_delete(key, context=res.context)
        else:
            items = sorted({i for v in res.values if isinstance(v, list) for i in v})
            self.items += 1
            items.append(f"{self.name}-{self.items}")
            nxt = self.client.submit_put(key, items, context=res.context)
        nxt.callbacks.append(lambda o: self._pause())

    def _pause(self) -> None:
        self.c.cluster.sim.schedule(self.rng.uniform(0.0, 0.2), self.next)


class _Campaign:
    def __init__(self, seed: int, ops: int, nodes: int, clients: int, keys: int,
                 nemesis: bool, trace: bool, parts=None):
        self.seed, self.ops, self.keys, self.nemesis_on = seed, ops, keys, nemesis
        rng = __import__("random").Random(f"{seed}/campaign")
        self.faults = FaultConfig(latency="lognormal", latency_ms=rng.choice([1.0, 2.0, 5.0]),
                                  sigma=0.5, skew_s=rng.choice([0.0, 0.05, 0.5]) if nemesis else 0.0)
        self.cluster = SimCluster(nodes=nodes, seed=seed, faults=self.faults, trace=trace,
                                  parts=parts)
        self.sim = self.cluster.sim
        self.rng = self.sim.rng("nemesis")
        self.shoppers = [_Shopper(self, f"c{i}") for i in range(clients)]
        self.started = 0
        self.log: list[str] = []

    def _nemesis(self) -> None:
        if self.started >= self.ops:
            return
        cl, r = self.cluster, self.rng
        down = [n for n in cl.nodes if not cl.hosts[n].alive]
        choice = r.choice(["crash", "restart", "partition", "heal", "lossy", "clean"])
        if choice == "crash" and len(down) < 2:
            victim = r.choice(cl.up())
            cl.crash(victim)
            self.log.append(f"T={self.sim.now:.3f} crash {victim}")
        elif choice == "restart" and down:
            victim = r.choice(down)
            cl.restart(victim)
            self.log.append(f"T={self.sim.now:.3f} restart {victim}")
        elif choice == "partition":
            nodes = list(cl.nodes)
            r.shuffle(nodes)
            cut = r.randrange(1, len(nodes))
            one_way = r.random() < 0.25
            cl.heal()
            cl.partition(set(nodes[:cut]), set(nodes[cut:]), one_way=one_way)
            self.log.append(f"T={self.sim.now:.3f} partition {sorted(nodes[:cut])}"
                            f"{' ->' if one_way else ' |'} {sorted(nodes[cut:])}")
        elif choice == "heal":
            cl.heal()
            self.log.append(f"T={self.sim.now:.3f} heal")
        elif choice == "lossy":
            self.sim.faults = replace(self.sim.faults, drop=r.choice([0.01, 0.05, 0.1]),
                                      duplicate=r.choice([0.0, 0.05]),
                                      reorder=r.choice([0.0, 0.1]))
            self.log.append(f"T={self.sim.now:.3f} lossy {self.sim.faults.drop}")
        elif choice == "clean":
            self.sim.faults = replace(self.sim.faults, drop=0.0, duplicate=0.0, reorder=0.0)
            self.log.append(f"T={self.sim.now:.3f} clean network")
        self.sim.schedule(r.uniform(1.0, 5.0), self._nemesis)

    def run(self, settle_s: float) -> CampaignResult:
        t0 = time.perf_counter()
        for s in self.shoppers:
            self.sim.schedule(0.0, s.next)
        if self.nemesis_on:
            self.sim.schedule(self.rng.uniform(0.5, 2.0), self._nemesis)
        cl = self.cluster
        # Phase 1: run until the workload has issued every operation and they have all ended.
        deadline = self.sim.now + max(600.0, self.ops * 2.0)
        # (Newest first: an operation still open is near the end, so the check stops early.)
        self.sim.run_until(deadline, stop=lambda: self.started >= self.ops and all(
            r.end is not None for r in reversed(cl.history.records)))
        # Phase 2: heal, restart, clean network, settle.
        self.sim.faults = replace(self.sim.faults, drop=0.0, duplicate=0.0, reorder=0.0)
        cl.settle(settle_s)
        # Phase 3: check.
        violations = cl.check()
        ops = cl.history.records
        return CampaignResult(self.seed, len(ops), sum(1 for r in ops if r.ok is False),
                              violations, self.sim.now, time.perf_counter() - t0,
                              self.sim.delivered, self.log, cl)


def run_campaign(seed: int, ops: int = 400, *, nodes: int = 5, clients: int = 4, keys: int = 6,
                 nemesis: bool = True, settle_s: float = 120.0, trace: bool = True,
                 parts=None) -> CampaignResult:
    """Run one seed of the campaign and return its result (``result.ok``, ``result.report()``).
    ``parts`` swaps a technique in every node (a student's, or a deliberately broken one)."""
    return _Campaign(seed, ops, nodes, clients, keys, nemesis, trace, parts).run(settle_s)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dynamo_lab.campaign",
                                description="Seeded fault campaigns against a simulated Dynamo cluster.")
    p.add_argument("--seeds", type=int, default=20, help="how many seeds to run (default 20)")
    p.add_argument("--first", type=int, default=1, help="first seed (default 1)")
    p.add_argument("--ops", type=int, default=400, help="client operations per seed (default 400)")
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--keys", type=int, default=6)
    p.add_argument("--replay", type=int, metavar="SEED", help="run one seed and print its trace")
    p.add_argument("--no-faults", action="store_true", help="run the workload with no nemesis")
    args = p.parse_args(argv)
    seeds = [args.replay] if args.replay is not None else range(args.first, args.first + args.seeds)
    failed = 0
    for seed in seeds:
        res = run_campaign(seed, args.ops, nodes=args.nodes, clients=args.clients, keys=args.keys,
                           nemesis=not args.no_faults)
        if args.replay is not None:
            print(f"seed={seed} faults: {res.cluster.sim.faults.describe()}")
            for line in res.faults:
                print("  nemesis", line)
        if res.ok:
            print(res.summary())
        else:
            failed += 1
            print(res.report())
        sys.stdout.flush()
    total = len(seeds)
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
