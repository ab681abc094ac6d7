"""The fault model, the same for both runtimes: one :class:`FaultConfig`, one partition rule.

The simulator's network and each TCP node's transport hold a :class:`LinkFaults` and ask it
two questions about every node-to-node message: is its link cut (:meth:`LinkFaults.cut`), and
if not, what becomes of it (:meth:`LinkFaults.fate`: lost, or the delay of each copy that
arrives). So ``SimCluster(faults=FaultConfig(drop=0.1))`` and
``TcpCluster(faults=FaultConfig(drop=0.1))`` lose messages by the same rule, and
``cluster.partition({"A", "B"}, {"C", "D", "E"})`` cuts the same links on both.

On TCP the model's latency is added to the real network's (on loopback, well under a
millisecond); ``TcpCluster`` starts with :meth:`FaultConfig.none`, which adds nothing.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields
from typing import Iterable, Optional

from .errors import ConfigError

Link = tuple[str, str]


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

    @classmethod
    def none(cls) -> "FaultConfig":
        """No fault and no added latency (what a real network gets by default)."""
        return cls(latency="constant", latency_ms=0.0)

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.__dict__.items())

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "FaultConfig":
        """The inverse of :meth:`to_json`; :class:`ConfigError` naming an unknown knob."""
        known = {f.name for f in fields(cls)}
        if not isinstance(obj, dict) or set(obj) - known:
            raise ConfigError(f"fault settings are a JSON object with keys among {sorted(known)}; "
                              f"got {obj!r}")
        return cls(**obj)

    def clock_offset_s(self, rng: random.Random) -> float:
        """How far one node's clock is off: a draw of uniform(-skew_s, skew_s)."""
        return rng.uniform(-1, 1) * self.skew_s

    def latency_s(self, rng: random.Random) -> float:
        """One draw of a message's latency, in seconds."""
        if self.latency == "constant":
            ms = self.latency_ms
        elif self.latency == "uniform":
            ms = rng.uniform(max(0.0, self.latency_ms - self.jitter_ms),
                             self.latency_ms + self.jitter_ms)
        else:
            ms = self.latency_ms * math.exp(rng.gauss(0.0, self.sigma))
        return ms / 1000.0

    def fate(self, rng: random.Random) -> tuple[float, ...]:
        """What becomes of one message on a faulty link: ``()`` if it is lost, else the delay
        of each copy that arrives (two when it is duplicated). The draws come from ``rng`` in a
        fixed order, so a seeded stream gives the same fates every run."""
        if self.drop and rng.random() < self.drop:
            return ()
        copies = 2 if self.duplicate and rng.random() < self.duplicate else 1
        delays = []
        for _ in range(copies):
            delay = self.latency_s(rng)
            if self.reorder and rng.random() < self.reorder:
                delay += rng.uniform(0, self.reorder_ms / 1000.0)
            delays.append(delay)
        return tuple(delays)


def partition_links(groups: Iterable[Iterable[str]], one_way: bool = False) -> set[Link]:
    """The partition rule: every directed link from a node of one group to a node of another
    is cut; with ``one_way``, only the links leaving the first group."""
    groups = [sorted(set(g)) for g in groups]
    return {(x, y) for i, a in enumerate(groups) for j, b in enumerate(groups)
            if i != j and not (one_way and i != 0) for x in a for y in b}


def describe_partition(groups: Iterable[Iterable[str]], one_way: bool = False) -> str:
    """How a trace names a partition: ``{A,B} | {C,D,E}`` (``->`` when one way)."""
    return (" -> " if one_way else " | ").join("{" + ",".join(sorted(set(g))) + "}"
                                               for g in groups)


class LinkFaults:
    """The faults one network applies now: a :class:`FaultConfig`, the links partitions cut,
    and the endpoints the fault model applies to (``faulty``; None: all of them; a message
    suffers faults only when both its ends are faulty, so client links of the simulator get
    latency alone). ``rng`` is the seeded stream every fate is drawn from."""

    def __init__(self, config: Optional[FaultConfig], rng: random.Random,
                 faulty: Optional[set[str]] = None):
        self.config = config or FaultConfig()
        self.rng = rng
        self.faulty = faulty
        self.blocked: set[Link] = set()
        self.dropped = 0

    def partition(self, groups: Iterable[Iterable[str]], one_way: bool = False) -> None:
        """Cut the links :func:`partition_links` names, on top of those already cut."""
        self.blocked |= partition_links(groups, one_way)

    def heal(self) -> None:
        """Restore every cut link."""
        self.blocked.clear()

    def cut(self, src: str, dst: str) -> bool:
        """Is the link ``src -> dst`` cut? (Counts the messages it stops.)"""
        if (src, dst) in self.blocked:
            self.dropped += 1
            return True
        return False

    def fate(self, src: str, dst: str) -> tuple[float, ...]:
        """:meth:`FaultConfig.fate` of a message ``src -> dst``; on a link the model does not
        apply to, one copy with the model's latency."""
        if self.faulty is not None and not (src in self.faulty and dst in self.faulty):
            return (self.config.latency_s(self.rng),)
        delays = self.config.fate(self.rng)
        if not delays:
            self.dropped += 1
        return delays

    def to_json(self) -> dict:
        return {"blocked": sorted([a, b] for a, b in self.blocked),
                "config": self.config.to_json(),
                "faulty": None if self.faulty is None else sorted(self.faulty),
                "dropped": self.dropped}
