"""Lab 5's membership-only simulation: how fast one piece of news spreads by gossip among n
nodes that all know each other (a complete graph), with the student's ``merge_views``.

The news (the *rumour*) is node 0's new life: it restarted (generation 2, heartbeat 0), and
every other node still holds its old state (generation 1, heartbeat 7). A node is informed
once its view holds the new state; it learns it only through ``merge_views`` of a view that
carries it (a merge that ranks heartbeats first never spreads it). The simulation is fast
enough for 10,000 nodes because a message that cannot change the count is not merged: a
gossip message holds the sender's view of node 0 (nothing else would change the count), and a
push from a node that does not know the rumour, or to one that knows it, is only counted as
sent (rumour mongering, where "the peer knew already" matters, merges every contact).

* :func:`spread`: synchronous rounds; in each one every node contacts one peer picked
  uniformly among the n - 1 others. *Push*: the informed nodes send the rumour. *Push-pull*:
  every contact is an exchange both ways. Pittel (1987): push informs everyone after
  log2 n + ln n + O(1) rounds; push-pull after log3 n + O(ln ln n) (Karp et al., FOCS 2000).
  Given the student's ``gossip_round``, push picks each peer with it instead, on the node's
  whole view (every member): the same law, at O(n) a call, for a few hundred nodes.
* :func:`residue`: rumour *mongering* (Demers et al., PODC 1987, "feedback, coin"): an
  informed node keeps pushing until it contacts a node that knew already, and then loses
  interest with probability 1/k. Some nodes never hear the rumour; for large n the fraction
  s solves s = exp(-(k + 1)(1 - s)).
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field
from typing import Callable, Sequence

RUMOUR = "0"
#: The rumour: node 0 restarted. Everyone holds its old state, which has the higher heartbeat;
#: its new life has the higher generation, so a merge that ranks heartbeats first never
#: spreads it.
OLD = (1, 7, "up", ("0",))
NEWS = (2, 0, "up", ("0",))


def pittel(n: int) -> float:
    """Pittel's estimate of push-gossip rounds, without its O(1): log2 n + ln n."""
    return math.log2(n) + math.log(n)


def demers_residue(k: int) -> float:
    """The root s in (0, 1) of s = exp(-(k + 1)(1 - s)) (rumour mongering's residue)."""
    s = 0.0
    for _ in range(500):
        s = math.exp(-(k + 1) * (1 - s))
    return s


def _peer(rng: random.Random, i: int, n: int) -> int:
    t = rng.randrange(n - 1)
    return t + (t >= i)


def _own(i: int) -> tuple:
    return (1, 0, "up", (str(i),))


class _Nodes:
    """n nodes' views of node 0, merged with ``merge_views``: node i's view is {i: its own
    state, "0": what it knows of node 0} (node 0's is {"0": its new state})."""

    def __init__(self, merge_views: Callable, n: int):
        self.merge = merge_views
        self.views: list = [None] * n
        self.views[0] = {RUMOUR: NEWS}
        self.n = n

    def view(self, i: int) -> dict:
        v = self.views[i]
        return v if v is not None else {str(i): _own(i), RUMOUR: OLD}

    def knows(self, i: int) -> bool:
        return self.view(i).get(RUMOUR) == NEWS

    def tell(self, src: int, dst: int) -> bool:
        """``dst`` merges what ``src`` says of node 0. True when that taught ``dst``."""
        before = self.knows(dst)
        remote = {RUMOUR: self.view(src)[RUMOUR]}
        self.views[dst] = self.merge(str(dst), self.view(dst), remote)
        return self.knows(dst) and not before


class _Rounds:
    """Peer choice by the student's ``gossip_round``: node i's whole view (every member, as
    in a cluster where everyone knows everyone) goes in, its first target comes out."""

    def __init__(self, gossip_round: Callable, nodes: _Nodes, rng: random.Random):
        self.round, self.nodes, self.rng = gossip_round, nodes, rng
        self.everyone = {str(j): _own(j) for j in range(nodes.n)}

    def peer(self, i: int) -> int:
        view = dict(self.everyone)
        view.update(self.nodes.view(i))
        _, targets = self.round(str(i), view, set(), [], (self.rng.random(), self.rng.random()))
        return int(targets[0])


