"""The simulator's trace: every send, delivery, drop, timer, crash and client operation, with
its virtual time, as readable lines (``T=12.340 A -> B ReplicaPut(...)``) and in ShiViz's log
format (each event with the vector timestamp of the node where it happened).

ShiViz (https://bestchai.bitbucket.io/shiviz/) parses :meth:`Trace.shiviz` with the regular
expression :data:`SHIVIZ_REGEX`.

It is the trace format of both runtimes: each TCP node writes its events as JSON lines (the
fields of a :class:`TraceEvent`), and :func:`merge_records` makes one :class:`Trace` of them,
so a run on real processes is drawn and exported like a simulated one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from ..codec import decode, encode
from ..messages import quick_init

from ..ring import KeyRange
from ..vclock import VectorClock
from ..versions import Versioned

SHIVIZ_REGEX = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"


def short(x: Any, depth: int = 0) -> str:
    """A compact, deterministic rendering of a message or value for trace lines."""
    if isinstance(x, Versioned):
        body = "<deleted>" if x.deleted else short(x.value, depth + 1)
        return f"{body}@{x.clock}"
    if isinstance(x, VectorClock):
        return str(x)
    if isinstance(x, KeyRange):
        return str(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        if type(x).__name__ == "MemberState":
            return f"{x.node}:{x.status}/{x.generation}.{x.heartbeat}"
        parts = []
        for f in dataclasses.fields(x):
            v = getattr(x, f.name)
            if f.name == "tokens" or (v is None or v == () or v is False) and f.default == v:
                continue
            parts.append(f"{f.name}={short(v, depth + 1)}")
        return f"{type(x).__name__}({', '.join(parts)})"
    if isinstance(x, tuple):
        if len(x) > 6:
            return "[" + ", ".join(short(y, depth + 1) for y in x[:4]) + f", ... {len(x)} items]"
        return "[" + ", ".join(short(y, depth + 1) for y in x) + "]"
    if isinstance(x, str):
        return repr(x) if len(x) <= 48 else repr(x[:44] + "...")
    if isinstance(x, float):
        return f"{x:.3f}"
    text = json.dumps(x, sort_keys=True, separators=(",", ":"), default=str) \
        if isinstance(x, (list, dict)) else repr(x)
    return text if len(text) <= 60 else text[:56] + "...]"


@dataclass(frozen=True)
class TraceEvent:
    """One thing that happened. ``kind`` is one of: send, deliver, drop, timer, note, crash,
    restart, partition, heal, client_start, client_end, join, leave, wipe."""
    seq: int
    time: float
    kind: str
    node: str                # where it happened (the sender for send/drop)
    peer: str = ""           # the other end of a message
    msg: Any = None
    detail: str = ""
    clock: Optional[tuple] = None   # the node's ShiViz vector timestamp after this event

    def line(self) -> str:
        t = f"T={self.time:9.3f}"
        if self.kind == "send":
            return f"{t} {self.node} -> {self.peer} {short(self.msg)}"
        if self.kind == "deliver":
            return f"{t} {self.peer} => {self.node} {short(self.msg)}"
        if self.kind == "drop":
            return f"{t} {self.node} -x {self.peer} {short(self.msg)} [dropped: {self.detail}]"
        if self.kind == "timer":
            return f"{t} {self.node} timer {short(self.msg)}"
        if self.kind == "note":
            return f"{t} {self.node} # {self.detail}"
        return f"{t} {self.node} {self.kind.upper()} {self.detail}".rstrip()

    def mentions(self, key: str) -> bool:
        m = self.msg
        if m is not None and getattr(m, "key", None) == key:
            return True
        inner = getattr(m, "request", None)          # a Forward carries the client's request
        if inner is not None and getattr(inner, "key", None) == key:
            return True
        return key in self.detail if self.detail else False


quick_init(TraceEvent)


class Trace:
    """An append-only list of :class:`TraceEvent` with ShiViz vector timestamps.

    ``limit`` keeps only the most recent events (None keeps all).

    The vector timestamps are worked out when :attr:`events` is first read after new events
    came (most runs never read them: their lines need none), in event order, as they would
    have been as each event happened.
    """

    def __init__(self, enabled: bool = True, limit: Optional[int] = None):
        self.enabled = enabled
        self.limit = limit
        self._events: list[TraceEvent] = []
        # What each of the last events, not yet given its timestamp, carried (a delivery: its
        # send's event). A list beside the events, not pairs: a traced run keeps every event,
        # and every object kept is one more that each of Python's young collections walks.
        self._carried: list[Any] = []
        self._clocks: dict[str, dict[str, int]] = {}
        self._seq = 0

    @property
    def events(self) -> list[TraceEvent]:
        """Every event kept, in order, each with its vector timestamp."""
        if self._carried:
            self._set_clocks()
        return self._events

    def _set_clocks(self) -> None:
        unclocked = self._events[len(self._events) - len(self._carried):]
        for e, carried in zip(unclocked, self._carried):
            if isinstance(carried, TraceEvent):          # a delivery: its send's timestamp
                carried = carried.clock
            object.__setattr__(e, "clock", self._tick(e.node, carried))
        self._carried = []

    def _tick(self, node: str, merge: Optional[Iterable[tuple[str, int]]] = None) -> tuple:
        # Each node's clock is a dict kept in node order (re-sorted only when it learns of a
        # new node), so the timestamp is its items as they are.
        c = self._clocks.get(node)
        if c is None:
            c = self._clocks[node] = {}
        grew = node not in c
        if merge:
            for k, v in merge:
                old = c.get(k)
                if v > (old or 0):
                    c[k] = v
                    grew = grew or old is None
        c[node] = c.get(node, 0) + 1
        if grew:
            c = self._clocks[node] = dict(sorted(c.items()))
        return tuple(c.items())

    def add(self, time: float, kind: str, node: str, peer: str = "", msg: Any = None,
            detail: str = "", carried: Any = None) -> Optional[TraceEvent]:
        """Record an event and return it (a send carries it along: ``carried`` of the delivery
        is the send's event, or a sender's timestamp as (node, count) pairs)."""
        if not self.enabled:
            return None
        self._seq += 1
        event = TraceEvent(self._seq, time, kind, node, peer, msg, detail, None)
        self._events.append(event)
        self._carried.append(carried)
        if self.limit is not None and len(self._events) > self.limit * 2:
            self._set_clocks()                # (what the dropped events did to the clocks stays)
            del self._events[: len(self._events) - self.limit]
        return event

    def lines(self, events: Optional[Iterable[TraceEvent]] = None) -> list[str]:
        return [e.line() for e in (self._events if events is None else events)]

    def text(self) -> str:
        return "\n".join(self.lines()) + ("\n" if self._events else "")

    def shiviz(self) -> str:
        """The trace in ShiViz's format; parse it with :data:`SHIVIZ_REGEX`."""
        out = []
        for e in self.events:
            desc = e.line().split(" ", 2)[-1] if e.kind not in ("send", "deliver") else \
                (f"send {short(e.msg)} to {e.peer}" if e.kind == "send"
                 else f"receive {short(e.msg)} from {e.peer}")
            out.append(desc.replace("\n", " "))
            out.append(f"{e.node} {json.dumps(dict(e.clock or ()), sort_keys=True)}")
        return "\n".join(out) + ("\n" if out else "")

    def about(self, key: str, last: int = 40) -> list[str]:
        """The last ``last`` lines that concern ``key``: the stretch that shows a failure."""
        hits = [e for e in self._events if e.mentions(key)]
        return self.lines(hits[-last:])


