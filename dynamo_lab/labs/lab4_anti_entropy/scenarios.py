"""Lab 4's scenarios and measurements (each cluster story takes ``parts``, a
:class:`~dynamo_lab.Parts`, None for the reference):

* :func:`wipe_story`: a node's disk is lost for good; with hinted handoff and read repair off,
  only anti-entropy can give it back its keys: keys missing over virtual time, and the
  messages and bytes that cost, beside copying the node's whole ranges;
* :func:`fault_workload`: the cluster check's seeded workload (writes, deletes, crashes, a
  partition, lost messages, a wiped disk), then healing;
* :func:`stale_replica_story`: a replica misses a write (same keys, other values); does
  anti-entropy repair it? (Not with a tree that hashes keys only.)
* :func:`cost_curve`, :func:`depth_tradeoff`: hashes exchanged for d differing leaves, and
  depth against cost for 10^5 keys; :func:`spread_rounds`: rounds of pairwise exchange until
  n replicas agree;
* :func:`diff_rounds`: the exchange between two trees, round by round (what the widget steps
  through);
* :class:`RankShapedTree`: a tree whose shape depends on the keys present (broken on purpose).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ...cluster import SimCluster
from ...grading.failures import STATE
from ...hashing import RING_SIZE, key_hash
from ...codec import dumps
from ...messages import MerkleLeaves, MerkleLevel, SyncVersions

#: The anti-entropy messages (what the exchange costs).
AE_MESSAGES = (MerkleLevel, MerkleLeaves, SyncVersions)
#: The wipe story's cluster: 5 nodes, 4 tokens each, N=3, trees of depth 4.
WIPE_NODES, WIPE_VNODES, WIPE_DEPTH, WIPED = 5, 4, 4, "C"


def _labels(versions) -> list[str]:
    from ...grading.labels import version_label
    return sorted(version_label(v) for v in versions)


def ae_cost(cluster: SimCluster, since: int = 0) -> tuple[int, int]:
    """(messages, bytes) of anti-entropy sent from trace event ``since`` on."""
    count = size = 0
    for e in cluster.sim.trace.events[since:]:
        if e.kind == "send" and isinstance(e.msg, AE_MESSAGES):
            count += 1
            size += len(dumps(e.msg))
    return count, size


def missing_keys(cluster: SimCluster, node: str, keys) -> int:
    """How many of ``keys`` that ``node`` replicates it does not hold as the other replicas do
    (their reconciled siblings)."""
    from ...versions import reconcile
    out = 0
    for key in keys:
        pref = cluster.preference_list(key)
        if node not in pref:
            continue
        held = cluster.replicas(key)
        others = reconcile(v for n, vs in held.items() if n != node for v in vs)
        if _labels(held.get(node, [])) != _labels(others):
            out += 1
    return out


@dataclass
class WipeStory:
    """What :func:`wipe_story` saw: ``missing`` is (virtual seconds since the restart, keys the
    wiped node lacks); ``held``: what it holds at the end; the cost of anti-entropy from the
    restart to convergence, and of copying every key of its ranges instead."""
    cluster: SimCluster
    missing: list[tuple[float, int]]
    held: int
    replicated: int
    messages: int
    bytes: int
    copy_bytes: int
    interval_s: float
    ranges: int
    converged_s: Optional[float] = None

    @property
    def rounds(self) -> Optional[float]:
        """Anti-entropy intervals from the restart until the wiped node held everything."""
        return None if self.converged_s is None else self.converged_s / self.interval_s


def wipe_story(parts=None, seed: int = 1, *, keys: int = 150, horizon_s: float = 60.0,
               marks: Optional[list] = None) -> WipeStory:
    """Write ``keys`` keys on 5 nodes (N=3), then C crashes, loses its disk and restarts.
    Hinted handoff and read repair are off: anti-entropy alone rebuilds C. Every virtual
    second until C holds all it replicates (or ``horizon_s``), count the keys it misses."""
    cluster = SimCluster(nodes=WIPE_NODES, vnodes=WIPE_VNODES, seed=seed, parts=parts,
                         read_repair=False, hinted_handoff=False, merkle_depth=WIPE_DEPTH)
    names = [f"doc:{i}" for i in range(keys)]
    client = cluster.client("alice")
    for i, key in enumerate(names):
        STATE.working_on = f"the wipe story: put {key}"
        client.put(key, [f"v{i}"])
    cluster.run_for(3)
    if marks is not None:
        marks.append((len(cluster.sim.trace.events), "the writes"))
    replicated = sum(WIPED in cluster.preference_list(k) for k in names)
    copy_items = tuple((k, tuple(cluster.replicas(k)[WIPED])) for k in names
                       if WIPED in cluster.preference_list(k))
    copy_bytes = len(dumps(SyncVersions("copy", copy_items, ())))
    cluster.crash(WIPED)
    cluster.wipe(WIPED)
    cluster.restart(WIPED)
    since, t0 = len(cluster.sim.trace.events), cluster.sim.now
    missing = [(0.0, missing_keys(cluster, WIPED, names))]
    converged = None
    while cluster.sim.now - t0 < horizon_s:
        STATE.working_on = f"the wipe story, {cluster.sim.now - t0:.0f} s after the restart"
        cluster.run_for(1.0)
        left = missing_keys(cluster, WIPED, names)
        missing.append((round(cluster.sim.now - t0, 3), left))
        if marks is not None:
            marks.append((len(cluster.sim.trace.events), f"{missing[-1][0]:.0f} s after the wipe"))
        if left == 0:
            converged = missing[-1][0]
            break
    messages, size = ae_cost(cluster, since)
    ring = cluster.ring()
    return WipeStory(cluster, missing, len(cluster.stores[WIPED]), replicated, messages, size,
                     copy_bytes, cluster.config.anti_entropy_interval_s,
                     len(ring.replica_ranges(WIPED, cluster.config.n)), converged)


def fault_workload(parts=None, seed: int = 41, *, steps: int = 30,
                   marks: Optional[list] = None) -> tuple[list[tuple], SimCluster]:
    """The cluster check's workload: 5 nodes, N=3, read repair off (so anti-entropy does the
    repairs), writes and deletes among crashes, a partition, lost messages and one wiped
    disk, tombstones reaped after 4 s (so keys leave the trees); then healing and 40 s of
    anti-entropy. The log: each step, then what every replica
    holds of every key."""
    from ...faults import FaultConfig
    cluster = SimCluster(nodes=5, vnodes=4, seed=seed, parts=parts, read_repair=False,
                         merkle_depth=3, tombstone_grace_s=4.0)
    rng = random.Random(f"lab4-cluster/{seed}")
    client = cluster.client("alice")
    keys = [f"doc:{i}" for i in range(12)]
    context: dict = {}
    log: list[tuple] = []

    def mark(step):
        if marks is not None:
            marks.append((len(cluster.sim.trace.events), step))

    for i, key in enumerate(keys):
        op = client.submit_put(key, [f"first-{i}"])
        cluster.wait(op)
        if op.error is None:
            context[key] = op.result().context
    cluster.run_for(3)
    mark("the first writes")
    wiped = False
    for i in range(steps):
        kind = rng.choice(["write", "write", "write", "delete", "crash", "restart", "partition",
                           "heal", "lossy", "wipe", "tick"])
        key = rng.choice(keys)
        step = f"step {i}: {kind}"
        STATE.working_on = step
        down = [n for n in cluster.nodes if not cluster.hosts[n].alive]
        if kind in ("write", "delete"):
            via = rng.choice(cluster.up())
            op = (client.submit_put(key, [f"v{i}"], context.get(key), via=via) if kind == "write"
                  else client.submit_delete(key, context.get(key), via=via))
            cluster.wait(op)
            if op.error is None:
                context[key] = op.result().context
            log.append((f"{step} {key} through {via}", op.error is None))
        elif kind == "crash" and len(down) < 1:
            victim = rng.choice(cluster.up())
            cluster.crash(victim)
            log.append((f"{step} {victim}", None))
        elif kind == "restart" and down:
            cluster.restart(down[0])
            log.append((f"{step} {down[0]}", None))
        elif kind == "wipe" and not wiped and not down:
            victim = rng.choice(cluster.nodes)
            cluster.crash(victim)
            cluster.wipe(victim)
            cluster.restart(victim)
            wiped = True
            log.append((f"{step} {victim}", None))
        elif kind == "partition":
            nodes = list(cluster.nodes)
            rng.shuffle(nodes)
            cluster.heal()
            cluster.partition(set(nodes[:1]), set(nodes[1:]))
            log.append((f"{step} {nodes[0]} cut off", None))
        elif kind == "heal":
            cluster.heal()
        elif kind == "lossy":
            drop = rng.choice([0.0, 0.2])
            cluster.sim.faults = FaultConfig(drop=drop)
            log.append((f"{step} drop={drop}", None))
        cluster.run_for(rng.uniform(0.5, 3.0))
        mark(log[-1][0] if log else step)
    cluster.sim.faults = FaultConfig()
    cluster.heal()
    for name in list(cluster.nodes):
        if not cluster.hosts[name].alive:
            cluster.restart(name)
    STATE.working_on = "healing: 40 s of anti-entropy"
    cluster.run_for(40)
    mark("healing: 40 s of anti-entropy")
    # With every node up, two deletes whose tombstones are reaped (the keys leave the trees),
    # then 20 s of anti-entropy over the trees without them.
    for key in keys[:2]:
        STATE.working_on = f"healed: delete {key}"
        op = client.submit_delete(key, context.get(key))
        cluster.wait(op)
        log.append((f"healed: delete {key}", op.error is None))
    STATE.working_on = "healed: the tombstones reaped, 20 s of anti-entropy"
    cluster.run_for(20)
    mark("healed: the tombstones reaped, 20 s of anti-entropy")
    for key in keys:
        log.append((f"after healing: what the replicas of {key} hold",
                    {n: _labels(vs) for n, vs in sorted(cluster.replicas(key).items())}))
    return log, cluster


def stale_replica_story(parts=None, seed: int = 3, *, settle_s: float = 30.0) -> dict:
    """A replica misses a write: C is cut off while ``cart`` is overwritten (W=2 without it),
    then the network heals. Hinted handoff and read repair are off. Returns what each
    replica holds of ``cart`` right after the write and ``settle_s`` later, and how many
    keys anti-entropy repaired."""
    cluster = SimCluster(nodes=["A", "B", "C"], vnodes=4, seed=seed, parts=parts,
                         read_repair=False, hinted_handoff=False, sloppy_quorum=False)
    client = cluster.client("alice")
    client.put("cart", ["book"])
    cluster.run_for(2)
    ctx = client.get("cart").context
    cluster.partition({"C"}, {"A", "B"})
    client.put("cart", ["book", "pen"], context=ctx, via="A")
    cluster.heal()
    before = {n: [json.dumps(v.value) for v in vs] for n, vs in sorted(cluster.replicas("cart").items())}
    cluster.run_for(settle_s)
    after = {n: [json.dumps(v.value) for v in vs] for n, vs in sorted(cluster.replicas("cart").items())}
    repaired = sum(cluster.hosts[n].node.stats.get("ae_keys_repaired", 0) for n in cluster.nodes)
    return {"before": before, "after": after, "repaired": repaired,
            "agree": len({tuple(v) for v in after.values()}) == 1}


# -- measurements ----------------------------------------------------------------------------------

def leaf_of(key: str, depth: int, start: int = 0, end: int = 0) -> int:
    """The reference's leaf formula (to choose keys in given leaves)."""
    width = (end - start) % RING_SIZE or RING_SIZE
    return ((key_hash(key) - start - 1) % RING_SIZE) * (1 << depth) // width


