"""Lab 5's cluster scenarios: a join spreading through 20 nodes and the keys it moves, the
zero-hop view's size and gossip's bytes as n grows, and an old rumour that resurrects a left
node under a merge that takes the last word heard."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...cluster import SimCluster
from ...faults import FaultConfig
from ...codec import dumps
from ...messages import Gossip
from ...ring import moved_keys


@dataclass
class JoinSpread:
    """What :func:`join_spread` saw: after each gossip round (index 0: the join), which nodes
    had the newcomer in their ring; then the keys the join moved and where they are now."""
    newcomer: str
    nodes: list[str]
    knows: list[set[str]] = field(default_factory=list)
    moved: dict = field(default_factory=dict)          # key -> (old replicas, new replicas)
    keys: int = 0
    held_by_newcomer: list[str] = field(default_factory=list)
    dropped_by_old: int = 0                            # moved copies the old owners let go

    @property
    def counts(self) -> list[int]:
        return [len(k) for k in self.knows]


def join_spread(parts=None, nodes: int = 20, keys: int = 300, seed: int = 5) -> JoinSpread:
    """``nodes - 1`` nodes hold ``keys`` keys; node ``Z`` joins through the first three. After
    each gossip interval, who has ``Z`` in its ring; then the keys whose preference list (N=3)
    the join changed (:func:`~dynamo_lab.ring.moved_keys`) and, once the transfers are done,
    which of them ``Z`` holds."""
    cluster = SimCluster(nodes=nodes - 1, seed=seed, parts=parts, anti_entropy=False,
                         trace=False, wire_check=False)
    client = cluster.client("loader")
    names = [f"cart:{i}" for i in range(keys)]
    for i, key in enumerate(names):
        client.submit_put(key, [i])
    cluster.run_for(5)
    old_ring = cluster.ring()
    out = JoinSpread("Z", cluster.nodes + ["Z"], keys=keys)
    cluster.add_node("Z")
    interval = cluster.config.gossip_interval_s
    for _ in range(40):
        out.knows.append({n for n in cluster.up()
                          if cluster.node(n).ring is not None and "Z" in cluster.node(n).ring.nodes})
        if len(out.knows[-1]) == len(out.nodes):
            break
        cluster.run_for(interval)
    cluster.run_for(30)
    out.moved = moved_keys(old_ring, cluster.node("A").ring, names, n=cluster.config.n)
    out.held_by_newcomer = sorted(k for k in out.moved if "Z" in cluster.replicas(k))
    out.dropped_by_old = sum(1 for k, (old, new) in out.moved.items() for o in old
                             if o not in new and o not in cluster.replicas(k))
    return out


@dataclass
class ZeroHop:
    """One cluster size: each node's view (entries, encoded bytes) and gossip per round."""
    n: int
    view_entries: int
    view_bytes: int
    messages_per_round: float
    bytes_per_round: float


def zero_hop(parts=None, sizes=(10, 50, 200), seed: int = 7) -> list[ZeroHop]:
    """For each n: every node knows every member's tokens (a zero-hop DHT: any node routes a
    key to its replicas itself). The view's size at node A, and the gossip messages sent in one
    gossip interval (after one to settle) and their bytes (each weighing what A's view
    does)."""
    rows = []
    for n in sizes:
        cluster = SimCluster(nodes=n, seed=seed, parts=parts, trace=False, wire_check=False,
                             anti_entropy=False, faults=FaultConfig())
        cluster.run_for(cluster.config.gossip_interval_s)
        sim = cluster.sim
        counted = [0]
        send = sim.send

        def counting(src, dst, msg, counted=counted, send=send):
            if isinstance(msg, Gossip):
                counted[0] += 1
            send(src, dst, msg)

        sim.send = counting
        cluster.run_for(cluster.config.gossip_interval_s)
        sim.send = send
        view = cluster.node("A").membership.view
        size = len(dumps(Gossip(tuple(view.values()), reply=False)))
        # Every view holds every member once the cluster has settled: each message weighs
        # what A's does (encoding all of them would cost more than the run).
        rows.append(ZeroHop(n, len(view), size, counted[0], counted[0] * size))
    return rows


def resurrection(parts=None, seed: int = 3) -> list[tuple[str, object]]:
    """Five nodes; E leaves for good. Then the network replays an old message to each
    node: a view saved
    before the leave, when E was up. With the merge by (generation, heartbeat) the old word
    loses; with a merge that takes the last word heard, E is back in the rings (and the nodes
    send E's keys to a node that is gone). What the rings show, step by step."""
    cluster = SimCluster(nodes=5, seed=seed, parts=parts, anti_entropy=False)
    client = cluster.client("alice")
    cluster.run_for(3)
    old = Gossip(tuple(cluster.node("C").membership.view.values()), reply=False)
    log: list[tuple[str, object]] = [("before: B's ring", sorted(cluster.node("B").ring.nodes))]
    cluster.remove_node("E")
    cluster.run_for(10)
    log.append(("E left: B's ring", sorted(cluster.node("B").ring.nodes)))
    for src, dst in (("C", "B"), ("C", "D"), ("B", "A"), ("D", "C")):
        cluster.sim.send(src, dst, old)      # the old rumour, replayed by the network
    seen: set[str] = set()
    first = None
    back_s = 0.0
    step = 0.05
    for i in range(int(10 / step)):
        cluster.run_for(step)
        have = {n for n in cluster.up() if "E" in cluster.node(n).ring.nodes}
        if have and first is None:
            first = sorted(have)
        seen |= have
        back_s += step if have else 0.0
    log.append(("old views (E up) arrive: the first to take E back", first))
    log.append(("over the next 10 s, nodes that had E in their ring", sorted(seen)))
    log.append(("seconds during which some node had E in its ring", round(back_s, 2)))
    return log
