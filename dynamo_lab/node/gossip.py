"""Gossip membership, failure detection, join and leave (the paper, sections 4.8 and 4.9).

* Every ``gossip_interval_s`` a node raises its heartbeat and exchanges views (push-pull) with
  one random live peer, plus one suspected peer to notice when it is back: the round's
  decisions are ``parts.gossip_round`` (:func:`dynamo_lab.membership.gossip_round`), the
  merge of what comes back ``parts.merge_views`` (the node's :class:`Membership` calls it).
* A node that starts with no view (a join) gossips with its seeds; the ring of every node then
  grows by the new node's tokens as the news spreads.
* Every ``rebalance_interval_s`` a node looks for keys it holds but no longer replicates (a node
  joined and took them, or this node is leaving) and transfers them to their owners; it drops
  its copy only when the owners have acknowledged exactly that copy.
* A leaving node says ``leaving`` (it leaves the ring at once, so its keys are transferred),
  and says ``left`` once it holds no keys and no hints.
"""

from __future__ import annotations

from ..errors import ProtocolError
from ..hashing import RING_SIZE
from ..membership import MAX_COUNTER, STATUS_RANK
from ..messages import (Gossip as GossipMsg, GossipTick, MemberState, RebalanceTick, Transfer,
                        TransferAck)
from .common import versions_digest
from .services import NodeServices