@dataclass
class CostRow:
    d: int                  # differing leaves
    hashes: float           # mean hashes exchanged
    entries: float          # mean (key, digest) entries exchanged from the differing leaves
    formula: float          # 2 d log2(L / d)
    full_sync: int          # one digest per key

    @property
    def merkle_total(self) -> float:
        return self.hashes + self.entries


def cost_curve(tree_class: Any, merkle_diff: Callable, *, depth: int = 10, keys: int = 8000,
               ds=None, trials: int = 3, seed: int = 1) -> list[CostRow]:
    """Hashes exchanged when ``d`` leaves differ, for ``d`` = 1, 2, 4, ... L: two trees of
    ``keys`` keys over the whole ring, one key changed in each of ``d`` random leaves (and
    changed back after each trial: the updates are incremental)."""
    L = 1 << depth
    names = [f"user:{i}" for i in range(keys)]
    a, b = tree_class(0, 0, depth), tree_class(0, 0, depth)
    by_leaf: dict[int, list[str]] = {}
    for k in names:
        a.update(k, "00")
        b.update(k, "00")
        by_leaf.setdefault(leaf_of(k, depth), []).append(k)
    full = sorted(by_leaf)
    rng = random.Random(seed)
    rows = []
    for d in ds or [1 << i for i in range(depth + 1)]:
        hashes = entries = 0
        for _ in range(trials):
            leaves = rng.sample(full, min(d, len(full)))
            for leaf in leaves:
                b.update(by_leaf[leaf][0], "11")
            found = merkle_diff(a, b)
            hashes += found["hashes"]
            entries += 2 * sum(len(by_leaf[leaf]) for leaf in leaves)
            for leaf in leaves:
                b.update(by_leaf[leaf][0], "00")
        rows.append(CostRow(d, hashes / trials, entries / trials,
                            2 * d * math.log2(L / d) if d < L else 0.0, keys))
    return rows


