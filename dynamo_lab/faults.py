"""The fault model, the same for both runtimes: one :class:`FaultConfig`, one partition rule.

The simulator's network and each TCP node's transport hold a :class:`LinkFaults` and ask it
two questions about every node-to-node message: is its link cut (:meth:`LinkFaults.cut`), and
if not, what becomes of it (:meth:`LinkFaults.fate`: lost, or the delay of each copy that
arrives). So ``SimCluster(faults=FaultConfig(drop=0.1))`` and
``TcpCluster(faults=FaultConfig(drop=0.1))`` lose messages by the same rule, and
``cluster.partition({"A", "B"}, {"C", "D", "E"})`` cuts the same links on both.

On TCP the model's latency is added to the real network's (on loopback, well under a
millisecond); ``TcpCluster`` starts with :meth:`FaultConfig.none`, which adds nothing.

**Latency.** Every message's latency is one draw of the base distribution (``latency``:
constant, uniform or lognormal), unless it is one of the four *legs* of a request, as the PBS
paper's WARS model names them (Bailis et al., VLDB 2012, section 5), and ``legs`` gives that leg
a distribution of its own:

========  ==========================  ==========================================
leg       message                     what it carries
========  ==========================  ==========================================
write     ``ReplicaPut``              a coordinator's write to a replica
ack       ``ReplicaPutAck``           the replica's acknowledgement
read      ``ReplicaGet``              a coordinator's read request
response  ``ReplicaGetReply``         the replica's answer
========  ==========================  ==========================================

A leg's distribution is a *mixture*: weighted components, each ``(weight, kind, *params)`` in
milliseconds (``constant`` ms; ``uniform`` lo, hi; ``lognormal`` median, sigma; ``pareto``
x_m, alpha; ``exponential`` lambda per ms), or the name of one in :data:`MIXTURES`.
:meth:`FaultConfig.preset` gives the paper's fitted production latencies by name
(:data:`PRESETS`: ``LNKD-SSD``, ``LNKD-DISK``), with every other message instant, so that a
measurement sees the four legs alone. Without ``legs`` (the default) nothing changes: the same
draws in the same order, the same traces. Per-leg latencies are the simulator's: the TCP
transport applies the base latency to every message.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Optional

from .errors import ConfigError

Link = tuple[str, str]

#: The legs of a request (the WARS model's W, A, R, S) and the message each one is.
LEGS = {"write": "ReplicaPut", "ack": "ReplicaPutAck", "read": "ReplicaGet",
        "response": "ReplicaGetReply"}
_LEG_OF = {message: leg for leg, message in LEGS.items()}

#: Named latency mixtures, in ms: ``(weight, kind, *params)`` components. The LNKD ones are
#: Bailis et al.'s fits to LinkedIn's production latencies (PBS, VLDB 2012, Table 3).
MIXTURES: dict[str, tuple[tuple, ...]] = {
    "LNKD-SSD": ((0.9122, "pareto", 0.235, 10.0), (0.0878, "exponential", 1.66)),
    "LNKD-DISK-WRITE": ((0.38, "pareto", 1.05, 1.51), (0.62, "exponential", 0.183)),
}

#: Named presets of the four legs. LNKD-DISK: the write leg waits for a spinning disk; its
#: ack, read and response legs are LNKD-SSD's (the paper's Table 3).
PRESETS: dict[str, dict[str, str]] = {
    "LNKD-SSD": {"write": "LNKD-SSD", "ack": "LNKD-SSD", "read": "LNKD-SSD",
                 "response": "LNKD-SSD"},
    "LNKD-DISK": {"write": "LNKD-DISK-WRITE", "ack": "LNKD-SSD", "read": "LNKD-SSD",
                  "response": "LNKD-SSD"},
}

_KINDS = {"constant": 1, "uniform": 2, "lognormal": 2, "pareto": 2, "exponential": 1}


def leg_of(msg) -> Optional[str]:
    """The leg a message is (``write``, ``ack``, ``read``, ``response``), or None."""
    return _LEG_OF.get(type(msg).__name__)


def _mixture(spec, leg: str) -> tuple[tuple, ...]:
    """A leg's distribution as a tuple of ``(weight, kind, *params)`` components, checked."""
    if isinstance(spec, str):
        if spec not in MIXTURES:
            raise ConfigError(f"no latency mixture {spec!r}; the named ones are "
                              f"{sorted(MIXTURES)}")
        spec = MIXTURES[spec]
    try:
        parts = tuple(tuple(c) for c in spec)
    except TypeError:
        raise ConfigError(f"the {leg} leg's latency is a mixture name or a list of "
                          f"(weight, kind, *params) components; got {spec!r}") from None
    out = []
    for c in parts:
        if len(c) < 2 or c[1] not in _KINDS or len(c) != 2 + _KINDS[c[1]]:
            raise ConfigError(f"a latency component is (weight, kind, *params) with kind one of "
                              f"{ {k: n for k, n in _KINDS.items()} } (that many params); "
                              f"got {c!r} for the {leg} leg")
        weight, kind, *params = c
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in [weight, *params]):
            raise ConfigError(f"latency weights and parameters are numbers; got {c!r}")
        if weight <= 0 or any(x < 0 for x in params) or (kind in ("pareto", "exponential")
                                                         and min(params) <= 0):
            raise ConfigError(f"latency weights are > 0 and parameters >= 0 (> 0 for pareto "
                              f"and exponential); got {c!r}")
        out.append((float(weight), kind, *(float(x) for x in params)))
    if not out or abs(sum(c[0] for c in out) - 1.0) > 1e-6:
        raise ConfigError(f"the weights of the {leg} leg's components sum to 1; got {spec!r}")
    return tuple(out)


