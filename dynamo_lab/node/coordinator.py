"""The coordinator: client get, put and delete (the paper, 4.5 and 4.6).

It accepts a client's request (or forwards it, :mod:`.forwarding`, when this node is not
among the key's top N), sends it where sloppy quorum says (:func:`.quorum.choose_replicas`),
feeds each reply and timeout to the request's quorum (:class:`.quorum.PutQuorum`,
:class:`.quorum.GetQuorum`), carries out what it decides, and answers the client.

* **put**: stamp a new clock on top of the client's context (``versioning.new_clock``),
  write locally, send to the other targets; the answer carries the new clock as context.
  A write this node already stamped (same write id, :mod:`.write_ids`) is sent again as it
  was; a *retried* one (an earlier coordinator may have applied it) is first looked for on
  the replicas.
* **get**: ask the targets, answer with the reconciled siblings and their merged clock as
  context; once nobody is awaited, **read repair** (:mod:`.read_repair`) the stale primaries.
* **delete**: a put of a tombstone. When every primary acknowledged it for itself, the
  tombstone is reaped after ``tombstone_grace_s`` (see the replica).
* Silent targets are suspected: the failure detector learns from timeouts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import ClientError
from ..hashing import check_key
from ..messages import (ClientDelete, ClientGet, ClientPut, ClientReply, Forward, ForwardTimeout,
                        ReadRepair, ReapTick, ReplicaGet, ReplicaPut, RequestTimeout)
from ..versions import Versioned, check_value, decode_context, distinct_writes, encode_context
from .forwarding import Forwarding
from .quorum import Answer, Fail, Finish, GetQuorum, Quorum, Retry, stand_ins
from .services import NodeServices
from .write_ids import RecentWrites, write_id_for

#: The kind of each client request, as replies and notes name it.
KINDS = {ClientGet: "get", ClientPut: "put", ClientDelete: "delete"}


@dataclass
class Coordinating:
    """A request this node coordinates: who asked for what, and its quorum."""
    req_id: str                             # this node's id for it (replicas' replies carry it)
    client: str
    request: object                         # the ClientGet, ClientPut or ClientDelete
    key: str
    quorum: Quorum
    version: Optional[Versioned] = None     # what a put or delete writes
    # A lookup (a get this node makes for itself): called with the versions found instead of
    # answering a client.
    then: Optional[Callable[[list], None]] = None

    @property
    def kind(self) -> str:
        return "get" if isinstance(self.quorum, GetQuorum) else KINDS[type(self.request)]


class Coordinator:
    """Coordinates client requests. ``node``: the :class:`NodeServices` of its node."""

    def __init__(self, node: NodeServices):
        self.node = node
        self.choose_replicas = node.parts.choose_replicas
        self.put_quorum = node.parts.put_quorum
        self.get_quorum = node.parts.get_quorum
        self.read_repairs = node.parts.read_repair
        self.pending: dict[str, Coordinating] = {}
        self.recent = RecentWrites()
        self.forwarding = Forwarding(node, self.accept, self._fail_forward, self._new_id)
        self._seq = 0

    def _new_id(self) -> str:
        self._seq += 1
        return f"{self.node.id}.{self.node.membership.mine.generation}.{self._seq}"

    # -- client requests ------------------------------------------------------------------

    def handle_ClientGet(self, src, msg: ClientGet) -> None:
        self.accept(src, msg)

    def handle_ClientPut(self, src, msg: ClientPut) -> None:
        self.accept(src, msg)

    def handle_ClientDelete(self, src, msg: ClientDelete) -> None:
        self.accept(src, msg)

    def handle_Forward(self, src, msg: Forward) -> None:
        if not self.forwarding.too_late(src, msg, KINDS[type(msg.request)]):
            self.accept(src, dataclasses.replace(msg.request, req_id=msg.fwd_id), forwarded=True,
                        retried=msg.retry, write_id=msg.write_id or write_id_for(src, msg.fwd_id))

    def handle_ClientReply(self, src, msg: ClientReply) -> None:
        self.forwarding.on_reply(src, msg)

    def handle_ForwardTimeout(self, _src, timer: ForwardTimeout) -> None:
        self.forwarding.on_timeout(timer.fwd_id)

    def accept(self, client: str, msg, forwarded: bool = False, retried: bool = False,
               write_id: Optional[str] = None, avoid: Optional[str] = None) -> None:
        """Check a request, then forward it or coordinate it here."""
        node = self.node
        kind = KINDS[type(msg)]
        if write_id is None and kind != "get":
            write_id = write_id_for(client, msg.req_id)
        try:
            key = check_key(msg.key)
            ctx = None
            if kind != "get":
                ctx = decode_context(msg.context, node.config.cluster_key)
            if kind == "put":
                check_value(msg.value, node.config.max_value_bytes)
        except ClientError as exc:
            node.send(client, ClientReply(msg.req_id, kind, str(msg.key), False,
                                          coordinator=node.id, error_kind="invalid",
                                          error=str(exc)))
            return
        pref = node.preference_list(key)
        if not pref:
            self._fail(client, msg, key, 0, 0, False, "this node knows no ring yet")
        elif (forwarded or node.id in pref or not self.forwarding.forward(
                client, msg, kind, pref, retried, write_id, avoid)):
            if kind == "get":
                self.start_get(client, msg, key, pref)
            else:
                self.start_put(client, msg, key, ctx, pref, write_id, look_first=retried)

    # -- where a request goes -------------------------------------------------------------

    def _down(self, walk: list[str]) -> set[str]:
        return {p for p in walk if self.node.suspected(p)}

    def targets_for(self, key: str, pref: list[str]) -> dict[str, Optional[str]]:
        """The first N healthy nodes for ``key`` (see :func:`.quorum.choose_replicas`)."""
        node = self.node
        walk = node.successors(key) if node.config.sloppy_quorum else list(pref)
        return self.choose_replicas(pref, walk, self._down(walk), node.id,
                                    node.config.sloppy_quorum)

    def _spare(self, op: Coordinating) -> list[str]:
        """The stand-ins still available for a request that timed out."""
        node = self.node
        if not node.config.sloppy_quorum:
            return []
        walk = node.successors(op.key)
        return stand_ins(op.quorum.primaries, walk, self._down(walk), exclude=op.quorum.targets)

    def _start(self, op: Coordinating) -> None:
        """Send the request to its targets (the coordinator's own share is done already), set
        its timeout, and count the coordinator's own reply."""
        node, q = self.node, op.quorum
        self.pending[op.req_id] = op
        for target, hint in q.targets.items():
            if target != node.id:
                node.send(target, self._message(op, hint))
        node.set_timer(node.config.request_timeout_s, RequestTimeout(op.req_id))
        if node.id in q.targets:
            if isinstance(q, GetQuorum):
                self._decide(op, q.on_reply(node.id, self._read_here(op.key)))
            else:
                self._decide(op, q.on_reply(node.id))

    def _message(self, op: Coordinating, hint: Optional[str]):
        """What a target (or a stand-in, with its hint) is sent for this request."""
        if op.version is None:
            return ReplicaGet(op.req_id, op.key)
        return ReplicaPut(op.req_id, op.key, (op.version,), hint)

    # -- put and delete -------------------------------------------------------------------

    def start_put(self, client, msg, key, ctx, pref, write_id, look_first=False,
                  found=()) -> None:
        node = self.node
        kind = KINDS[type(msg)]
        value = msg.value if kind == "put" else None
        needed = min(node.config.w, len(pref))
        targets = self.targets_for(key, pref)
        if len(targets) < needed:
            self._fail(client, msg, key, needed, len(targets), False,
                       f"only {len(targets)} replicas believed up; nothing was written")
            return
        local = node.held(key)
        version = self.recent.find(write_id, key, kind == "delete", value, ctx,
                                   local + list(found))
        if version is None and look_first:
            node.note(f"{kind} {key!r}: a retry of write {write_id}; reading the replicas for "
                      f"it before stamping it")
            self.start_get(client, msg, key, pref, then=lambda got: self.start_put(
                client, msg, key, ctx, pref, write_id, found=got))
            return
        if version is None:
            clock = node.versioning.new_clock(ctx, node.id, node.now, local)
            version = Versioned(value, clock, deleted=(kind == "delete"), write_id=write_id)
            self.recent.remember(write_id, key, version)
        else:
            node.count("duplicate_writes")
            node.note(f"{kind} {key!r}: write {write_id} is already stamped {version.clock}; "
                      f"sending that version again")
        op = Coordinating(self._new_id(), client, msg, key,
                          self.put_quorum(needed, list(pref), targets), version=version)
        node.count(f"{kind}s_coordinated")
        node.note(f"{kind} {key!r} as {version.clock}: targets "
                  + ", ".join(t if h is None else f"{t}(hint for {h})" for t, h in targets.items()))
        if node.id in targets:
            self._write_here(key, version, targets[node.id])
        self._start(op)

    def _write_here(self, key, version, hint) -> None:
        if hint is None:
            self.node.merge_local(key, [version])
        else:
            self.node.merge_hint(hint, key, [version])

    def handle_ReplicaPutAck(self, src, msg) -> None:
        op = self.pending.get(msg.req_id)
        if op is not None:
            self._decide(op, op.quorum.on_reply(src))

    # -- get --------------------------------------------------------------------------------

    def start_get(self, client, msg, key, pref, then=None) -> None:
        node = self.node
        needed = min(node.config.r, len(pref))
        targets = self.targets_for(key, pref)
        if then is not None and len(targets) < needed:
            then([])
            return
        if len(targets) < needed:
            self._fail(client, msg, key, needed, len(targets), False,
                       f"only {len(targets)} replicas believed up")
            return
        op = Coordinating(self._new_id(), client, msg, key,
                          self.get_quorum(needed, list(pref), targets), then=then)
        node.count("gets_coordinated" if then is None else "lookups")
        self._start(op)

    def _read_here(self, key: str) -> list[Versioned]:
        return self.node.versioning.reconcile(self.node.held(key))

    def handle_ReplicaGetReply(self, src, msg) -> None:
        op = self.pending.get(msg.req_id)
        if op is not None and isinstance(op.quorum, GetQuorum):
            self._decide(op, op.quorum.on_reply(src, msg.versions))

    # -- timeouts, decisions, answers -----------------------------------------------------

    def handle_RequestTimeout(self, _src, timer: RequestTimeout) -> None:
        node = self.node
        op = self.pending.get(timer.req_id)
        if op is None:
            return
        silent = op.quorum.silent()
        for t in silent:
            node.membership.timed_out(t, node.now)
        decision = op.quorum.on_timeout(self._spare(op), node.id)
        if isinstance(decision, Retry):
            node.note(f"{op.kind} {op.key!r}: no answer from {silent}; trying "
                      + ", ".join(f"{t}(hint for {h})" for t, h in decision.stand_ins.items()))
        self._decide(op, decision)

    def _decide(self, op: Coordinating, decision) -> None:
        """Carry out what the request's quorum decided."""
        node = self.node
        if isinstance(decision, Answer):
            self._answer(op)
            if decision.done:
                self._finish(op)
        elif isinstance(decision, Retry):
            for target, hint in decision.stand_ins.items():
                node.send(target, self._message(op, hint))
            node.set_timer(node.config.request_timeout_s, RequestTimeout(op.req_id))
        elif isinstance(decision, Fail):
            if op.then is not None:
                self._answer(op)              # a lookup goes on with what it found
            else:
                q = op.quorum
                self._fail(op.client, op.request, op.key, q.needed, len(q.heard),
                           decision.may_have_applied,
                           f"no answer from {', '.join(decision.silent)}")
            self._finish(op)
        elif isinstance(decision, Finish):
            self._finish(op)

    def _answer(self, op: Coordinating) -> None:
        node, q = self.node, op.quorum
        if op.then is not None:
            op.then([v for _, vs in sorted(q.replies.items()) for v in vs])
            return
        if isinstance(q, GetQuorum):
            merged = node.versioning.reconcile(v for vs in q.replies.values() for v in vs)
            clock = node.versioning.merged_clock(merged)
            context = encode_context(clock, node.config.cluster_key) if merged else None
            reply = ClientReply(op.request.req_id, "get", op.key, True,
                                values=tuple(v.value for v in distinct_writes(merged)
                                             if not v.deleted),
                                context=context,
                                coordinator=node.id, needed=q.needed, got=len(q.replies),
                                replies=tuple(sorted(q.replies)))
        else:
            reply = ClientReply(op.request.req_id, op.kind, op.key, True,
                                context=encode_context(op.version.clock, node.config.cluster_key),
                                coordinator=node.id, needed=q.needed, got=len(q.heard),
                                replies=tuple(sorted(q.heard)))
        node.send(op.client, reply)

    def _finish(self, op: Coordinating) -> None:
        """Nobody is awaited any more: read repair after a get, schedule reaping after a
        delete every primary acknowledged."""
        if self.pending.pop(op.req_id, None) is None:
            return
        node, q = self.node, op.quorum
        if isinstance(q, GetQuorum) and q.replies and node.config.read_repair:
            self.read_repair(op)
        if (op.kind == "delete" and q.answered
                and all(q.targets.get(p, "x") is None and p in q.heard for p in q.primaries)):
            node.set_timer(node.config.tombstone_grace_s, ReapTick(op.key, op.version.clock))

    def read_repair(self, op: Coordinating) -> None:
        """Send the reconciled siblings to every primary replica that answered with less."""
        node, q = self.node, op.quorum
        merged, stale = self.read_repairs(q.replies, q.primaries, q.targets,
                                          node.versioning.reconcile)
        for replica in stale:
            node.count("read_repairs")
            node.note(f"read repair of {op.key!r} on {replica}")
            if replica == node.id:
                node.merge_local(op.key, merged)
            else:
                node.send(replica, ReadRepair(op.key, tuple(merged)))

    def _fail_forward(self, client, request, detail: str, may_have_applied: bool) -> None:
        self._fail(client, request, request.key, 1, 0, may_have_applied, detail)

    def _fail(self, client, request, key, needed, got, may_have_applied, detail) -> None:
        self.node.count("quorum_failures")
        self.node.send(client, ClientReply(request.req_id, KINDS[type(request)], key,
                                           False, coordinator=self.node.id,
                                           error_kind="quorum", error=detail,
                                           may_have_applied=may_have_applied,
                                           needed=needed, got=got))
