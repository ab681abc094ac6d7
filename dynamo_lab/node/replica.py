"""The replica: keep what coordinators send (merging, never overwriting), answer reads, reap
tombstones once it is safe."""

from __future__ import annotations

from ..messages import Reap, ReapTick, ReplicaGetReply, ReplicaPutAck
from .services import NodeServices


class Replica:
    """Serves ``ReplicaPut``, ``ReplicaGet``, ``ReadRepair`` and ``Reap``. ``node``: the
    :class:`NodeServices` of its node."""

    def __init__(self, node: NodeServices):
        self.node = node

    def handle_ReplicaPut(self, src, msg) -> None:
        node = self.node
        if msg.hint is not None and msg.hint != node.id:
            node.merge_hint(msg.hint, msg.key, msg.versions)
        else:
            node.merge_local(msg.key, msg.versions)
        node.send(src, ReplicaPutAck(msg.req_id, msg.key))

    def handle_ReplicaGet(self, src, msg) -> None:
        # What this node can say about the key: its own copy and any hinted copies it keeps.
        versions = self.node.versioning.reconcile(self.node.held(msg.key))
        self.node.send(src, ReplicaGetReply(msg.req_id, msg.key, tuple(versions)))

    def handle_ReadRepair(self, src, msg) -> None:
        self.node.merge_local(msg.key, msg.versions)

    def handle_ReapTick(self, _src, timer: ReapTick) -> None:
        """The grace period of an acknowledged delete is over: purge its tombstone everywhere,
        unless some node is suspected (it might still hold, or be handed, an older version)."""
        node = self.node
        if node.membership.suspects(node.now):
            node.set_timer(node.config.tombstone_grace_s, timer)
            return
        for replica in node.preference_list(timer.key):
            if replica == node.id:
                self._reap(timer.key, timer.clock)
            else:
                node.send(replica, Reap(timer.key, timer.clock))

    def handle_Reap(self, src, msg) -> None:
        self._reap(msg.key, msg.clock)

    def _reap(self, key, clock) -> None:
        node = self.node
        held = node.versions(key)
        if len(held) == 1 and held[0].deleted and held[0].clock == clock:
            node.drop_local(key)
            node.count("tombstones_reaped")