@dataclass
class DepthRow:
    depth: int
    hashes: int             # hashes exchanged to find the differing leaves
    entries: int            # (key, digest) entries of those leaves, both sides
    rounds: int

    @property
    def total(self) -> int:
        return self.hashes + self.entries


def depth_tradeoff(depths=(4, 6, 8, 10, 12, 14, 16), *, keys: int = 100_000,
                   differences: int = 10, seed: int = 1, tree_class=None) -> list[DepthRow]:
    """For each depth, two replicas of ``keys`` keys that differ in ``differences`` of them:
    what the diff costs in hashes and in entries read from the leaves (the reference's
    :class:`~dynamo_lab.MerkleTree` by default, for speed: yours hashes the same)."""
    from ...merkle import MerkleTree, merkle_diff
    items = {f"user:{i}": "00" for i in range(keys)}
    changed = random.Random(seed).sample(sorted(items), differences)
    rows = []
    for depth in depths:
        a = MerkleTree.build(items, depth=depth)
        b = MerkleTree.build(items, depth=depth)
        for k in changed:
            b.update(k, "11")
        d = merkle_diff(a, b)
        rows.append(DepthRow(depth, d.hashes_exchanged, d.entries_exchanged, d.rounds))
    return rows


def spread_rounds(n: int, *, trials: int = 200, seed: int = 1) -> float:
    """Mean rounds until ``n`` replicas all hold a write that one of them has, when each round
    every replica does one exchange (push-pull: both end with both sides' keys) with a random
    other replica."""
    rng = random.Random(f"spread/{n}/{seed}")
    total = 0
    for _ in range(trials):
        has = [False] * n
        has[0] = True
        rounds = 0
        while not all(has):
            rounds += 1
            for i in range(n):
                j = rng.choice([x for x in range(n) if x != i])
                if has[i] or has[j]:
                    has[i] = has[j] = True
        total += rounds
    return total / trials


