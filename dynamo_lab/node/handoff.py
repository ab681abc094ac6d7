"""Hinted handoff (the paper, section 4.6).

A node that stood in for another keeps the replica apart, with a hint naming the intended
node. Every ``handoff_interval_s`` it tries to deliver: to the intended node when it is
believed up again; to the key's current owners when the intended node has left the ring for
good; and, when this node is itself leaving, to another live node that keeps the hint. A hint
is deleted only after an acknowledgement of exactly what was sent.
"""

from __future__ import annotations

from ..messages import HandoffAck, HandoffPut, HandoffTick
from .common import versions_digest
from .services import NodeServices


class HintedHandoff:
    """Keeps hinted replicas moving to where they belong. ``node``: its node's services."""

    def __init__(self, node: NodeServices):
        self.node = node

    def start(self) -> None:
        cfg = self.node.config
        self.node.set_timer(self.node.rng.uniform(0.5, 1.0) * cfg.handoff_interval_s, HandoffTick())

    def handle_HandoffTick(self, _src, _timer) -> None:
        node = self.node
        if node.left:
            return
        node.set_timer(node.config.handoff_interval_s, HandoffTick())
        if not node.config.hinted_handoff:
            return
        budget = node.config.handoff_batch
        leaving = node.membership.mine.status == "leaving"
        for intended in node.hinted_nodes():
            status = node.membership.status_of(intended)
            for hint in node.hints_for(intended):
                if budget <= 0:
                    return
                if status in (None, "left"):
                    self._to_owners(hint)
                elif not node.suspected(intended):
                    node.send(intended, HandoffPut(hint.key, hint.versions, intended))
                elif leaving:
                    keeper = next((p for p in node.successors(hint.key)
                                   if p not in (node.id, intended) and not node.suspected(p)), None)
                    if keeper is None:
                        continue
                    node.send(keeper, HandoffPut(hint.key, hint.versions, intended, True))
                else:
                    break
                budget -= 1

    def _to_owners(self, hint) -> None:
        """The intended node left for good: the key's current owners get the replica."""
        node = self.node
        for owner in node.preference_list(hint.key):
            if owner == node.id:
                node.merge_local(hint.key, hint.versions)
                node.delete_hint(hint.intended, hint.key)
                return
            if not node.suspected(owner):
                node.send(owner, HandoffPut(hint.key, hint.versions, hint.intended))
                return

    def handle_HandoffPut(self, src, msg) -> None:
        node = self.node
        if msg.keep_as_hint:
            node.merge_hint(msg.intended, msg.key, msg.versions)
        else:
            node.merge_local(msg.key, msg.versions)
        node.send(src, HandoffAck(msg.key, versions_digest(msg.versions), msg.intended))

    def handle_HandoffAck(self, src, msg) -> None:
        node = self.node
        held = node.hint(msg.intended, msg.key)
        if held and versions_digest(held) == msg.digest:
            node.delete_hint(msg.intended, msg.key)
            node.count("hints_delivered")
            node.note(f"hint for {msg.intended} of {msg.key!r} delivered to {src}; deleted")
