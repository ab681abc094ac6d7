"""Lab 3's measurements, on a simulated cluster using a student's parts (``parts``; None for
the reference), each against a published result.

* :func:`stale_reads`: Bailis et al.'s closed form (PBS, VLDB 2012, section 3): right after a
  write reached exactly W of N replicas, a read of R uniformly chosen replicas misses it with
  probability C(N-W, R) / C(N, R) (:func:`closed_form`); k versions stale, that to the k-th.
* :func:`t_visibility`: the probability that a read t ms after a write commits returns it, under
  the paper's fitted production latencies (the presets ``LNKD-SSD`` and ``LNKD-DISK`` of
  :class:`~dynamo_lab.faults.FaultConfig`), beside the latencies of writes and reads
  (:data:`PAPER_T_VISIBILITY` holds the paper's figures).
* :func:`availability`: the fraction of puts that succeed while nodes are down, with and
  without sloppy quorum (the Dynamo paper: 99.9995% of requests without a time-out).

Every figure comes with a 95% confidence interval (:func:`wilson`), and every trial is its own
seeded cluster, so a run is reproducible and trials are independent.

The paper's t-visibility model (WARS) has a coordinator that is not one of the N replicas: its
write and read cross the network to every replica. A Dynamo coordinator is a replica, whose own
write and read take no time. :class:`ProxyCoordinator` is the reference coordinator placed on
a node outside the key's top N that coordinates instead of forwarding: the paper's model.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ...cluster import SimCluster, node_names
from ...errors import QuorumError
from ...faults import FaultConfig
from ...node import Parts
from ...node.coordinator import Coordinator
from ...node.forwarding import Forwarding

#: The PBS paper's t-visibility figures (N=3, R=W=1): probability of a consistent read t ms
#: after the write commits, under each fitted latency model.
PAPER_T_VISIBILITY = {"LNKD-SSD": {0: 0.974, 5: 0.99999}, "LNKD-DISK": {0: 0.439, 10: 0.925}}

#: The configurations whose stale-read rate the lab measures against the closed form.
PBS_CONFIGS = ((3, 1, 1), (3, 1, 2), (3, 2, 1), (5, 2, 2))


def closed_form(n: int, r: int, w: int, k: int = 1) -> float:
    """The probability that a read of R of N replicas, chosen uniformly, misses a write that
    reached exactly W of them (and, for ``k`` > 1, each of the last k writes): (C(N-W, R) /
    C(N, R)) ** k. Raises ``ValueError`` unless 1 <= R, W <= N and k >= 1."""
    if not (1 <= r <= n and 1 <= w <= n and k >= 1):
        raise ValueError(f"need 1 <= R, W <= N and k >= 1; got N={n}, R={r}, W={w}, k={k}")
    return (math.comb(n - w, r) / math.comb(n, r)) ** k


def wilson(hits: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% for z=1.96): ``(low, high)``."""
    if trials <= 0:
        return 0.0, 1.0
    p = hits / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """A measured proportion: ``hits`` of ``trials``, with its 95% interval (``low``,
    ``high``)."""
    hits: int
    trials: int

    @property
    def value(self) -> float:
        return self.hits / self.trials if self.trials else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.hits, self.trials)

    def contains(self, p: float) -> bool:
        lo, hi = self.interval
        return lo <= p <= hi

    def __str__(self) -> str:
        lo, hi = self.interval
        return f"{100 * self.value:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]"


# -- the closed form ----------------------------------------------------------------------------

def stale_read_trial(n: int, r: int, w: int, seed: int, parts: Optional[Parts] = None,
                     k: int = 1) -> int:
    """One trial on its own cluster of exactly N nodes (so the preference list is every node):
    ``k`` writes in a row, each reaching exactly W replicas chosen at random (its coordinator
    and W-1 others; the links from the coordinator to the rest are cut while it is written),
    then one read through a node chosen at random, answered by the first R replies. Returns how
    many of the k writes the read missed (0: it saw the last one; k: it saw none)."""
    rng = random.Random(f"pbs/{n}/{r}/{w}/{k}/{seed}")
    cluster = SimCluster(nodes=n, n=n, r=r, w=w, seed=seed, parts=parts, read_repair=False,
                         anti_entropy=False, hinted_handoff=False, trace=False,
                         wire_check=False)
    nodes, key = cluster.nodes, "x"
    client = cluster.client("c")
    context = None
    for version in range(1, k + 1):
        reached = rng.sample(nodes, w)
        coordinator = rng.choice(reached)
        missed = [x for x in nodes if x not in reached]
        if missed:
            cluster.partition([coordinator], missed, one_way=True)
        context = client.put(key, version, context=context, via=coordinator).context
        cluster.heal()
    read = client.get(key, via=rng.choice(nodes))
    seen = max([v for v in read.values if isinstance(v, int)], default=0)
    return k - seen


def stale_reads(n: int, r: int, w: int, trials: int, seed: int = 0,
                parts: Optional[Parts] = None, k: int = 1) -> Rate:
    """How often a read misses the last ``k`` writes (:func:`stale_read_trial`), over
    ``trials`` seeded trials; compare with :func:`closed_form`."""
    hits = sum(stale_read_trial(n, r, w, seed * 1_000_003 + i, parts, k) >= k
               for i in range(trials))
    return Rate(hits, trials)


