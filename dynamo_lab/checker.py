"""Histories of client operations, and the checks of what Dynamo promises.

Dynamo promises little, precisely. After the faults stop and the system has settled:

``acknowledged-write-survives``
    every write the client saw acknowledged is still there, unless a write (or delete) that
    descends it replaced it;
``reads-return-written-values``
    a get only ever returns values some client wrote;
``concurrent-writes-kept-as-siblings``
    acknowledged writes that are concurrent and that nothing later replaced all come back, as
    siblings; none is silently dropped;
``replicas-converge``
    every live replica of a key holds the same siblings;
``deletes-stay-deleted``
    an acknowledged delete is not undone, unless a write concurrent with it (or after it)
    brought the key back;
``writes-applied-once``
    one client write is one version: a retried or duplicated request never leaves two
    versions of the same write (two siblings that are one write) on the replicas.

Each check reports :class:`Violation` objects that name the check, the key and what broke.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from .node.common import versions_digest
from .vclock import VectorClock
from .versions import Versioned, canonical_json, decode_context, reconcile

CHECKS = ("acknowledged-write-survives", "reads-return-written-values",
          "concurrent-writes-kept-as-siblings", "replicas-converge", "deletes-stay-deleted",
          "writes-applied-once")


@dataclass
class OpRecord:
    """One client operation and its outcome, as the checker sees it."""
    id: int
    client: str
    kind: str
    key: str
    value: Any
    start: float
    end: Optional[float] = None
    ok: Optional[bool] = None
    may_have_applied: bool = False
    clock: Optional[VectorClock] = None      # put/delete: the clock of the new version
    read_values: list = field(default_factory=list)
    error: str = ""

    def describe(self) -> str:
        what = {"get": f"get {self.key!r}", "delete": f"delete {self.key!r}",
                "put": f"put {self.key!r}={canonical_json(self.value)[:60]}"}[self.kind]
        out = "ok" if self.ok else ("error: " + self.error if self.ok is False else "in flight")
        clock = f" as {self.clock}" if self.clock is not None else ""
        return f"#{self.id} {self.client} {what}{clock} [{self.start:.3f}..{self.end or 0:.3f}] {out}"


@dataclass(frozen=True)
class Violation:
    check: str
    key: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.check}] key {self.key!r}: {self.detail}"


class History:
    """Everything clients asked and were told, in order."""

    def __init__(self, cluster_key: str):
        self.cluster_key = cluster_key
        self.records: list[OpRecord] = []

    def start(self, client: str, kind: str, key: str, value: Any, now: float) -> OpRecord:
        rec = OpRecord(len(self.records) + 1, client, kind, key, value, now)
        self.records.append(rec)
        return rec

    def end(self, rec: OpRecord, now: float, reply=None, error: Optional[BaseException] = None):
        rec.end = now
        if reply is not None and reply.ok:
            rec.ok = True
            if rec.kind == "get":
                rec.read_values = list(reply.values)
            elif reply.context:
                rec.clock = decode_context(reply.context, self.cluster_key)
        else:
            rec.ok = False
            rec.error = str(error) if error is not None else (reply.error if reply else "")
            rec.may_have_applied = bool(getattr(error, "may_have_applied", False)
                                        or (reply is not None and reply.may_have_applied))

    def keys(self) -> list[str]:
        return sorted({r.key for r in self.records})

    def for_key(self, key: str) -> list[OpRecord]:
        return [r for r in self.records if r.key == key]


def check_history(history: History,
                  replicas: Mapping[str, Mapping[str, list[Versioned]]]) -> list[Violation]:
    """Run every check. ``replicas`` maps each key to what each of its live replicas holds
    (``cluster.replicas(key)``) after healing and settling."""
    out: list[Violation] = []
    by_key: dict[str, list[OpRecord]] = {}
    for r in history.records:
        by_key.setdefault(r.key, []).append(r)
    for key in sorted(by_key):
        out += check_key_history(key, by_key[key], replicas.get(key, {}))
    return out


def check_key_history(key: str, records: list[OpRecord],
                      held: Mapping[str, list[Versioned]]) -> list[Violation]:
    out: list[Violation] = []
    # replicas-converge
    digests = {node: versions_digest(reconcile(vs)) for node, vs in held.items()}
    if len(set(digests.values())) > 1:
        groups: dict[str, list[str]] = {}
        for node, d in sorted(digests.items()):
            groups.setdefault(d, []).append(node)
        shown = "; ".join(f"{','.join(ns)} hold {_show(reconcile(held[ns[0]]))}"
                          for ns in groups.values())
        out.append(Violation("replicas-converge", key, f"replicas disagree: {shown}"))
    final = reconcile(v for vs in held.values() for v in vs)
    final_live = [v for v in final if not v.deleted]
    # writes-applied-once
    for i, v in enumerate(final):
        twins = [w for w in final[i + 1:] if v.same_write(w)]
        if twins:
            out.append(Violation("writes-applied-once", key,
                                 f"write {v.write_id} is held as {1 + len(twins)} versions: "
                                 f"{_show([v] + twins)}"))

    written = {canonical_json(r.value) for r in records if r.kind == "put"}
    # reads-return-written-values
    for r in records:
        if r.kind == "get" and r.ok:
            for v in r.read_values:
                if canonical_json(v) not in written:
                    out.append(Violation("reads-return-written-values", key,
                                         f"{r.describe()} returned {canonical_json(v)[:80]}, "
                                         f"which no client wrote"))
    for v in final_live:
        if canonical_json(v.value) not in written:
            out.append(Violation("reads-return-written-values", key,
                                 f"a replica holds {canonical_json(v.value)[:80]}, never written"))

    acked = [r for r in records if r.kind in ("put", "delete") and r.ok and r.clock is not None]

    # The acknowledged writes no other one replaced (whose clock none strictly descends). Taken
    # from the largest clocks down: if any write replaces r, one already found maximal does
    # (descends is transitive), and only a clock with more events can strictly descend r's.
    top: list[OpRecord] = []
    replaced_ids: set[int] = set()
    for r in sorted(acked, key=lambda r: -r.clock._size):
        size = r.clock._size
        if any(o.clock._size > size and o.clock.descends(r.clock) for o in top):
            replaced_ids.add(id(r))
        else:
            top.append(r)

    def replaced(r: OpRecord) -> bool:
        return id(r) in replaced_ids

    def kept(r: OpRecord, v: Versioned) -> bool:
        """``v`` is ``r`` itself, or a version that replaced it. Equal clocks with different
        values mean two writes were stamped alike and one of them was silently lost."""
        if v.clock != r.clock:
            return v.clock.descends(r.clock)
        same_value = r.kind == "delete" or canonical_json(v.value) == canonical_json(r.value)
        return v.deleted == (r.kind == "delete") and same_value

    maximal = [r for r in acked if not replaced(r)]
    for r in maximal:
        if r.kind == "put":
            if not any(kept(r, v) for v in final):
                out.append(Violation("acknowledged-write-survives", key,
                                     f"{r.describe()} is lost: final siblings {_show(final)}"))
        else:
            back = [v for v in final_live if r.clock.descends(v.clock)]
            if back:
                out.append(Violation("deletes-stay-deleted", key,
                                     f"{r.describe()} was undone: {_show(back)} came back"))
    puts = [r for r in maximal if r.kind == "put"]
    for i, a in enumerate(puts):
        for b in puts[i + 1:]:
            if a.clock.concurrent_with(b.clock):
                missing = [r for r in (a, b) if not any(kept(r, v) for v in final)]
                if missing:
                    out.append(Violation("concurrent-writes-kept-as-siblings", key,
                                         f"concurrent writes {a.describe()} and {b.describe()}: "
                                         f"{len(missing)} missing from {_show(final)}"))
    return out


def _show(versions: Iterable[Versioned]) -> str:
    return "[" + ", ".join(("<tombstone>" if v.deleted else json.dumps(v.value)[:40]) + f"@{v.clock}"
                           for v in versions) + "]"
