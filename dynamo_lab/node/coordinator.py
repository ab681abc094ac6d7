"""The coordinator: client get, put and delete; quorums; sloppy quorum; read repair.

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
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Optional

from ..errors import ClientError
from ..hashing import check_key
from ..messages import (ClientDelete, ClientGet, ClientPut, ClientReply, Forward, ReadRepair,
                        ReapTick, ReplicaGet, ReplicaPut, RequestTimeout)
from ..versions import (MAX_WRITE_ID_CHARS, Versioned, check_value, decode_context,
                        distinct_writes, encode_context)
from .common import versions_digest

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
class Operation:
    """One client request this node is coordinating."""
    req_id: str
    client: str
    client_req: str
    kind: str                               # "get", "put" or "delete"
    key: str
    needed: int
    primaries: list[str]
    targets: dict[str, Optional[str]]       # node -> the node it stands in for (None: itself)
    version: Optional[Versioned] = None     # the version a put/delete writes
    acks: set = field(default_factory=set)
    replies: dict = field(default_factory=dict)   # get: node -> list[Versioned]
    answered: bool = False
    retried: bool = False
    # A lookup (a get this node makes for itself): called with the versions found instead of
    # answering a client.
    then: Optional[Callable[[list], None]] = None

    def heard(self) -> set:
        return self.acks if self.kind != "get" else set(self.replies)


class Coordinator:
    """Coordinates client requests. Uses of the node: ``id``, ``config``, ``store``, ``now``,
    ``send``, ``set_timer``, ``preference_list``, ``successors``, ``suspected``,
    ``merge_local``, ``merge_hint``, ``versioning``, ``membership``."""

    def __init__(self, node):
        self.node = node
        self.pending: dict[str, Operation] = {}
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
            self._fail(client, msg.req_id, kind, key, 0, 0, False, "this node knows no ring yet")
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
            self.start_get(client, msg.req_id, key, pref)
        else:
            value = msg.value if kind == "put" else None
            self.start_put(client, msg.req_id, kind, key, value, ctx, pref, write_id,
                           look_first=retried)

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

    # -- choosing replicas ----------------------------------------------------------------

    def choose_targets(self, key: str, pref: list[str], exclude: set = frozenset(),
                       missing: list[str] | None = None) -> dict[str, Optional[str]]:
        """The first N healthy nodes: each top-N node believed up, and for each one believed
        down (sloppy quorum) the next healthy node beyond the top N, with a hint naming it.

        With ``missing`` (a retry), only stand-ins for those nodes are chosen.
        """
        node = self.node
        if not node.config.sloppy_quorum:
            return {} if missing is not None else {p: None for p in pref}
        fallbacks = [s for s in node.successors(key)
                     if s not in pref and s not in exclude and not node.suspected(s)]
        targets: dict[str, Optional[str]] = {}
        if missing is None:
            for p in pref:
                if p == node.id or not node.suspected(p):
                    targets[p] = None
                elif fallbacks:
                    targets[fallbacks.pop(0)] = p
        else:
            for intended in missing:
                if fallbacks:
                    targets[fallbacks.pop(0)] = intended
        return targets

    # -- put and delete -------------------------------------------------------------------

    def start_put(self, client, client_req, kind, key, value, ctx, pref, write_id,
                  look_first=False, found=()) -> None:
        node = self.node
        needed = min(node.config.w, len(pref))
        targets = self.choose_targets(key, pref)
        if len(targets) < needed:
            self._fail(client, client_req, kind, key, needed, len(targets), False,
                       f"only {len(targets)} replicas believed up; nothing was written")
            return
        local = list(node.store.get(key))
        for intended in node.store.hinted_nodes():
            local += node.store.get_hint(intended, key)
        version = self._already_written(write_id, key, kind, value, ctx, local + list(found))
        if version is None and look_first:
            node.note(f"{kind} {key!r}: a retry of write {write_id}; reading the replicas for "
                      f"it before stamping it")
            self.start_get(client, client_req, key, pref, then=lambda got: self.start_put(
                client, client_req, kind, key, value, ctx, pref, write_id, found=got))
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
        clock = version.clock
        op = Operation(self._new_id(), client, client_req, kind, key, needed, pref, targets,
                       version=version)
        self.pending[op.req_id] = op
        node.count(f"{kind}s_coordinated")
        node.note(f"{kind} {key!r} as {clock}: targets "
                  + ", ".join(t if h is None else f"{t}(hint for {h})" for t, h in targets.items()))
        for target, hint in targets.items():
            if target == node.id:
                self._write_here(key, version, hint)
                op.acks.add(node.id)
            else:
                node.send(target, ReplicaPut(op.req_id, key, (version,), hint))
        node.set_timer(node.config.request_timeout_s, RequestTimeout(op.req_id))
        self._progress(op)

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
        if op is None or src not in op.targets:
            return  # a late ack for a request already finished: expected, nothing to do
        op.acks.add(src)
        self._progress(op)

    # -- get --------------------------------------------------------------------------------

    def start_get(self, client, client_req, key, pref, then=None) -> None:
        node = self.node
        needed = min(node.config.r, len(pref))
        targets = self.choose_targets(key, pref)
        if then is not None and len(targets) < needed:
            then([])
            return
        if len(targets) < needed:
            self._fail(client, client_req, "get", key, needed, len(targets), False,
                       f"only {len(targets)} replicas believed up")
            return
        op = Operation(self._new_id(), client, client_req, "get", key, needed, pref, targets,
                       then=then)
        self.pending[op.req_id] = op
        node.count("gets_coordinated" if then is None else "lookups")
        for target in targets:
            if target == node.id:
                op.replies[node.id] = self.node.replica.versions_for(key)
            else:
                node.send(target, ReplicaGet(op.req_id, key))
        node.set_timer(node.config.request_timeout_s, RequestTimeout(op.req_id))
        self._progress(op)

    def handle_ReplicaGetReply(self, src, msg) -> None:
        op = self.pending.get(msg.req_id)
        if op is None or src not in op.targets:
            return  # late reply: the get was answered and repaired already
        op.replies[src] = list(msg.versions)
        self._progress(op)

    # -- progress, timeouts, answers ------------------------------------------------------

    def _progress(self, op: Operation) -> None:
        heard = op.heard()
        if not op.answered and len(heard) >= op.needed:
            self._answer(op)
        if len(heard) >= len(op.targets):
            self._finish(op)

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
            kind = KINDS[type(request)]
            self._fail(fwd.client, request.req_id, kind, request.key, 1, 0, kind != "get",
                       f"forwarded to {fwd.target}, which did not answer")
            return
        op = self.pending.get(timer.req_id)
        if op is None:
            return
        silent = [t for t in op.targets if t not in op.heard()]
        for t in silent:
            node.membership.timed_out(t, node.now)
        if not op.answered and not op.retried:
            op.retried = True
            missing = [op.targets[t] or t for t in silent if (op.targets[t] or t) != node.id]
            extra = self.choose_targets(op.key, op.primaries, exclude=set(op.targets),
                                        missing=missing)
            if extra:
                node.note(f"{op.kind} {op.key!r}: no answer from {silent}; trying "
                          + ", ".join(f"{t}(hint for {h})" for t, h in extra.items()))
                op.targets.update(extra)
                for target, hint in extra.items():
                    if op.kind == "get":
                        node.send(target, ReplicaGet(op.req_id, op.key))
                    else:
                        node.send(target, ReplicaPut(op.req_id, op.key, (op.version,), hint))
                node.set_timer(node.config.request_timeout_s, RequestTimeout(op.req_id))
                return
        if not op.answered and op.then is not None:
            self._answer(op)            # a lookup goes on with what it found
        elif not op.answered:
            heard = len(op.heard())
            self._fail(op.client, op.client_req, op.kind, op.key, op.needed, heard,
                       op.kind != "get" and heard > 0, f"no answer from {', '.join(silent)}")
            op.answered = True
        self._finish(op)

    def _answer(self, op: Operation) -> None:
        node = self.node
        op.answered = True
        if op.then is not None:
            op.then([v for _, vs in sorted(op.replies.items()) for v in vs])
            return
        if op.kind == "get":
            merged = node.versioning.reconcile(v for vs in op.replies.values() for v in vs)
            clock = node.versioning.merged_clock(merged)
            context = encode_context(clock, node.config.cluster_key) if merged else None
            reply = ClientReply(op.client_req, "get", op.key, True,
                                values=tuple(v.value for v in distinct_writes(merged)
                                             if not v.deleted),
                                context=context,
                                coordinator=node.id, needed=op.needed, got=len(op.replies),
                                replies=tuple(sorted(op.replies)))
        else:
            reply = ClientReply(op.client_req, op.kind, op.key, True,
                                context=encode_context(op.version.clock, node.config.cluster_key),
                                coordinator=node.id, needed=op.needed, got=len(op.acks),
                                replies=tuple(sorted(op.acks)))
        node.send(op.client, reply)

    def _finish(self, op: Operation) -> None:
        """Everyone answered (or the last timeout fired): read repair, schedule reaping."""
        if self.pending.pop(op.req_id, None) is None:
            return
        node = self.node
        if op.kind == "get" and op.replies and node.config.read_repair:
            self.read_repair(op)
        if (op.kind == "delete" and op.answered
                and all(op.targets.get(p, "x") is None and p in op.acks for p in op.primaries)):
            node.set_timer(node.config.tombstone_grace_s, ReapTick(op.key, op.version.clock))

    def read_repair(self, op: Operation) -> None:
        """Send the reconciled siblings to every primary replica that answered with less."""
        node = self.node
        merged = node.versioning.reconcile(v for vs in op.replies.values() for v in vs)
        want = versions_digest(merged)
        for replica, versions in sorted(op.replies.items()):
            if replica not in op.primaries or op.targets.get(replica) is not None:
                continue
            if versions_digest(node.versioning.reconcile(versions)) == want:
                continue
            node.count("read_repairs")
            node.note(f"read repair of {op.key!r} on {replica}")
            if replica == node.id:
                node.merge_local(op.key, merged)
            else:
                node.send(replica, ReadRepair(op.key, tuple(merged)))

    def _fail(self, client, client_req, kind, key, needed, got, may_have_applied, detail) -> None:
        self.node.count("quorum_failures")
        self.node.send(client, ClientReply(client_req, kind, key, False, coordinator=self.node.id,
                                           error_kind="quorum", error=detail,
                                           may_have_applied=may_have_applied,
                                           needed=needed, got=got))