def diff_rounds(tree_a: Any, tree_b: Any, diff_level: Callable) -> list[dict]:
    """The exchange between two trees, round by round, with ``diff_level`` (the student's):
    each round is ``{"level", "compared": [indices], "differing": [indices], "hashes": sent so
    far}``; the last one's ``keys`` are the keys found at the leaves (if any leaf differs)."""
    remote = {0: tree_b.node_hash(0, 0)}
    hashes, rounds = 1, []
    for level in range(tree_a.depth + 1):
        differing, _ = diff_level(tree_a, level, remote)
        rounds.append({"level": level, "compared": sorted(remote), "differing": list(differing),
                       "hashes": hashes})
        if not differing:
            break
        if level == tree_a.depth:
            mine, theirs = {}, {}
            for leaf in differing:
                mine.update(tree_a.leaf_entries(leaf))
                theirs.update(tree_b.leaf_entries(leaf))
            rounds[-1]["keys"] = sorted(k for k in set(mine) | set(theirs)
                                        if mine.get(k) != theirs.get(k))
            break
        remote = {c: tree_b.node_hash(level + 1, c) for i in differing for c in (2 * i, 2 * i + 1)}
        hashes += len(remote)
    return rounds


# -- broken on purpose -----------------------------------------------------------------------------

def _leaf_hash(entries: dict) -> str:
    text = json.dumps(sorted([k, v] for k, v in entries.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _inner_hash(left: str, right: str) -> str:
    return hashlib.sha256(bytes.fromhex(left + right)).hexdigest()


class RankShapedTree:
    """Broken on purpose: a tree whose leaves split the keys *present* into 2**depth equal
    runs (by rank, in key-hash order), so its shape depends on which keys it holds. The
    interface is the lab's ``MerkleTree(start, end, depth)``."""

    def __init__(self, start, end, depth):
        self.depth = depth
        self.digests: dict[str, str] = {}
        self._levels: Optional[list[list[str]]] = None

    def update(self, key, digest):
        self.digests[key] = digest
        self._levels = None

    def remove(self, key):
        self.digests.pop(key, None)
        self._levels = None

    def _leaves(self) -> list[dict]:
        ordered = sorted(self.digests, key=key_hash)
        L = 1 << self.depth
        leaves: list[dict] = [{} for _ in range(L)]
        for rank, key in enumerate(ordered):
            leaves[rank * L // len(ordered)][key] = self.digests[key]
        return leaves

    def _build(self) -> list[list[str]]:
        if self._levels is None:
            levels = [[_leaf_hash(leaf) for leaf in self._leaves()]]
            while len(levels[0]) > 1:
                below = levels[0]
                levels.insert(0, [_inner_hash(below[2 * i], below[2 * i + 1])
                                  for i in range(len(below) // 2)])
            self._levels = levels
        return self._levels

    def node_hash(self, level, index):
        return self._build()[level][index]

    def leaf_entries(self, index):
        return dict(self._leaves()[index])
