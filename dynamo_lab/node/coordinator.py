"""The coordinator: client get, put and delete; forwarding; driving each request's quorum.

What a quorum decides lives in :mod:`.quorum` (sloppy quorum's choice of replicas, one small
object per request) and :mod:`.read_repair`; this module accepts requests, sends the messages
those decide, and answers the client.

Rules, in the paper's words where it has them (section 4.5, 4.6):

* A request that reaches a node outside the key's top N is *forwarded* to the first node of
  the top N it believes up. A forwarded request is always coordinated where it lands.
* **put**: stamp a new clock (the context's, with this coordinator's entry incremented), write
  locally, send to the rest of the first N *healthy* nodes of the preference list, answer after
  W acknowledgements (its own included).
* **sloppy quorum**: a top-N node believed down is skipped; the next node further down the
  ring stands in for it and receives a *hint* naming the node it stands in for.
* **get**: ask the same N, answer after R replies with the reconciled siblings and a context
  (their merged clock); then, when the rest have answered or timed out, **read repair** every
  primary replica that answered with something stale.
* A request that cannot gather its quorum within ``request_timeout_s`` tries fallbacks for the
  silent nodes once, then fails with a quorum error that says whether the write may have
  applied. Silent nodes are suspected (the failure detector learns from timeouts).
* **delete** is a put of a tombstone carrying the context's clock. When every primary has
  acknowledged it, the tombstone is reaped after ``tombstone_grace_s`` if nobody is suspected.
* **one write, one version**: every put and delete carries a write id, given where the client's
  request first arrived (``client:request id``) and kept through forwards and retries. A
  coordinator that already holds a version with that write id (a duplicated or retried
  request) sends that version again instead of stamping a second one; for a retry (the first
  coordinator did not answer in time, so it may have applied the write) it first reads the
  replicas to find it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

from ..errors import ClientError
from ..hashing import check_key
from ..messages import (ClientDelete, ClientGet, ClientPut, ClientReply, Forward, ReadRepair,
                        ReapTick, ReplicaGet, ReplicaPut, RequestTimeout)
from ..versions import (MAX_WRITE_ID_CHARS, Versioned, check_value, decode_context,
                        distinct_writes, encode_context)
from .quorum import Answer, Fail, Finish, GetQuorum, Quorum, Retry, stand_ins
from .services import NodeServices

#: How many recent writes a coordinator remembers by write id (beyond what its store shows).
RECENT_WRITES = 4096
#: A forward waits this many request timeouts for its answer before the sender retries
#: elsewhere; one older than FORWARD_START_BUDGET of them when it arrives (the receiver was
#: stopped, or the network held it) is refused, so that it is not applied beside the retry.
FORWARD_WAIT = 3
FORWARD_START_BUDGET = 2


#: The kind of each client request, as replies and notes name it.
KINDS = {ClientGet: "get", ClientPut: "put", ClientDelete: "delete"}


def write_id_for(client: str, req_id: str) -> str:
    """The id of a client's write: ``client:request id`` (hashed if that is too long)."""
    wid = f"{client}:{req_id}"
    if len(wid) > MAX_WRITE_ID_CHARS:
        wid = "h:" + hashlib.sha256(wid.encode("utf-8", "surrogatepass")).hexdigest()
    return wid


