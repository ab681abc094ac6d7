"""The runtime contract: how a runtime drives a sans-I/O node, and how a client request
enters one.

A :class:`~dynamo_lab.node.Node` never touches time, sockets or threads. A runtime hands it
one input at a time with the current time and carries out the effects it answers with
(``Send``, ``SetTimer``, ``Note``). Two runtimes do that, and both are a :class:`Driver`: the
loop below is theirs, and only five hooks differ.

=====================  ===============================  ====================================
hook                   simulator (``sim.NodeHost``)     TCP (``tcp.process.NodeRuntime``)
=====================  ===============================  ====================================
``local_time()``       virtual time + the node's skew   ``time.time()`` + the node's skew
``transmit(dst, msg)``  the modelled network            the transport to a peer, or the HTTP
                                                        request waiting for a client's reply
``call_later(d, fn)``   the event queue                 ``loop.call_later``, handles kept
``record(kind, ...)``   the simulator's ``Trace``       the node's trace file, merged by
                                                        ``TcpCluster.trace()``
``failed(what, exc)``   re-raise: a bug stops the run   log it, count it, keep serving
=====================  ===============================  ====================================

The trace has one format for both (:mod:`dynamo_lab.sim.trace`): ``send``, ``deliver``,
``drop``, ``timer``, ``note``, ... each with its time and node, so a run on real processes is
drawn and exported to ShiViz like a simulated one. Faults are :mod:`dynamo_lab.faults`, the
same model on both.

Client requests: :func:`client_request` builds the message a client's get, put or delete
sends; :func:`client_timeout_s` is how long a client waits for the node it asked;
:func:`no_reply` is the error it gets when that node stays silent.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Optional

from .errors import QuorumError
from .codec import round_trip
from .messages import ClientDelete, ClientGet, ClientPut, Note, Send, SetTimer

def client_request(kind: str, req_id: str, key: Any, value: Any = None,
                   context: Optional[str] = None):
    """The message of a client's ``get`` / ``put`` / ``delete``."""
    if kind == "get":
        return ClientGet(req_id, key)
    if kind == "put":
        return ClientPut(req_id, key, value, context)
    return ClientDelete(req_id, key, context)


def client_timeout_s(config) -> float:
    """How long a client waits for the node it asked: a coordinator gives up on its replicas
    within a few request timeouts (the first round, the stand-ins, a forward's retry), so four
    of them, and a second for the network."""
    return 4 * config.request_timeout_s + 1.0


def no_reply(kind: str, key: str, via: str, why: str) -> QuorumError:
    """The error of a request ``via`` never answered; a put or delete may have applied."""
    return QuorumError(kind, key, 1, 0, kind != "get", f"no reply from {via} ({why})")


class Driver(abc.ABC):
    """Drives one node: its inputs in, its effects out. See the module docstring.

    ``node`` is None while the node is down. ``incarnation`` counts starts and stops: a timer
    set by one incarnation never fires in a later one (a crash loses volatile state, timers
    included). ``wire_check`` sends every timer through the JSON codec first, as the
    simulator does for messages.
    """

    name: str
    node: Any = None
    incarnation: int = 0
    wire_check: bool = False

    # -- the hooks a runtime provides --------------------------------------------------------

    @abc.abstractmethod
    def local_time(self) -> float:
        """The node's clock now (virtual, skewed, or the event loop's)."""

    @abc.abstractmethod
    def transmit(self, dst: str, msg: Any) -> None:
        """Carry out a ``Send`` (and record it)."""

    @abc.abstractmethod
    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``delay_s`` seconds of the node's time (a timer)."""

    @abc.abstractmethod
    def record(self, kind: str, peer: str = "", msg: Any = None, detail: str = "",
               carried: Any = None) -> None:
        """Add an event of this node to the trace."""

    @abc.abstractmethod
    def failed(self, what: str, exc: Exception) -> None:
        """A node step raised ``exc`` (called inside the ``except``: a bare raise re-raises)."""

    def lost(self, src: str, msg: Any, why: str) -> None:
        """A message for this node arrived while it is down (the simulator traces a drop)."""

    # -- the loop ---------------------------------------------------------------------------

    def boot(self, node: Any) -> None:
        """Start ``node`` (new, or rebuilt over the same store after a crash)."""
        self.incarnation += 1
        self.node = node
        self.apply(node.start(self.local_time()))

    def halt(self) -> None:
        """Drop the node object: its volatile state and its pending timers are gone."""
        self.node = None
        self.incarnation += 1

    def deliver(self, src: str, msg: Any, carried: Any = None) -> bool:
        """A message from ``src`` (a node or a client) reaches this node; False if the node is
        down or failed on it."""
        if self.node is None:
            self.lost(src, msg, "node is down")
            return False
        self.record("deliver", src, msg, carried=carried)
        return self.step(f"{type(msg).__name__} from {src}", self.node.on_message, src, msg)

    def fire(self, incarnation: int, timer: Any) -> None:
        """A timer set by ``incarnation`` is due."""
        if self.node is None or incarnation != self.incarnation:
            return
        self.record("timer", msg=timer)
        self.step(f"timer {type(timer).__name__}", self.node.on_timer, timer)

    def step(self, what: str, fn: Callable, *args) -> bool:
        """Run one node call ``fn(*args, now)`` and carry out its effects; False if it raised
        (and :meth:`failed` did not re-raise)."""
        try:
            effects = fn(*args, self.local_time())
        except Exception as exc:
            self.failed(what, exc)
            return False
        self.apply(effects)
        return True

    def apply(self, effects: list) -> None:
        for eff in effects:
            if isinstance(eff, Send):
                self.transmit(eff.dst, eff.msg)
            elif isinstance(eff, SetTimer):
                timer = round_trip(eff.timer) if self.wire_check else eff.timer
                self.call_later(eff.delay_s,
                                lambda t=timer, i=self.incarnation: self.fire(i, t))
            elif isinstance(eff, Note):
                self.record("note", detail=eff.text)
            else:
                raise TypeError(f"unknown effect {eff!r} from node {self.name}")