def spread(merge_views: Callable, n: int, seed: int, mode: str = "push",
           max_rounds: int = 1000, gossip_round: Callable | None = None) -> list[int]:
    """How many of ``n`` nodes know the rumour after each round (index 0: before the first),
    until all do. ``mode``: ``"push"`` or ``"push-pull"``. With ``gossip_round`` (push only),
    each informed node's peer is the first target of ``gossip_round`` on its whole view (every
    member: O(n) a call, so for a few hundred nodes); otherwise a uniform draw among the
    n - 1 others."""
    if mode not in ("push", "push-pull") or n < 2:
        raise ValueError("mode is 'push' or 'push-pull', and n >= 2")
    if gossip_round is not None and mode != "push":
        raise ValueError("gossip_round picks the peers of push gossip only")
    rng = random.Random(f"lab5-spread/{mode}/{n}/{seed}")
    nodes = _Nodes(merge_views, n)
    pick = (_Rounds(gossip_round, nodes, rng).peer if gossip_round is not None
            else lambda i: _peer(rng, i, n))
    informed = [0]
    counts = [1]
    while len(informed) < n and len(counts) <= max_rounds:
        new = []
        if mode == "push":
            for i in informed:
                t = pick(i)
                if not nodes.knows(t) and nodes.tell(i, t):
                    new.append(t)
        else:
            knew = [nodes.knows(i) for i in range(n)]
            for i in range(n):
                t = _peer(rng, i, n)
                if knew[i] and not knew[t] and nodes.tell(i, t):
                    new.append(t)
                elif knew[t] and not knew[i] and nodes.tell(t, i):
                    new.append(i)
        informed += new
        counts.append(len(informed))
    return counts


@dataclass
class Rounds:
    """Rounds until all ``n`` knew, over seeds."""
    n: int
    mode: str
    rounds: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.rounds)

    @property
    def spread(self) -> tuple[int, int]:
        return min(self.rounds), max(self.rounds)

    def __str__(self) -> str:
        lo, hi = self.spread
        return f"{self.mean:.1f} rounds (min {lo}, max {hi}, {len(self.rounds)} seeds)"


def rounds_to_all(merge_views: Callable, sizes: Sequence[int], seeds: Callable[[int], int],
                  mode: str = "push", gossip_round: Callable | None = None) -> list[Rounds]:
    """For each n of ``sizes``, the rounds until all knew, for ``seeds(n)`` seeds (peers
    picked by ``gossip_round`` when it is given: see :func:`spread`)."""
    out = []
    for n in sizes:
        res = Rounds(n, mode if gossip_round is None else "push, your gossip_round")
        for seed in range(seeds(n)):
            res.rounds.append(len(spread(merge_views, n, seed, mode,
                                         gossip_round=gossip_round)) - 1)
        out.append(res)
    return out


def residue(merge_views: Callable, n: int, k: int, seed: int) -> float:
    """Rumour mongering, one contact at a time: the fraction of ``n`` nodes that never heard.

    An informed node that is still interested (infective) is picked at random and contacts a
    random peer; if the peer did not know, it is informed (and interested); if it knew, the
    sender loses interest with probability 1/k. Ends when nobody is interested."""
    rng = random.Random(f"lab5-residue/{n}/{k}/{seed}")
    nodes = _Nodes(merge_views, n)
    interested = [0]
    heard = 1
    while interested:
        j = rng.randrange(len(interested))
        i = interested[j]
        t = _peer(rng, i, n)
        if nodes.tell(i, t):
            interested.append(t)
            heard += 1
        elif rng.random() < 1 / k:
            interested[j] = interested[-1]
            interested.pop()
    return (n - heard) / n


def residues(merge_views: Callable, n: int, ks: Sequence[int] = (1, 2, 3),
             seeds: int = 10) -> dict[int, tuple[float, float]]:
    """k -> (mean residue, its standard error) over ``seeds`` runs of ``n`` nodes."""
    out = {}
    for k in ks:
        xs = [residue(merge_views, n, k, s) for s in range(seeds)]
        out[k] = (statistics.fmean(xs), statistics.stdev(xs) / math.sqrt(len(xs)))
    return out