class Forwarded(NamedTuple):
    """A request this node passed to another coordinator and waits to relay the answer of."""
    client: str
    request: object
    target: str
    retried: bool
    write_id: Optional[str]


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
        self.forwards: dict[str, Forwarded] = {}
        # write id -> (key, version) of the writes coordinated here lately
        self.recent: OrderedDict[str, tuple[str, Versioned]] = OrderedDict()
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
        node = self.node
        age = node.now - msg.sent_at
        if msg.sent_at and age > FORWARD_START_BUDGET * node.config.request_timeout_s:
            kind = KINDS[type(msg.request)]
            node.count("forwards_expired")
            node.note(f"forward {msg.fwd_id} from {src} arrived {age:.3f} s after it was sent; "
                      f"its sender has given up on it: not applied")
            node.send(src, ClientReply(msg.fwd_id, kind, str(msg.request.key), False,
                                       coordinator=node.id, error_kind="expired",
                                       error=f"the forward reached {node.id} too late; nothing "
                                             f"was applied"))
            return
        self.accept(src, dataclasses.replace(msg.request, req_id=msg.fwd_id), forwarded=True,
                    retried=msg.retry, write_id=msg.write_id or write_id_for(src, msg.fwd_id))

    def accept(self, client: str, msg, forwarded: bool = False, retried: bool = False,
               write_id: Optional[str] = None, avoid: Optional[str] = None) -> None:
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
            return
        if not forwarded and node.id not in pref:
            target = next((p for p in pref if not node.suspected(p) and p != avoid), None)
            if target is not None:
                fwd = self._new_id()
                self.forwards[fwd] = Forwarded(client, msg, target, retried, write_id)
                node.send(target, Forward(fwd, dataclasses.replace(msg, req_id=fwd), write_id,
                                          retry=retried, sent_at=node.now))
                node.set_timer(FORWARD_WAIT * node.config.request_timeout_s, RequestTimeout(fwd))
                node.note(f"{kind} {key!r}: not in its top {len(pref)} {pref}; forwarded to {target}")
                return
        if kind == "get":
            self.start_get(client, msg, key, pref)
        else:
            self.start_put(client, msg, key, ctx, pref, write_id, look_first=retried)

    def handle_ClientReply(self, src, msg: ClientReply) -> None:
        """The answer to a request this node forwarded: relay it to the client (or, when the
        forward arrived too late to be applied, try once more elsewhere)."""
        fwd = self.forwards.pop(msg.req_id, None)
        if fwd is None:
            self.node.note(f"late reply {msg.req_id} from {src} ignored (already answered)")
            return
        if msg.error_kind == "expired" and not fwd.retried:
            self.node.note(f"{src} got the forward too late; trying again elsewhere")
            self.accept(fwd.client, fwd.request, retried=True, write_id=fwd.write_id, avoid=src)
            return
        self.node.send(fwd.client, dataclasses.replace(msg, req_id=fwd.request.req_id))

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
        version = self._already_written(write_id, key, kind, value, ctx, local + list(found))
        if version is None and look_first:
            node.note(f"{kind} {key!r}: a retry of write {write_id}; reading the replicas for "
                      f"it before stamping it")
            self.start_get(client, msg, key, pref, then=lambda got: self.start_put(
                client, msg, key, ctx, pref, write_id, found=got))
            return
        if version is None:
            clock = node.versioning.new_clock(ctx, node.id, node.now, local)
            version = Versioned(value, clock, deleted=(kind == "delete"), write_id=write_id)
            self.recent[write_id] = (key, version)
            if len(self.recent) > RECENT_WRITES:
                self.recent.popitem(last=False)
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

    def _already_written(self, write_id, key, kind, value, ctx, local) -> Optional[Versioned]:
        """The version this write was stamped with before (a retried or duplicated request),
        if this node remembers it or holds it; None for a new write."""
        deleted = kind == "delete"

        def same(v: Versioned) -> bool:
            return (v.write_id == write_id and v.deleted == deleted
                    and (deleted or v.value == value) and v.clock.descends(ctx))

        seen = self.recent.get(write_id)
        if seen is not None and seen[0] == key and same(seen[1]):
            return seen[1]
        return next((v for v in local if same(v)), None)

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
        fwd = self.forwards.pop(timer.req_id, None)
        if fwd is not None:
            node.membership.timed_out(fwd.target, node.now)
            if not fwd.retried:
                # The target is now suspected: try once more (the next top-N node, or here),
                # as the same write: if the target did apply it, it is not applied twice.
                node.note(f"{fwd.target} did not answer a forwarded request; trying again")
                self.accept(fwd.client, fwd.request, retried=True, write_id=fwd.write_id)
                return
            request = fwd.request
            self._fail(fwd.client, request, request.key, 1, 0, not isinstance(request, ClientGet),
                       f"forwarded to {fwd.target}, which did not answer")
            return
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

    def _fail(self, client, request, key, needed, got, may_have_applied, detail) -> None:
        self.node.count("quorum_failures")
        self.node.send(client, ClientReply(request.req_id, KINDS[type(request)], key,
                                           False, coordinator=self.node.id,
                                           error_kind="quorum", error=detail,
                                           may_have_applied=may_have_applied,
                                           needed=needed, got=got))
