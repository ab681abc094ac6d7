"""A deterministic discrete-event simulator: virtual time, one seed, a priority queue.

Everything random flows from one integer seed through named streams
(``random.Random(f"{seed}/{name}")``; string seeding is hashed with SHA-512, so it is the same
on every machine and every ``PYTHONHASHSEED``). Events are ordered by (time, sequence number),
never by anything else, so the same seed gives the same trace byte for byte.

The network model lives in :class:`FaultConfig`: one object holds every knob (latency
distribution, drop, duplicate, reorder, clock skew). Partitions are sets of blocked directed
links, so they can be symmetric or one-way, of any grouping.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Optional

from ..errors import ConfigError
from ..messages import Note, Send, SetTimer, round_trip
from .trace import Trace


@dataclass(frozen=True)
class FaultConfig:
    """Every network and clock fault knob in one place (TigerBeetle's VOPR style).

    latency: "constant", "uniform" (latency_ms +- jitter_ms) or "lognormal" (median latency_ms,
    shape sigma). drop / duplicate / reorder: probabilities per node-to-node message; a
    reordered message is held back an extra uniform(0, reorder_ms). skew_s: each node's clock
    is off by a fixed uniform(-skew_s, skew_s). Client links get latency but no faults.
    """
    latency: str = "lognormal"
    latency_ms: float = 2.0
    jitter_ms: float = 1.0
    sigma: float = 0.4
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_ms: float = 40.0
    skew_s: float = 0.0

    def __post_init__(self):
        if self.latency not in ("constant", "uniform", "lognormal"):
            raise ConfigError("latency must be 'constant', 'uniform' or 'lognormal'")
        for p in ("drop", "duplicate", "reorder"):
            if not 0.0 <= getattr(self, p) <= 1.0:
                raise ConfigError(f"{p} is a probability between 0 and 1")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.skew_s < 0:
            raise ConfigError("latencies, jitter and skew cannot be negative")

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.__dict__.items())


@dataclass(order=True)
class _Event:
    time: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class Simulator:
    """Virtual time and a network of named endpoints.

    An endpoint is any object with ``deliver(src, msg)``; nodes are wrapped by
    :class:`dynamo_lab.cluster.SimHost`. ``wire_check`` pushes every message through the JSON
    codec, so what a receiver gets is exactly what would have crossed a real wire.
    """

    def __init__(self, seed: int, faults: FaultConfig | None = None, *, wire_check: bool = True,
                 trace: bool = True, trace_limit: Optional[int] = None):
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.seed = seed
        self.faults = faults or FaultConfig()
        self.wire_check = wire_check
        self.now = 0.0
        self.trace = Trace(trace, trace_limit)
        self.endpoints: dict[str, Any] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.faulty: set[str] = set()          # endpoints whose links the fault model applies to
        self._queue: list[_Event] = []
        self._seq = 0
        self._net = self.rng("network")
        self.delivered = 0
        self.dropped = 0

    # -- randomness ------------------------------------------------------------------------

    def rng(self, name: str) -> random.Random:
        """A random stream derived from the seed and a name: independent and reproducible."""
        return random.Random(f"{self.seed}/{name}")

    # -- scheduling ------------------------------------------------------------------------

    def schedule(self, delay_s: float, action: Callable[[], None]) -> None:
        if delay_s < 0 or math.isnan(delay_s):
            raise ValueError(f"cannot schedule {delay_s} s in the past")
        self._seq += 1
        heapq.heappush(self._queue, _Event(self.now + delay_s, self._seq, action))

    def step(self) -> bool:
        """Run the next event. False when nothing is left to run."""
        if not self._queue:
            return False
        ev = heapq.heappop(self._queue)
        self.now = ev.time
        ev.action()
        return True

    def run_until(self, t: float, stop: Optional[Callable[[], bool]] = None) -> bool:
        """Run events up to virtual time ``t`` (or until ``stop()`` is true: returns True)."""
        while self._queue and self._queue[0].time <= t:
            self.step()
            if stop is not None and stop():
                return True
        if stop is None or not stop():
            self.now = max(self.now, t)
            return False
        return True

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    # -- network ---------------------------------------------------------------------------

    def add_endpoint(self, name: str, endpoint: Any, faulty: bool = True) -> None:
        self.endpoints[name] = endpoint
        if faulty:
            self.faulty.add(name)

    def partition(self, groups: Iterable[Iterable[str]], one_way: bool = False) -> None:
        """Block every link between different groups (``one_way``: only first -> others)."""
        groups = [sorted(set(g)) for g in groups]
        for i, a in enumerate(groups):
            for j, b in enumerate(groups):
                if i == j or (one_way and i != 0):
                    continue
                for x in a:
                    for y in b:
                        self.blocked.add((x, y))
        self.trace.add(self.now, "partition", "net",
                       detail=(" -> " if one_way else " | ").join("{" + ",".join(g) + "}"
                                                                   for g in groups))

    def heal(self) -> None:
        self.blocked.clear()
        self.trace.add(self.now, "heal", "net", detail="all links restored")

    def _latency(self) -> float:
        f, r = self.faults, self._net
        if f.latency == "constant":
            ms = f.latency_ms
        elif f.latency == "uniform":
            ms = r.uniform(max(0.0, f.latency_ms - f.jitter_ms), f.latency_ms + f.jitter_ms)
        else:
            ms = f.latency_ms * math.exp(r.gauss(0.0, f.sigma))
        return ms / 1000.0

    def send(self, src: str, dst: str, msg: Any) -> None:
        """Put ``msg`` on the network; it arrives (or not) according to the fault model."""
        carried = self.trace.add(self.now, "send", src, dst, msg)
        if self.wire_check:
            msg = round_trip(msg)
        if (src, dst) in self.blocked:
            self._drop(src, dst, msg, "partition")
            return
        if dst not in self.endpoints:
            self._drop(src, dst, msg, "no such node")
            return
        f = self.faults
        faulty = src in self.faulty and dst in self.faulty
        if faulty and f.drop and self._net.random() < f.drop:
            self._drop(src, dst, msg, "lost")
            return
        copies = 2 if faulty and f.duplicate and self._net.random() < f.duplicate else 1
        for _ in range(copies):
            delay = self._latency()
            if faulty and f.reorder and self._net.random() < f.reorder:
                delay += self._net.uniform(0, f.reorder_ms / 1000.0)
            self.schedule(delay, lambda m=msg: self._arrive(src, dst, m, carried))

    def _arrive(self, src: str, dst: str, msg: Any, carried) -> None:
        if (src, dst) in self.blocked:
            self._drop(src, dst, msg, "partition")
            return
        ep = self.endpoints.get(dst)
        if ep is None:
            self._drop(src, dst, msg, "no such node")
            return
        ep.deliver(src, msg, carried)

    def _drop(self, src: str, dst: str, msg: Any, why: str) -> None:
        self.dropped += 1
        self.trace.add(self.now, "drop", src, dst, msg, detail=why)


class NodeHost:
    """Runs one sans-I/O node inside the simulator: delivers messages and timers to it and
    carries out its effects. A crash drops the node object (volatile state) and keeps the store
    (the disk); timers set before a crash never fire after it."""

    def __init__(self, sim: Simulator, name: str, make_node: Callable[[int], Any], skew_s: float):
        self.sim = sim
        self.name = name
        self.make_node = make_node
        self.skew_s = skew_s
        self.incarnation = 0
        self.node = None
        self.stopped = False

    @property
    def alive(self) -> bool:
        return self.node is not None

    def local_time(self) -> float:
        return self.sim.now + self.skew_s

    def boot(self) -> None:
        self.incarnation += 1
        self.node = self.make_node(self.incarnation)
        self._apply(self.node.start(self.local_time()))

    def crash(self) -> None:
        self.node = None
        self.incarnation += 1
        self.sim.trace.add(self.sim.now, "crash", self.name, detail="volatile state lost; store kept")

    def deliver(self, src: str, msg: Any, carried=None) -> None:
        if self.node is None:
            self.sim._drop(src, self.name, msg, "node is down")
            return
        self.sim.delivered += 1
        self.sim.trace.add(self.sim.now, "deliver", self.name, src, msg, carried=carried)
        self._apply(self.node.on_message(src, msg, self.local_time()))

    def _fire(self, incarnation: int, timer: Any) -> None:
        if self.node is None or incarnation != self.incarnation:
            return
        self.sim.trace.add(self.sim.now, "timer", self.name, msg=timer)
        self._apply(self.node.on_timer(timer, self.local_time()))

    def _apply(self, effects: list) -> None:
        for eff in effects:
            if isinstance(eff, Send):
                self.sim.send(self.name, eff.dst, eff.msg)
            elif isinstance(eff, SetTimer):
                inc = self.incarnation
                if self.sim.wire_check:
                    eff = replace(eff, timer=round_trip(eff.timer))
                self.sim.schedule(eff.delay_s, lambda t=eff.timer, i=inc: self._fire(i, t))
            elif isinstance(eff, Note):
                self.sim.trace.add(self.sim.now, "note", self.name, detail=eff.text)
            else:
                raise TypeError(f"unknown effect {eff!r} from node {self.name}")