def draw_ms(mixture: tuple[tuple, ...], rng: random.Random) -> float:
    """One draw of a mixture, in ms: a component by weight, then one draw of it."""
    u, acc = rng.random(), 0.0
    weight, kind, *p = mixture[-1]
    for component in mixture:
        acc += component[0]
        if u < acc:
            weight, kind, *p = component
            break
    if kind == "constant":
        return p[0]
    if kind == "uniform":
        return rng.uniform(p[0], p[1])
    if kind == "lognormal":
        return p[0] * math.exp(rng.gauss(0.0, p[1]))
    if kind == "pareto":
        return p[0] / (1.0 - rng.random()) ** (1.0 / p[1])
    return rng.expovariate(p[0])


@dataclass(frozen=True)
class FaultConfig:
    """Every network and clock fault knob in one place (TigerBeetle's VOPR style).

    latency: "constant", "uniform" (latency_ms +- jitter_ms) or "lognormal" (median latency_ms,
    shape sigma). legs: leg -> its own latency distribution (a mixture or a mixture's name),
    for the four legs of a request (see the module docstring); every other message takes the
    base latency. drop / duplicate / reorder: probabilities per node-to-node message; a
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
    legs: tuple = ()

    def __post_init__(self):
        # Kept as sorted (leg, components) pairs, so equality, repr and JSON are canonical.
        legs = self.legs.items() if isinstance(self.legs, dict) else self.legs
        try:
            pairs = [(leg, spec) for leg, spec in legs]
        except (TypeError, ValueError):
            raise ConfigError(f"legs maps legs ({', '.join(LEGS)}) to latency mixtures; "
                              f"got {self.legs!r}") from None
        unknown = [leg for leg, _ in pairs if leg not in LEGS]
        if unknown or len({leg for leg, _ in pairs}) != len(pairs):
            raise ConfigError(f"legs names each of {list(LEGS)} at most once; got "
                              f"{[leg for leg, _ in pairs]}")
        object.__setattr__(self, "legs", tuple(sorted((leg, _mixture(spec, leg))
                                                      for leg, spec in pairs)))
        object.__setattr__(self, "_by_leg", dict(self.legs))
        if self.latency not in ("constant", "uniform", "lognormal"):
            raise ConfigError("latency must be 'constant', 'uniform' or 'lognormal'")
        for p in ("latency_ms", "jitter_ms", "sigma", "drop", "duplicate", "reorder",
                  "reorder_ms", "skew_s"):
            x = getattr(self, p)
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise ConfigError(f"{p} is a finite number; got {x!r}")
        for p in ("drop", "duplicate", "reorder"):
            if not 0.0 <= getattr(self, p) <= 1.0:
                raise ConfigError(f"{p} is a probability between 0 and 1")
        if min(self.latency_ms, self.jitter_ms, self.sigma, self.reorder_ms, self.skew_s) < 0:
            raise ConfigError("latencies, jitter, sigma, reorder_ms and skew cannot be negative")

    @classmethod
    def none(cls) -> "FaultConfig":
        """No fault and no added latency (what a real network gets by default)."""
        return cls(latency="constant", latency_ms=0.0)

    @classmethod
    def preset(cls, name: str, **knobs) -> "FaultConfig":
        """A named latency model (:data:`PRESETS`): the paper's fitted mixtures on the four
        legs, every other message instant; ``knobs`` set other fields (``drop=0.01``...).
        Raises :class:`ConfigError` naming the presets."""
        if name not in PRESETS:
            raise ConfigError(f"no latency preset {name!r}; the presets are {sorted(PRESETS)}")
        knobs = {"latency": "constant", "latency_ms": 0.0, **knobs}
        return cls(legs=PRESETS[name], **knobs)

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                         if f.name != "legs" or self.legs)

    def to_json(self) -> dict:
        out = asdict(self)
        out["legs"] = [[leg, [list(c) for c in mix]] for leg, mix in self.legs]
        return out

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

    def latency_s(self, rng: random.Random, leg: Optional[str] = None) -> float:
        """One draw of a message's latency, in seconds (of ``leg``'s own distribution when
        ``legs`` gives it one)."""
        if leg is not None:
            mixture = self._by_leg.get(leg)
            if mixture is not None:
                return draw_ms(mixture, rng) / 1000.0
        if self.latency == "lognormal":
            ms = self.latency_ms * math.exp(rng.gauss(0.0, self.sigma))
        elif self.latency == "constant":
            ms = self.latency_ms
        else:
            ms = rng.uniform(max(0.0, self.latency_ms - self.jitter_ms),
                             self.latency_ms + self.jitter_ms)
        return ms / 1000.0

    def fate(self, rng: random.Random, leg: Optional[str] = None) -> tuple[float, ...]:
        """What becomes of one message on a faulty link: ``()`` if it is lost, else the delay
        of each copy that arrives (two when it is duplicated). The draws come from ``rng`` in a
        fixed order, so a seeded stream gives the same fates every run. ``leg``: which leg of
        a request the message is (:func:`leg_of`), for its latency."""
        if self.drop and rng.random() < self.drop:
            return ()
        if self.duplicate and rng.random() < self.duplicate:
            first = self._copy_delay(rng, leg)
            return (first, self._copy_delay(rng, leg))
        return (self._copy_delay(rng, leg),)

    def _copy_delay(self, rng: random.Random, leg: Optional[str]) -> float:
        """The delay of one copy of a message: its latency, and a hold-back when reordered."""
        delay = self.latency_s(rng, leg)
        if self.reorder and rng.random() < self.reorder:
            delay += rng.uniform(0, self.reorder_ms / 1000.0)
        return delay


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

    def fate(self, src: str, dst: str, msg: Any = None) -> tuple[float, ...]:
        """:meth:`FaultConfig.fate` of a message ``src -> dst``; on a link the model does not
        apply to, one copy with the model's latency. ``msg`` (when given) picks its leg's
        latency, if the config has per-leg latencies."""
        leg = leg_of(msg) if msg is not None and self.config.legs else None
        if self.faulty is not None and not (src in self.faulty and dst in self.faulty):
            return (self.config.latency_s(self.rng, leg),)
        delays = self.config.fate(self.rng, leg)
        if not delays:
            self.dropped += 1
        return delays

    def to_json(self) -> dict:
        return {"blocked": sorted([a, b] for a, b in self.blocked),
                "config": self.config.to_json(),
                "faulty": None if self.faulty is None else sorted(self.faulty),
                "dropped": self.dropped}