def record_line(t: float, kind: str, node: str, peer: str = "", msg: Any = None,
                detail: str = "") -> str:
    """One event as a line of a node's trace file (what :func:`merge_records` reads)."""
    return json.dumps({"t": t, "kind": kind, "node": node, "peer": peer,
                       "msg": None if msg is None else encode(msg), "detail": detail},
                      separators=(",", ":")) + "\n"


def merge_records(records: Iterable[dict], t0: float = 0.0) -> Trace:
    """One :class:`Trace` from events recorded apart (each TCP node writes its own, as
    ``{"t", "kind", "node", "peer", "msg", "detail"}`` with ``msg`` in the JSON codec's form
    and ``t`` the wall-clock time; ``t0`` becomes time 0). Events go in time order, and each
    delivery carries the vector timestamp of the send it matches (the oldest unmatched send
    of an equal message on that link), which is what the simulator's network does."""
    trace = Trace()
    pending: dict[tuple[str, str], list[tuple[Any, Optional[TraceEvent]]]] = {}
    for r in sorted(records, key=lambda r: r["t"]):
        msg = decode(r["msg"]) if r.get("msg") is not None else None
        kind, node, peer = r["kind"], r["node"], r.get("peer", "")
        carried = None
        if kind in ("deliver", "drop"):
            queue = pending.get((peer, node) if kind == "deliver" else (node, peer), [])
            hit = next((i for i, (m, _s) in enumerate(queue) if m == msg), None)
            if hit is not None:
                _msg, sent = queue.pop(hit)
                carried = sent if kind == "deliver" else None
        event = trace.add(r["t"] - t0, kind, node, peer, msg, r.get("detail", ""), carried)
        if kind == "send":
            pending.setdefault((node, peer), []).append((msg, event))
    return trace