# -- t-visibility ---------------------------------------------------------------------------------

class _NoForwarding(Forwarding):
    def forward(self, *args, **kwargs) -> bool:
        return False                     # coordinate here, whatever the key's top N


class ProxyCoordinator(Coordinator):
    """The reference coordinator, except that a node outside the key's top N coordinates the
    request itself instead of forwarding it: it writes to and reads from the N replicas over
    the network (the PBS paper's model of a coordinator). Used as ``Parts(coordinator=...)``."""

    def __init__(self, node):
        super().__init__(node)
        self.forwarding = _NoForwarding(node, self.accept, self._fail_forward, self._new_id)


@functools.lru_cache(maxsize=None)
def _proxy_setup(n: int) -> tuple[list[str], str]:
    """N replicas and a proxy P, and a key whose top N leaves P out."""
    nodes = node_names(n) + ["P"]
    cluster = SimCluster(nodes=nodes, n=n, seed=0, trace=False)
    key = next(k for k in (f"x{i}" for i in range(1000)) if "P" not in cluster.preference_list(k))
    return nodes, key


@dataclass
class TVisibility:
    """What :func:`t_visibility` measured: per t (ms), the consistent reads; and the latency (ms)
    of every write and read."""
    preset: str
    n: int
    r: int
    w: int
    consistent: dict[float, Rate]
    write_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)

    def percentile(self, which: str, q: float) -> float:
        """The ``q``-quantile (0.999 for p99.9) of the write or read latencies, in ms."""
        xs = sorted(self.write_ms if which == "write" else self.read_ms)
        return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))] if xs else float("nan")


def t_visibility_trial(preset: str, ts_ms: Sequence[float], seed: int,
                       parts: Optional[Parts] = None, n: int = 3, r: int = 1, w: int = 1,
                       faults: Optional[FaultConfig] = None) -> tuple[list[bool], float, list[float]]:
    """One write through the proxy P, then one read through P at each ``t`` ms after the
    write committed (its W-th acknowledgement, which is when P answers: client links are
    instant). Returns (consistent per t, the write's latency, each read's latency), in ms."""
    nodes, key = _proxy_setup(n)
    parts = dataclasses.replace(parts or Parts(), coordinator=ProxyCoordinator)
    cluster = SimCluster(nodes=nodes, n=n, r=r, w=w, seed=seed, parts=parts,
                         faults=faults or FaultConfig.preset(preset), read_repair=False,
                         anti_entropy=False, hinted_handoff=False, trace=False, wire_check=False)
    client = cluster.client("c")
    put = client.submit_put(key, 1, via="P")
    cluster.wait(put)
    put.result()
    committed = put.finished
    reads = []
    for t in sorted(ts_ms):
        cluster.run_for(max(0.0, committed + t / 1000.0 - cluster.now))
        reads.append(client.submit_get(key, via="P"))
    cluster.wait(*reads)
    order = sorted(range(len(ts_ms)), key=lambda i: ts_ms[i])
    consistent = [False] * len(ts_ms)
    for i, op in zip(order, reads):
        consistent[i] = 1 in op.result().values
    return (consistent, 1000.0 * (put.finished - put.started),
            [1000.0 * (op.finished - op.started) for op in reads])


def t_visibility(preset: str, ts_ms: Sequence[float] = (0, 1, 2, 5, 10), trials: int = 1000,
                 seed: int = 0, parts: Optional[Parts] = None, n: int = 3, r: int = 1,
                 w: int = 1) -> TVisibility:
    """The probability of a consistent read ``t`` ms after a write commits, for each t, over
    ``trials`` seeded trials (:func:`t_visibility_trial`), with the write and read latencies."""
    hits = {t: 0 for t in ts_ms}
    out = TVisibility(preset, n, r, w, {})
    faults = FaultConfig.preset(preset)
    for i in range(trials):
        ok, write_ms, read_ms = t_visibility_trial(preset, list(ts_ms), seed * 1_000_003 + i,
                                                   parts, n, r, w, faults)
        for t, good in zip(ts_ms, ok):
            hits[t] += good
        out.write_ms.append(write_ms)
        out.read_ms += read_ms
    out.consistent = {t: Rate(hits[t], trials) for t in ts_ms}
    return out


# -- availability ---------------------------------------------------------------------------------

def availability(puts: int = 300, seed: int = 0, parts: Optional[Parts] = None,
                 sloppy: bool = True, nodes: int = 6, down: Sequence[str] = ("C", "D"),
                 n: int = 3, r: int = 2, w: int = 2) -> Rate:
    """The fraction of ``puts`` puts (each a new key, through a live node chosen at random)
    that succeed while the nodes ``down`` are crashed, from the moment they crash (the others
    learn it from time-outs and gossip), with or without sloppy quorum."""
    cluster = SimCluster(nodes=nodes, n=n, r=r, w=w, seed=seed, parts=parts,
                         sloppy_quorum=sloppy, anti_entropy=False, trace=False, wire_check=False)
    cluster.run_for(5)
    for name in down:
        cluster.crash(name)
    client = cluster.client("shopper")
    ok = 0
    for i in range(puts):
        try:
            client.put(f"cart:{seed}:{i}", ["book"])
            ok += 1
        except QuorumError:
            pass
    return Rate(ok, puts)