class Gossip:
    """Spreads the node's membership view and moves keys on join and leave. ``node``: its
    node's services (the view itself is the node's: ``node.membership``)."""

    def __init__(self, node: NodeServices):
        self.node = node
        self._seq = 0
        self._acked: dict[str, tuple[str, set]] = {}      # key -> (digest sent, owners that acked)
        self._sent: dict[str, tuple[str, dict]] = {}      # transfer id -> (owner, key -> digest)

    def start(self) -> None:
        node, cfg = self.node, self.node.config
        node.set_timer(node.rng.uniform(0.1, 1.0) * cfg.gossip_interval_s, GossipTick())
        node.set_timer(node.rng.uniform(0.5, 1.0) * cfg.rebalance_interval_s, RebalanceTick())

    # -- gossip ---------------------------------------------------------------------------

    def handle_GossipTick(self, _src, _timer) -> None:
        node, m = self.node, self.node.membership
        if node.left:
            return
        node.set_timer(node.config.gossip_interval_s, GossipTick())
        peers = m.peers()
        suspected = {p for p in peers if node.suspected(p)}
        rand = (_draw(node.rng, len(peers) - len(suspected)), _draw(node.rng, len(suspected)))
        view, targets = node.parts.gossip_round(node.id, m.view, suspected, list(node.seeds), rand)
        m.beat(node.now, view[node.id])
        view = tuple(m.view.values())
        for t in targets:
            node.send(t, GossipMsg(view, reply=True))

    def handle_Gossip(self, src, msg: GossipMsg) -> None:
        node, m = self.node, self.node.membership
        for st in msg.view:
            problem = member_problem(st)
            if problem:
                raise ProtocolError(f"gossip from {src} about {st.node!r}: {problem}")
        generation = m.mine.generation
        if m.merge(msg.view, node.now, src=src):
            node.save_membership()
            ring = node.ring
            node.note(f"ring changed: {ring.nodes if ring is not None else []}")
        if m.mine.generation != generation:    # a claim about me outranked me: raise mine
            node.save_membership()
            node.note(f"generation raised to {m.mine.generation} above gossip about this node")
        if msg.reply and not node.left:
            node.send(src, GossipMsg(tuple(m.view.values()), reply=False))

    def handle_AdminLeave(self, src, _msg) -> None:
        node = self.node
        if src != "admin":
            raise ProtocolError(f"AdminLeave comes from the runtime's admin channel, not {src!r}")
        if node.membership.mine.status != "up":
            return
        node.set_status("leaving")
        node.note("leaving: handing off every key and hint")
        for peer in node.membership.peers():
            node.send(peer, GossipMsg(tuple(node.membership.view.values()), reply=False))

    # -- transfers on join and leave ------------------------------------------------------

    def handle_RebalanceTick(self, _src, _timer) -> None:
        node = self.node
        if node.left:
            return
        node.set_timer(node.config.rebalance_interval_s, RebalanceTick())
        leaving = node.membership.mine.status == "leaving"
        if leaving and node.key_count() == 0 and node.hint_count() == 0:
            self._say_left()
            return
        if node.ring is None:
            return
        batches: dict[str, list] = {}
        budget = node.config.transfer_batch
        for key in node.keys():
            if budget <= 0:
                break
            owners = node.preference_list(key)
            if node.id in owners:
                self._acked.pop(key, None)
                continue
            versions = node.versions(key)
            digest = versions_digest(versions)
            acked = self._acked.get(key)
            if acked is None or acked[0] != digest:
                acked = self._acked[key] = (digest, set())
            if self._may_drop(owners, acked[1]):
                node.drop_local(key)
                self._acked.pop(key, None)
                node.count("keys_transferred")
                continue
            for owner in owners:
                if owner not in acked[1] and not node.suspected(owner):
                    batches.setdefault(owner, []).append((key, tuple(versions)))
            budget -= 1
        for owner, items in sorted(batches.items()):
            self._seq += 1
            tid = f"{node.id}.t{self._seq}"
            self._sent[tid] = (owner, {k: versions_digest(v) for k, v in items})
            node.send(owner, Transfer(tid, tuple(items)))

    def _may_drop(self, owners: list[str], acked: set) -> bool:
        node = self.node
        live = [o for o in owners if not node.suspected(o)]
        return bool(owners) and set(live) <= acked and len(acked) >= min(node.config.w, len(owners))

    def handle_Transfer(self, src, msg: Transfer) -> None:
        node = self.node
        for key, versions in msg.items:
            node.merge_local(key, versions)
        node.send(src, TransferAck(msg.transfer_id, tuple(k for k, _ in msg.items)))

    def handle_TransferAck(self, src, msg: TransferAck) -> None:
        sent = self._sent.pop(msg.transfer_id, None)
        if sent is None:
            return
        owner, digests = sent
        for key in msg.keys:
            acked = self._acked.get(key)
            if acked is not None and acked[0] == digests.get(key):
                acked[1].add(owner)

    def _say_left(self) -> None:
        node = self.node
        node.set_status("left")
        node.note("left the ring: every key and hint handed off")
        view = tuple(node.membership.view.values())
        for peer in node.membership.peers():
            node.send(peer, GossipMsg(view, reply=False))


def _draw(rng, count: int) -> float:
    """A draw uniform in [0, 1) for picking one of ``count`` candidates: the middle of the
    slot ``rng.randrange(count)`` picks (what ``rng.choice`` of ``count`` items draws, so
    traces are those of a node that calls ``choice``); 0.0, with no draw, for no candidates."""
    return (rng.randrange(count) + 0.5) / count if count > 0 else 0.0


def member_problem(st: MemberState) -> str:
    """Why gossip about a member cannot be accepted ("" when it can)."""
    if not isinstance(st.node, str) or not st.node or st.node.startswith(("client:", "http:")):
        return "a member is a non-empty node id"
    if st.status not in STATUS_RANK:
        return f"unknown status {st.status!r}"
    if not (0 <= st.generation < MAX_COUNTER and 0 <= st.heartbeat < MAX_COUNTER):
        return "generation and heartbeat are whole numbers in [0, 2**53)"
    if st.status == "up" and not st.tokens:
        return "a member that is up owns at least one token"
    for t in st.tokens:
        if not (t.isdigit() and 0 <= int(t) < RING_SIZE):
            return f"token {t[:40]!r} is not a ring position"
    return ""
