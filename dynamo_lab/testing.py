"""One real node on a test bench: feed it one input at a time and check every effect.

:class:`NodeHarness` wraps one :class:`~dynamo_lab.node.Node` (the reference, or one with a
student's parts) and no network: the test hands it a message or a timer, and takes the effects
it answers with off a queue by saying what it expects (``expect_send``, ``expect_timer``). A
test ends with ``expect_nothing_else()``, which fails on any message it did not claim: the
style of h11's ``ConnectionPair`` and of 500 Lines' fake network. Every message and timer
crosses the JSON codec, as in the simulator, so nothing passes here that would break on the
wire::

    h = NodeHarness("A", members=["A", "B", "C"])
    h.deliver("client:x", ClientPut("x#1", "cart", ["book"]))
    puts = h.expect_send(ReplicaPut, count=2)            # to the other two replicas
    h.expect_timer(RequestTimeout)
    h.deliver(puts[0].dst, ReplicaPutAck(puts[0].msg.req_id, "cart"))
    reply = h.expect_send(ClientReply, to="client:x")    # W = 2 reached: the answer
    h.expect_nothing_else()
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable, Optional, Union

from .codec import dumps, loads
from .messages import Note, Send, SetTimer
from .node import Node, NodeConfig, Parts
from .storage import MemoryStore, Store

__all__ = ["NodeHarness", "UnexpectedEffect"]

Kind = Union[type, Callable[[Any], bool]]


class UnexpectedEffect(AssertionError):
    """The node did something the test did not expect, or not what it expected."""


class NodeHarness:
    """One node, its effects queued for the test. ``members``: the cluster it believes in (all
    up, default tokens; it hears nothing from them, so after ``config.suspect_after_s`` it
    suspects them, as a real node would); ``config``, ``parts``, ``store`` and ``seed`` as for a
    cluster's nodes; ``now``: its clock, moved by ``at=`` or :meth:`advance`."""

    def __init__(self, node_id: str = "A", members: Iterable[str] = ("A", "B", "C", "D", "E"),
                 *, config: Optional[NodeConfig] = None, parts: Optional[Parts] = None,
                 store: Optional[Store] = None, seed: int = 1, now: float = 0.0,
                 start: bool = True):
        self.now = now
        self.node = Node(node_id, store or MemoryStore(), random.Random(f"{seed}/{node_id}"),
                         config or NodeConfig(), members=list(members), parts=parts)
        self.sent: list[Send] = []
        self.timers: list[SetTimer] = []
        self.notes: list[str] = []
        if start:
            self._take(self.node.start(now))
            self.timers.clear()          # its periodic timers: not what a test is about
            self.sent.clear()

    # -- inputs ---------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def deliver(self, src: str, msg: Any, *, at: Optional[float] = None) -> None:
        """Hand the node one message from ``src`` (through the wire codec)."""
        self.now = self.now if at is None else at
        self._take(self.node.on_message(src, loads(dumps(msg)), self.now))

    def fire(self, timer: Any, *, at: Optional[float] = None) -> None:
        """Fire one timer the node set (through the wire codec)."""
        self.now = self.now if at is None else at
        self._take(self.node.on_timer(loads(dumps(timer)), self.now))

    def _take(self, effects: list) -> None:
        for eff in effects:
            if isinstance(eff, Send):
                self.sent.append(Send(eff.dst, loads(dumps(eff.msg))))
            elif isinstance(eff, SetTimer):
                self.timers.append(SetTimer(eff.delay_s, loads(dumps(eff.timer))))
            elif isinstance(eff, Note):
                self.notes.append(eff.text)
            else:
                raise UnexpectedEffect(f"{self.node.id} answered with {eff!r}, which is no effect")

    # -- what it did ----------------------------------------------------------------------------

    def expect_send(self, kind: Kind, *, to: Optional[str] = None, count: Optional[int] = None,
                    where: Optional[Callable[[Any], bool]] = None):
        """Take the sent messages of ``kind`` (a message class, or a predicate on the message),
        to ``to`` if given, that satisfy ``where``: exactly ``count`` of them (a list), or,
        without ``count``, exactly one (the :class:`Send` itself). Raises
        :class:`UnexpectedEffect` naming what was sent instead."""
        match = [s for s in self.sent if _is(kind, s.msg) and (to is None or s.dst == to)
                 and (where is None or where(s.msg))]
        want = 1 if count is None else count
        if len(match) != want:
            raise UnexpectedEffect(f"expected {want} {_name(kind)}{f' to {to}' if to else ''}, "
                                   f"{self.node.id} sent {len(match)}; all it sent: "
                                   f"{self._show(self.sent)}")
        for s in match:
            self.sent.remove(s)
        return match[0] if count is None else match

    def expect_timer(self, kind: Kind, *, delay_s: Optional[float] = None) -> SetTimer:
        """Take the one timer of ``kind`` the node set (with ``delay_s`` if given)."""
        match = [t for t in self.timers if _is(kind, t.timer)
                 and (delay_s is None or abs(t.delay_s - delay_s) < 1e-9)]
        if len(match) != 1:
            raise UnexpectedEffect(f"expected one {_name(kind)} timer, {self.node.id} set "
                                   f"{len(match)}; all its timers: {self.timers}")
        self.timers.remove(match[0])
        return match[0]

    def expect_nothing_else(self) -> None:
        """Fail if the node sent a message or set a timer the test did not take."""
        if self.sent or self.timers:
            left = self._show(self.sent) + (f"; timers {self.timers}" if self.timers else "")
            self.sent.clear()
            self.timers.clear()
            raise UnexpectedEffect(f"{self.node.id} also did what the test did not expect: {left}")

    def _show(self, sends: list[Send]) -> str:
        return "[" + ", ".join(f"{s.dst} <- {type(s.msg).__name__}" for s in sends) + "]"


def _is(kind: Kind, msg: Any) -> bool:
    return isinstance(msg, kind) if isinstance(kind, type) else bool(kind(msg))


def _name(kind: Kind) -> str:
    return kind.__name__ if isinstance(kind, type) else "message(s) matching the predicate"
