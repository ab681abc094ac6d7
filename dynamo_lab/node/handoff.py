"""Hinted handoff (the paper, section 4.6).

A node that stood in for another keeps the replica apart, with a hint naming the intended
node. Every ``handoff_interval_s`` it tries to deliver: to the intended node when it is
believed up again; to the key's current owners when the intended node has left the ring for
good; and, when this node is itself leaving, to another live node that keeps the hint. A hint
is deleted only after an acknowledgement of exactly what was sent.

The two decisions a student writes in Lab 3 (what to send back, when to forget) are the pure
functions of :mod:`.hints`, swapped through ``Parts.handoff_tick`` and ``Parts.handoff_ack``.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..messages import HandoffAck, HandoffPut, HandoffTick
from .common import versions_digest
from .services import NodeServices


class HintedHandoff:
    """Keeps hinted replicas moving to where they belong. ``node``: its node's services.

    What to send back on each tick and when a hint may be forgotten are the pure decisions of
    :mod:`.hints` (``node.parts.handoff_tick`` and ``node.parts.handoff_ack``); this part
    carries them out, and handles alone the hints of nodes that left for good and those a
    leaving node passes on."""

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
        leaving = node.membership.mine.status == "leaving"
        hinted = node.hinted_nodes()
        held = {intended: node.hints_for(intended) for intended in hinted}
        gone = {i for i in hinted if node.membership.status_of(i) in (None, "left")}
        down = {i for i in hinted if i not in gone and node.suspected(i)}
        passed_on = down if leaving else set()
        planned = [(i, h.key) for i in hinted if i not in gone | passed_on for h in held[i]]
        actions = self._checked(node.parts.handoff_tick(planned, set(down)), planned,
                                "handoff_tick") if planned else []
        budget = node.config.handoff_batch
        for intended in hinted:
            if intended in gone or intended in passed_on:
                for hint in held[intended]:
                    if budget <= 0:
                        return
                    if intended in gone:
                        self._to_owners(hint)
                    elif not self._pass_on(hint):
                        continue
                    budget -= 1
                continue
            hints = {h.key: h for h in held[intended]}
            for verb, _, key in (a for a in actions if a[1] == intended):
                if budget <= 0:
                    return
                if verb == "forget":
                    node.delete_hint(intended, key)
                    node.count("hints_forgotten")
                    node.note(f"hint for {intended} of {key!r} deleted")
                    hints.pop(key, None)
                    continue
                hint = hints.get(key)
                if hint is None:
                    continue                      # forgotten earlier in this round
                node.send(intended, HandoffPut(hint.key, hint.versions, intended))
                budget -= 1

    def _checked(self, actions, hints, what: str) -> list[tuple[str, str, str]]:
        """The actions a plan returned, as ``(verb, intended, key)`` tuples about hints it
        was given; anything else raises :class:`ConfigError` saying what was returned."""
        known = set(hints)
        out = []
        for action in actions:
            ok = (isinstance(action, (tuple, list)) and len(action) == 3
                  and action[0] in ("send", "forget") and (action[1], action[2]) in known)
            if not ok:
                raise ConfigError(f"{what} returned {action!r}: an action is ('send', intended, "
                                  f"key) or ('forget', intended, key) for a hint this node keeps "
                                  f"({sorted(known)})")
            out.append((str(action[0]), str(action[1]), str(action[2])))
        return out

    def _pass_on(self, hint) -> bool:
        """This node is leaving and the hint's node is down: another live node keeps it."""
        node = self.node
        keeper = next((p for p in node.successors(hint.key)
                       if p not in (node.id, hint.intended) and not node.suspected(p)), None)
        if keeper is None:
            return False
        node.send(keeper, HandoffPut(hint.key, hint.versions, hint.intended, True))
        return True

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
        pair = (msg.intended, msg.key)
        actions = self._checked(node.parts.handoff_ack(
            msg.intended, msg.key, versions_digest(held) if held else None, msg.digest),
            [pair], "handoff_ack")
        for verb, intended, key in actions:
            if verb == "forget":
                node.delete_hint(intended, key)
                node.count("hints_delivered")
                node.note(f"hint for {intended} of {key!r} delivered to {src}; deleted")
            else:
                node.send(intended, HandoffPut(key, tuple(held), intended))
