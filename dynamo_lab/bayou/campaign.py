"""Seeded fault campaigns against simulated Bayou servers, checked after every step.

For one seed:

1. **safety**: clients write (puts, deletes, cart adds, room bookings with alternatives) to
   random servers; servers hold anti-entropy sessions with random peers on timers (and the
   operator starts some on demand); the primary commits on a timer; some servers truncate
   their logs; a nemesis crashes and restarts servers (the primary too), partitions the
   network (one way sometimes), and turns message loss, duplication and reordering on and off;
   clocks are skewed. The :class:`~.checker.BayouChecker` looks at every server after every
   step;
2. **liveness**: heal, restart everyone, stop the message faults, let sessions and commits run
   until every server holds every write, committed, with one database (or time runs out);
3. **check**: that convergence, plus everything the checker found on the way.

Every parameter derives from the seed; a failing seed prints itself and its replay command::

    python -m dynamo_lab.bayou.campaign --seeds 1000          # make campaign-bayou
    python -m dynamo_lab.bayou.campaign --replay 17           # one seed, with its trace
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Optional

from ..faults import FaultConfig
from .checker import Violation
from .cluster import BayouCluster
from .server import Parts, ServerConfig
from .writes import Add, Book, Delete, Put

NAMES = ("P", "A", "B", "C", "D")
SLOTS = ("mon-10", "mon-11", "tue-10", "tue-11")


@dataclass
class CampaignResult:
    seed: int
    params: str
    writes: int
    accepted: int
    violations: list[Violation]
    virtual_s: float
    wall_s: float
    stats: dict
    faults: list[str] = field(default_factory=list)
    cluster: Optional[BayouCluster] = None

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        status = "ok" if self.ok else f"FAILED ({len(self.violations)} violations)"
        return (f"seed={self.seed} writes={self.accepted}/{self.writes} "
                f"sessions={self.stats['sessions']} rollbacks={self.stats['rolled_back']} "
                f"full_transfers={self.stats['full_transfers']} faults={len(self.faults)} "
                f"virtual={self.virtual_s:.1f}s wall={self.wall_s:.2f}s {status}")

    def report(self, trace_lines: int = 30) -> str:
        """What a failing seed prints: seed and parameters, the broken promises, the end of
        the trace, and the command that replays it."""
        out = [self.summary(), f"  params: {self.params}"]
        out += [f"  {v}" for v in self.violations[:5]]
        if self.violations and self.cluster is not None:
            out.append(f"  last {trace_lines} trace lines:")
            out += ["    " + ln for ln in self.cluster.trace_lines(last=trace_lines)]
        out.append(f"  replay: python -m dynamo_lab.bayou.campaign --replay {self.seed} "
                   f"--writes {self.writes}")
        return "\n".join(out)


class _Campaign:
    def __init__(self, seed: int, writes: int, nemesis: bool, trace_limit: Optional[int],
                 parts: Parts | None):
        self.seed, self.writes, self.nemesis_on = seed, writes, nemesis
        r = random.Random(f"{seed}/bayou-campaign")
        names = NAMES[:r.randint(3, 5)]
        self.faults = FaultConfig(latency="lognormal", latency_ms=r.choice([1.0, 5.0, 20.0]),
                                  sigma=0.5, skew_s=r.choice([0.0, 0.5, 3.0]) if nemesis else 0.0)
        tick_s = r.choice([0.01, 0.1, 1.0])
        configs = {n: ServerConfig(tick_s=tick_s,
                                   session_interval_s=r.choice([0.2, 0.5, 1.0]),
                                   commit_interval_s=r.choice([0.5, 2.0]),
                                   truncate_keep=r.choice([None, None, 0, 3]))
                   for n in names}
        self.params = (f"servers={','.join(names)} tick_s={tick_s} {self.faults.describe()} "
                       + " ".join(f"{n}:sessions/{c.session_interval_s}s,keep={c.truncate_keep}"
                                  for n, c in configs.items())
                       + f" commits/{configs[names[0]].commit_interval_s}s")
        self.cluster = BayouCluster(names, primary=names[0], seed=seed, faults=self.faults,
                                    configs=configs, parts=parts, trace_limit=trace_limit)
        self.sim = self.cluster.sim
        self.rng = self.sim.rng("workload")
        self.nemesis_rng = self.sim.rng("nemesis")
        self.started = 0
        self.requests: list[str] = []
        self.log: list[str] = []

    # -- workload -----------------------------------------------------------------------------

    def _op(self):
        r = self.rng
        kind = r.random()
        if kind < 0.35:
            return Put(f"k{r.randrange(4)}", r.randrange(100))
        if kind < 0.45:
            return Delete(f"k{r.randrange(4)}")
        if kind < 0.7:
            return Add(f"cart{r.randrange(2)}", f"item{r.randrange(6)}")
        slots = r.sample(SLOTS, r.randint(1, 3))
        return Book(f"room{r.randrange(2)}", slots[0], f"u{r.randrange(5)}", tuple(slots[1:]))

    def _client(self) -> None:
        if self.started >= self.writes:
            return
        self.started += 1
        cl = self.cluster
        self.requests.append(cl.submit_write(self.rng.choice(cl.names), self._op()))
        roll = self.rng.random()
        if roll < 0.1:                                  # the operator steps in now and then
            up = cl.up()
            if len(up) >= 2:
                a, b = self.rng.sample(up, 2)
                cl.start_session(a, b)
        elif roll < 0.13 and cl.primary in cl.up():
            cl.commit()
        elif roll < 0.16 and cl.up():
            cl.truncate(self.rng.choice(cl.up()), keep=self.rng.randrange(3))
        self.sim.schedule(self.rng.uniform(0.0, 0.4), self._client)

    # -- nemesis ------------------------------------------------------------------------------

    def _nemesis(self) -> None:
        if self.started >= self.writes:
            return
        cl, r, now = self.cluster, self.nemesis_rng, self.sim.now
        down = [n for n in cl.names if not cl.hosts[n].alive]
        choice = r.choice(["crash", "restart", "partition", "heal", "lossy", "clean"])
        if choice == "crash" and len(down) < len(cl.names) - 1:
            victim = r.choice(cl.up())
            cl.crash(victim)
            self.log.append(f"T={now:.3f} crash {victim}")
        elif choice == "restart" and down:
            victim = r.choice(down)
            cl.restart(victim)
            self.log.append(f"T={now:.3f} restart {victim}")
        elif choice == "partition":
            names = list(cl.names)
            r.shuffle(names)
            cut = r.randrange(1, len(names))
            one_way = r.random() < 0.25
            cl.heal()
            cl.partition(names[:cut], names[cut:], one_way=one_way)
            self.log.append(f"T={now:.3f} partition {sorted(names[:cut])}"
                            f"{' ->' if one_way else ' |'} {sorted(names[cut:])}")
        elif choice == "heal":
            cl.heal()
            self.log.append(f"T={now:.3f} heal")
        elif choice == "lossy":
            self.sim.faults = replace(self.sim.faults, drop=r.choice([0.05, 0.2]),
                                      duplicate=r.choice([0.0, 0.1]),
                                      reorder=r.choice([0.0, 0.2]))
            self.log.append(f"T={now:.3f} lossy {self.sim.faults.drop}")
        elif choice == "clean":
            self.sim.faults = replace(self.sim.faults, drop=0.0, duplicate=0.0, reorder=0.0)
            self.log.append(f"T={now:.3f} clean network")
        self.sim.schedule(r.uniform(0.5, 3.0), self._nemesis)

    # -- phases -------------------------------------------------------------------------------

    def run(self, settle_s: float) -> CampaignResult:
        t0 = time.perf_counter()
        cl = self.cluster
        self.sim.schedule(0.0, self._client)
        if self.nemesis_on:
            self.sim.schedule(self.nemesis_rng.uniform(0.2, 1.0), self._nemesis)
        # Phase 1: until every write is sent, plus a moment for the last ones to arrive.
        cl.run_until(self.sim.now + self.writes * 2.0 + 60.0,
                     stop=lambda: self.started >= self.writes)
        cl.run_for(1.0)
        # Phase 2: heal, restart, clean network; run until converged or out of time.
        cl.settle(0.0)
        deadline = self.sim.now + settle_s
        while cl.checker.ok and self.sim.now < deadline:
            cl.run_for(0.5)
            if not cl.checker.convergence_problems({n: cl.server(n) for n in cl.names}):
                break
        # Phase 3: check.
        if cl.checker.ok:
            cl.checker.check_converged({n: cl.server(n) for n in cl.names}, self.sim.now)
        stats: dict = {}
        for n in cl.names:
            for k, v in cl.server(n).stats.items():
                stats[k] = stats.get(k, 0) + v
        accepted = sum(1 for q in self.requests if cl.reply(q) is not None)
        return CampaignResult(self.seed, self.params, self.writes, accepted,
                              list(cl.checker.violations), self.sim.now,
                              time.perf_counter() - t0, stats, self.log, cl)


def run_campaign(seed: int, writes: int = 60, *, nemesis: bool = True, settle_s: float = 60.0,
                 trace_limit: Optional[int] = 2000, parts: Parts | None = None) -> CampaignResult:
    """Run one seed and return its result (``result.ok``, ``result.report()``). The trace
    keeps the last ``trace_limit`` events (None: all). ``parts`` swaps a technique in every
    server (a student's, or a deliberately broken one)."""
    return _Campaign(seed, writes, nemesis, trace_limit, parts).run(settle_s)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dynamo_lab.bayou.campaign",
                                description="Seeded fault campaigns against simulated Bayou servers.")
    p.add_argument("--seeds", type=int, default=20, help="how many seeds to run (default 20)")
    p.add_argument("--first", type=int, default=1, help="first seed (default 1)")
    p.add_argument("--writes", type=int, default=60, help="client writes per seed (default 60)")
    p.add_argument("--replay", type=int, metavar="SEED", help="run one seed and print its trace")
    p.add_argument("--no-faults", action="store_true", help="run the workload with no nemesis")
    p.add_argument("--quiet", action="store_true", help="print failing seeds and the total only")
    args = p.parse_args(argv)
    seeds = [args.replay] if args.replay is not None else range(args.first, args.first + args.seeds)
    failed, t0 = 0, time.perf_counter()
    for seed in seeds:
        res = run_campaign(seed, args.writes, nemesis=not args.no_faults,
                           trace_limit=None if args.replay is not None else 2000)
        if args.replay is not None:
            print(f"seed={seed} {res.params}")
            for line in res.faults:
                print("  nemesis", line)
            print("\n".join(res.cluster.trace_lines()))
        if not res.ok:
            failed += 1
            print(res.report())
        elif not args.quiet or args.replay is not None:
            print(res.summary())
        sys.stdout.flush()
    total = len(seeds)
    print(f"{total - failed} passed, {failed} failed ({time.perf_counter() - t0:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
