"""Anti-entropy with Merkle trees (the paper, section 4.7).

Every ``anti_entropy_interval_s`` a node takes the next key range it replicates (round robin)
and a random other live replica of it, and the two compare their trees level by level:

    A -> B  MerkleLevel(level 0: A's root)
    B -> A  MerkleLevel(level 1: B's hashes of the children of the nodes that differ)
    A -> B  MerkleLevel(level 2: ...)                  ... down to the leaves, then
    X -> Y  MerkleLeaves(X's (key, digest) entries of the differing leaves)
    Y -> X  SyncVersions(Y's versions of the differing keys it holds; wants: those X holds)
    X -> Y  SyncVersions(the reconciled siblings of each key Y does not hold exactly)

Each side stores the reconciled siblings of what it holds and what it receives, never just
what it receives. The decisions of each step are the pure functions of :mod:`.exchange`, which
the node takes from ``parts`` (``diff_level``, ``differing_keys``, ``repair_key``), and the
trees are ``parts.merkle_tree``'s (through ``tree``): Lab 4 swaps them for a student's. The
``ae_hashes_sent`` statistic counts the cost, to compare with a full sync.
"""

from __future__ import annotations

from ..errors import ProtocolError
from .common import same_versions
from ..messages import AntiEntropyTick, MerkleLeaves, MerkleLevel, SyncVersions
from .services import NodeServices


class AntiEntropy:
    """One Merkle exchange per tick, round robin over this node's key ranges. ``node``: its
    node's services."""

    def __init__(self, node: NodeServices):
        self.node = node
        self._cursor = 0
        self._seq = 0
        node.on_ring_change(self.ring_changed)

    def start(self) -> None:
        cfg = self.node.config
        self.node.set_timer(self.node.rng.uniform(0.5, 1.0) * cfg.anti_entropy_interval_s,
                            AntiEntropyTick())

    def ring_changed(self) -> None:
        """The key ranges changed: start the round robin again."""
        self._cursor = 0

    def handle_AntiEntropyTick(self, _src, _timer) -> None:
        node = self.node
        if node.left:
            return
        node.set_timer(node.config.anti_entropy_interval_s, AntiEntropyTick())
        ring = node.ring
        if not node.config.anti_entropy or ring is None or not hasattr(ring, "replica_ranges"):
            return
        n = node.n_eff()
        if node.id not in ring.nodes:
            return
        ranges = ring.replica_ranges(node.id, n)
        if not ranges:
            return
        key_range = ranges[self._cursor % len(ranges)]
        self._cursor += 1
        peers = [p for p in ring.replicas_of_range(key_range, n)
                 if p != node.id and not node.suspected(p)]
        if not peers:
            return
        peer = node.rng.choice(peers)
        self._seq += 1
        tree = node.tree(key_range, node.config.merkle_depth)
        node.count("ae_exchanges")
        node.count("ae_hashes_sent")
        depth = node.config.merkle_depth
        node.send(peer, MerkleLevel(f"{node.id}.ae{self._seq}", key_range, depth, 0,
                                    ((0, tree.node_hash(0, 0)),)))

    def handle_MerkleLevel(self, src, msg: MerkleLevel) -> None:
        node = self.node
        if msg.depth != node.config.merkle_depth or not 0 <= msg.level <= msg.depth:
            raise ProtocolError(f"Merkle exchange of depth {msg.depth}, level {msg.level}: this "
                                f"cluster's trees have depth {node.config.merkle_depth}")
        tree = node.tree(msg.key_range, msg.depth)
        differ, reply = node.parts.diff_level(tree, msg.level, dict(msg.hashes))
        if not differ:
            if msg.level == 0:
                node.count("ae_in_sync")
            return
        if msg.level == msg.depth:
            node.send(src, MerkleLeaves(msg.exchange_id, msg.key_range, tuple(differ),
                                        tuple(sorted(reply.items()))))
            return
        node.count("ae_hashes_sent", len(reply))
        node.send(src, MerkleLevel(msg.exchange_id, msg.key_range, msg.depth, msg.level + 1,
                                   tuple(sorted(reply.items()))))

    def handle_MerkleLeaves(self, src, msg: MerkleLeaves) -> None:
        node = self.node
        tree = node.tree(msg.key_range, node.config.merkle_depth)
        local: dict = {}
        for leaf in msg.leaves:
            local.update(tree.leaf_entries(leaf))
        remote = dict(msg.entries)
        keys = node.parts.differing_keys(local, remote)
        if keys:
            node.send(src, SyncVersions(msg.exchange_id, self._items(keys),
                                        tuple(k for k in keys if k in remote)))

    def handle_SyncVersions(self, src, msg: SyncVersions) -> None:
        """Repair each key sent or asked for. A request (it ``wants`` keys) is answered with
        the siblings of each key the other side lacks; an answer is not (so a repair can never
        echo back and forth)."""
        node = self.node
        received = {key: list(versions) for key, versions in msg.items}
        back = []
        for key in sorted(set(received) | set(msg.wants)):
            mine, theirs = node.versions(key), received.get(key, [])
            siblings = node.versioning.reconcile(list(mine) + list(theirs))
            keep, send_back = node.parts.repair_key(mine, theirs, siblings)
            if not same_versions(keep, mine):
                node.set_local(key, keep)
                node.count("ae_keys_repaired")
                node.note(f"anti-entropy with {src} repaired {key!r}")
            if send_back and keep and msg.wants:
                back.append((key, tuple(keep)))
        if back:
            node.send(src, SyncVersions(msg.exchange_id, tuple(back), ()))

    def _items(self, keys):
        held = ((k, self.node.versions(k)) for k in keys)
        return tuple((k, tuple(vs)) for k, vs in held if vs)
