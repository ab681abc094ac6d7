"""Lab 7's measurements: Bayou beside Dynamo on one workload and one fault, and how many
anti-entropy sessions random pairs need.

* :func:`bookings`: users book meeting rooms (Bayou's own example, with alternatives) on both
  sides of a partition that lasts ``partition_s``; then it heals. On Bayou: how often the
  result a user was shown (tentative) later changed, and rollbacks per write. On Dynamo, the
  same bookings (read the slot, write it if free): how many slots end with siblings, that is
  double bookings the application must sort out at read time.
* :func:`sessions_to_converge`: one server (or the first ``writers``) accepts a write; random
  pairs hold sessions (both ways) until every server holds every write, beside
  :func:`one_write_expectation`, (n - 1) H(n - 1).

Everything is seeded; each function returns plain figures for the notebook to print and plot.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence

from ...bayou import BayouCluster, Book, Parts, ServerConfig, Put
from ...faults import FaultConfig

ROOMS = ("red", "blue")
SLOTS = ("mon-10", "mon-11", "tue-10", "tue-11")
BAYOU_SIDES = (("P", "A"), ("B", "C"))


@dataclass(frozen=True)
class Bookings:
    """One partition length, over several seeds."""
    partition_s: float
    bookings: int                 # bookings accepted (Bayou) / attempted (Dynamo), all seeds
    changed: int                  # Bayou: bookings whose result, as first shown, later changed
    rollbacks_per_write: float    # Bayou: writes undone and redone, per accepted write
    sessions: int                 # Bayou: anti-entropy sessions until every server agreed
    double_booked: int            # Dynamo: slots whose get returns more than one sibling
    slots_written: int            # Dynamo: slots written at least once

    @property
    def changed_rate(self) -> float:
        return self.changed / self.bookings if self.bookings else 0.0

    @property
    def double_booked_rate(self) -> float:
        return self.double_booked / self.slots_written if self.slots_written else 0.0


def _requests(seed: int, partition_s: float, rate_per_s: float) -> list[tuple[float, int, str, str, str, tuple]]:
    """(time, side, who, room, slot, alternatives): the same requests for both systems."""
    r = random.Random(f"{seed}/bookings")
    out = []
    t = 0.0
    while True:
        t += r.expovariate(rate_per_s)
        if t >= max(partition_s, 1.0):
            return out
        slots = r.sample(SLOTS, 3)
        out.append((t, r.randrange(2), f"u{r.randrange(20)}", r.choice(ROOMS), slots[0],
                    tuple(slots[1:])))


def _bayou_run(seed: int, partition_s: float, rate_per_s: float, parts: Optional[Parts]):
    c = BayouCluster(("P", "A", "B", "C"), primary="P", seed=seed, parts=parts,
                     faults=FaultConfig(latency="lognormal", latency_ms=5.0, sigma=0.5),
                     config=ServerConfig(tick_s=0.01, session_interval_s=0.5,
                                         commit_interval_s=1.0))
    r = random.Random(f"{seed}/bayou-servers")
    if partition_s:
        c.partition(*BAYOU_SIDES)
    shown: dict[tuple[int, str], tuple] = {}
    for t, side, who, room, slot, alts in _requests(seed, partition_s, rate_per_s):
        c.run_until(t)
        server = r.choice(BAYOU_SIDES[side])
        w = c.write(server, Book(room, slot, who, alts))
        if w is not None:
            shown[w.wid] = c.server(server).outcomes[w.wid]
    c.run_until(max(partition_s, 1.0))
    c.heal()
    sessions_before = sum(c.server(n).stats["sessions"] for n in c.names)
    deadline = c.now + 120.0
    while c.now < deadline and not c.converged():
        c.run_for(0.5)
    primary = c.server("P")
    changed = sum(1 for wid, first in shown.items() if primary.outcomes.get(wid) != first)
    stats = [c.server(n).stats for n in c.names]
    rollbacks = sum(s["rolled_back"] for s in stats)
    sessions = sum(s["sessions"] for s in stats) - sessions_before
    return len(shown), changed, rollbacks, sessions


def _dynamo_run(seed: int, partition_s: float, rate_per_s: float) -> tuple[int, int, int]:
    from ...cluster import SimCluster
    c = SimCluster(nodes=4, seed=seed, faults=FaultConfig(latency="lognormal", latency_ms=5.0,
                                                          sigma=0.5))
    sides = (c.nodes[:2], c.nodes[2:])
    if partition_s:
        c.partition(*sides)
    r = random.Random(f"{seed}/dynamo-nodes")
    attempted, written = 0, set()
    for t, side, who, room, slot, _alts in _requests(seed, partition_s, rate_per_s):
        c.run_for(max(0.0, t - c.now))
        via = r.choice(sides[side])
        key = f"{room}@{slot}"
        client = c.client(who)
        attempted += 1
        try:
            got = client.get(key, via=via)
            if not got.values:                    # free, as far as this side can tell
                client.put(key, who, context=got.context, via=via)
                written.add(key)
        except Exception:                         # a side without a quorum: refused
            continue
    c.settle(30.0)
    reader = c.client("reader")
    double = sum(1 for key in written if len(reader.get(key).values) > 1)
    return attempted, double, len(written)


def bookings(partition_s: float, seeds: Sequence[int] = range(1, 6), rate_per_s: float = 4.0,
             parts: Optional[Parts] = None) -> Bookings:
    """Room bookings during a partition of ``partition_s`` seconds (0: none), on Bayou (with
    ``parts``, or the reference) and on Dynamo; see the module docstring."""
    totals = [0, 0, 0, 0]
    dyn = [0, 0, 0]
    for seed in seeds:
        for i, v in enumerate(_bayou_run(seed, partition_s, rate_per_s, parts)):
            totals[i] += v
        for i, v in enumerate(_dynamo_run(seed, partition_s, rate_per_s)):
            dyn[i] += v
    accepted, changed, rollbacks, sessions = totals
    return Bookings(partition_s, accepted, changed, rollbacks / accepted if accepted else 0.0,
                    sessions, dyn[1], dyn[2])


@dataclass(frozen=True)
class Convergence:
    n: int
    writers: int
    sessions: list[int]           # per seed: pairwise sessions until every server holds all

    @property
    def mean(self) -> float:
        return statistics.fmean(self.sessions)

    @property
    def spread(self) -> float:
        return statistics.stdev(self.sessions) if len(self.sessions) > 1 else 0.0


def sessions_to_converge(n: int, seeds: Sequence[int] = range(1, 21), *, writers: int = 1,
                         parts: Optional[Parts] = None) -> Convergence:
    """n servers, the first ``writers`` of them accept one write each; then random pairs hold
    an anti-entropy session both ways (the slides' "session A & B") until every server holds
    every write. Returns the number of sessions, per seed."""
    if not 1 <= writers <= n:
        raise ValueError(f"writers must be from 1 to n={n}; got {writers}")
    names = [f"S{i}" for i in range(n)]
    counts = []
    for seed in seeds:
        c = BayouCluster(names, seed=seed, parts=parts, check=False, trace=False,
                         faults=FaultConfig(latency="constant", latency_ms=1.0))
        for name in names[:writers]:
            c.write(name, Put(name, 1))
        r = random.Random(f"{seed}/pairs")
        sessions = 0
        while any(len(c.server(x).log) < writers for x in names):
            a, b = r.sample(names, 2)
            c.session(a, b)
            sessions += 1
        counts.append(sessions)
    return Convergence(n, writers, counts)


def one_write_expectation(n: int) -> float:
    """The expected number of random pairwise sessions (both ways) until one write held by one
    server reaches all n: with k servers holding it, a session spreads it when it pairs one of
    them with one of the n - k others, probability k(n-k) / C(n, 2); summed over k,
    (n - 1) H(n - 1) = (n - 1)(1 + 1/2 + ... + 1/(n - 1)), about n ln n (the simple epidemic
    of Demers et al., PODC 1987)."""
    return (n - 1) * sum(1.0 / k for k in range(1, n))
