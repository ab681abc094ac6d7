"""A deterministic discrete-event simulator: virtual time, one seed, a priority queue.

Everything random flows from one integer seed through named streams
(``random.Random(f"{seed}/{name}")``; string seeding is hashed with SHA-512, so it is the same
on every machine and every ``PYTHONHASHSEED``). Events are ordered by (time, sequence number),
never by anything else, so the same seed gives the same trace byte for byte.

The network model is :mod:`dynamo_lab.faults`, shared with the TCP runtime: a
:class:`~dynamo_lab.faults.FaultConfig` holds every knob (latency distribution, per-leg latency
mixtures such as the PBS paper's LNKD-SSD and LNKD-DISK, drop, duplicate, reorder, clock skew),
and partitions are sets of cut directed links, so they can be symmetric or
one-way, of any grouping.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import math
import random
from typing import Any, Callable, Iterable, Optional

from ..errors import ConfigError
from ..faults import FaultConfig, LinkFaults, describe_partition
from ..runtime import Driver
from .trace import Trace
from .wire_copies import WireCopies


class Simulator:
    """Virtual time and a network of named endpoints.

    An endpoint is any object with ``deliver(src, msg)``; nodes are wrapped by
    :class:`NodeHost`. ``wire_check`` pushes every message through the JSON
    codec, so what a receiver gets is exactly what would have crossed a real wire (identical
    bytes are decoded once: :class:`~dynamo_lab.sim.wire_copies.WireCopies`).
    """

    def __init__(self, seed: int, faults: FaultConfig | None = None, *, wire_check: bool = True,
                 trace: bool = True, trace_limit: Optional[int] = None):
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        self.seed = seed
        self.wire_check = wire_check
        self._wire = WireCopies()
        self.now = 0.0
        self.trace = Trace(trace, trace_limit)
        self.endpoints: dict[str, Any] = {}
        # faulty: the endpoints whose links the fault model applies to (nodes, not clients)
        self.net = LinkFaults(faults, self.rng("network"), faulty=set())
        # (time, sequence, action): tuples compare in C, and the sequence number is unique, so
        # the action is never compared
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
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
        heapq.heappush(self._queue, (self.now + delay_s, self._seq, action))

    def step(self) -> bool:
        """Run the next event. False when nothing is left to run."""
        if not self._queue:
            return False
        self.now, _, action = heapq.heappop(self._queue)
        action()
        return True

    def run_until(self, t: float, stop: Optional[Callable[[], bool]] = None) -> bool:
        """Run events up to virtual time ``t`` (or until ``stop()`` is true: returns True)."""
        queue, pop = self._queue, heapq.heappop
        with _few_full_collections():
            while queue and queue[0][0] <= t:
                self.now, _, action = pop(queue)
                action()
                if stop is not None and stop():
                    return True
        if stop is None or not stop():
            self.now = max(self.now, t)
            return False
        return True

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    # -- network ---------------------------------------------------------------------------

    @property
    def faults(self) -> FaultConfig:
        """The fault model in force (set it to change the network from now on)."""
        return self.net.config

    @faults.setter
    def faults(self, config: FaultConfig) -> None:
        self.net.config = config

    def add_endpoint(self, name: str, endpoint: Any, faulty: bool = True) -> None:
        self.endpoints[name] = endpoint
        if faulty:
            self.net.faulty.add(name)

    def partition(self, groups: Iterable[Iterable[str]], one_way: bool = False) -> None:
        """Cut every link between different groups (``one_way``: only first -> others)."""
        groups = [sorted(set(g)) for g in groups]
        self.net.partition(groups, one_way)
        self.trace.add(self.now, "partition", "net", detail=describe_partition(groups, one_way))

    def heal(self) -> None:
        self.net.heal()
        self.trace.add(self.now, "heal", "net", detail="all links restored")

    def send(self, src: str, dst: str, msg: Any) -> None:
        """Put ``msg`` on the network; it arrives (or not) according to the fault model."""
        carried = self.trace.add(self.now, "send", src, dst, msg)
        if self.wire_check:
            msg = self._wire(msg)
        if self.net.cut(src, dst):
            self._drop(src, dst, msg, "partition")
            return
        if dst not in self.endpoints:
            self._drop(src, dst, msg, "no such node")
            return
        delays = self.net.fate(src, dst, msg)
        if not delays:
            self._drop(src, dst, msg, "lost")
        for delay in delays:         # (schedule's work, inline: a delay is never negative)
            self._seq += 1
            heapq.heappush(self._queue, (self.now + delay, self._seq,
                                         lambda m=msg: self._arrive(src, dst, m, carried)))

    def _arrive(self, src: str, dst: str, msg: Any, carried) -> None:
        if self.net.cut(src, dst):
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


#: While the simulator runs, a full collection of the cyclic garbage collector waits for this
#: many collections of the middle generation (Python's default is 10)...
FULL_COLLECTION_EVERY = 1000
#: ... and a young collection for this many new container objects (Python's default is 700).
YOUNG_COLLECTION_EVERY = 100_000


@contextlib.contextmanager
def _few_full_collections():
    """Run with fewer collections; Python's thresholds are restored afterwards.

    A run keeps everything it traces (about 100,000 events and their messages per 3,000
    client operations), all of it alive to the end. Python collects its oldest generation
    each time that generation has grown by a quarter, walking every live object again: a
    third of a traced run went into those walks. A step makes and drops dozens of objects (a
    message, its effects, a closure on the queue), which reference counting frees; they have
    no cycles for the collector to find, yet a young collection every 700 of them walked
    those still in flight and moved them to an older generation, to be walked again."""
    before = gc.get_threshold()
    if before[2] >= FULL_COLLECTION_EVERY:        # tuned already (or a run inside a run)
        yield
        return
    gc.set_threshold(max(before[0], YOUNG_COLLECTION_EVERY), before[1], FULL_COLLECTION_EVERY)
    try:
        yield
    finally:
        gc.set_threshold(*before)


class NodeHost(Driver):
    """Runs one sans-I/O node inside the simulator (the :class:`~dynamo_lab.runtime.Driver`
    hooks on virtual time and the modelled network). A crash drops the node object (volatile
    state) and keeps the store (the disk); timers set before a crash never fire after it. A
    node that raises stops the run: in the simulator that is a bug to see, not to survive."""

    def __init__(self, sim: Simulator, name: str, make_node: Callable[[int], Any], skew_s: float):
        self.sim = sim
        self.name = name
        self.make_node = make_node
        self.skew_s = skew_s

    @property
    def wire_check(self) -> bool:
        """The simulator's: timers go through the codec whenever its messages do."""
        return self.sim.wire_check

    @property
    def alive(self) -> bool:
        return self.node is not None

    def boot(self) -> None:
        super().boot(self.make_node(self.incarnation + 1))

    def crash(self) -> None:
        self.halt()
        self.sim.trace.add(self.sim.now, "crash", self.name, detail="volatile state lost; store kept")

    # -- the Driver hooks ------------------------------------------------------------------

    def local_time(self) -> float:
        return self.sim.now + self.skew_s

    def transmit(self, dst: str, msg: Any) -> None:
        self.sim.send(self.name, dst, msg)

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        self.sim.schedule(delay_s, callback)

    def record(self, kind: str, peer: str = "", msg: Any = None, detail: str = "",
               carried: Any = None) -> None:
        if kind == "deliver":
            self.sim.delivered += 1
        self.sim.trace.add(self.sim.now, kind, self.name, peer, msg, detail=detail,
                           carried=carried)

    def failed(self, what: str, exc: Exception) -> None:
        raise

    def lost(self, src: str, msg: Any, why: str) -> None:
        self.sim._drop(src, self.name, msg, why)
