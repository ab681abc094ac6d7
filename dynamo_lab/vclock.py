"""Vector clocks: how Dynamo tells "this version replaces that one" from "these two conflict"
(the paper, section 4.4).

A vector clock is a list of ``(node, counter)`` pairs. The coordinator of a write increments its
own counter. Clock ``a`` *descends* clock ``b`` when every counter of ``b`` is at most the
matching counter of ``a``: then ``a``'s version saw ``b``'s and may replace it. When neither
descends the other the two versions are *concurrent* and both must be kept as siblings until a
client reconciles them.

Rules of this module:

* clocks are immutable and hashable; every operation returns a new clock;
* identity (``==`` and ``hash``) is the counters only. Each entry also carries the time its
  counter was last set, used only to decide which entries truncation drops first;
* vector clocks are a *partial* order, so ``<``, ``<=``, ``>``, ``>=`` raise ``TypeError``: use
  :meth:`VectorClock.descends` or :meth:`VectorClock.compare`, whose answers include
  ``CONCURRENT``;
* everything iterates in sorted node order, so output never depends on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Iterator, Mapping, Union

from .errors import ClientError

__all__ = ["Order", "VectorClock", "EMPTY", "DEFAULT_TRUNCATE_THRESHOLD"]

#: The paper's threshold: "when the number of (node, counter) pairs reaches a threshold (say 10)".
DEFAULT_TRUNCATE_THRESHOLD = 10

_PARTIAL_ORDER = ("vector clocks are only partially ordered; "
                  "use a.descends(b) or a.compare(b)")

Entry = Union[int, "tuple[int, float]"]


class Order(enum.Enum):
    """How clock ``a`` relates to clock ``b`` in ``a.compare(b)``."""

    BEFORE = "before"          # b strictly descends a: a's version is obsolete
    AFTER = "after"            # a strictly descends b: b's version is obsolete
    EQUAL = "equal"            # same counters: the same version
    CONCURRENT = "concurrent"  # neither descends the other: siblings, keep both


def _check_node(node: object) -> str:
    if not isinstance(node, str) or node == "":
        raise ClientError(f"a vector clock entry needs a non-empty string node id; got "
                          f"{type(node).__name__} {node!r}")
    return node


def _check_counter(node: str, counter: object) -> int:
    if type(counter) is not int or counter < 1:
        raise ClientError(f"the counter of node {node!r} must be an int >= 1; got "
                          f"{type(counter).__name__} {counter!r} (absent nodes count as 0: "
                          f"leave them out)")
    return counter


def _check_time(what: str, t: object) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise ClientError(f"{what} must be a finite number of seconds; got "
                          f"{type(t).__name__} {t!r}")
    return float(t)


class VectorClock:
    """An immutable vector clock: node id -> (counter >= 1, timestamp).

    ``VectorClock({"A": 2, "B": 1})`` or, with timestamps, ``VectorClock({"A": (2, 12.5)})``
    (a bare counter gets timestamp 0.0). Raises :class:`~dynamo_lab.errors.ClientError` (a
    ``ValueError``) for a node id that is not a non-empty string or a counter that is not an
    ``int`` >= 1 (``bool`` is rejected).
    """

    __slots__ = ("_counters", "_stamps", "_key", "_hash")

    def __init__(self, entries: Mapping[str, Entry] | VectorClock | None = None):
        counters: dict[str, int] = {}
        stamps: dict[str, float] = {}
        if isinstance(entries, VectorClock):
            counters, stamps = dict(entries._counters), dict(entries._stamps)
        elif entries is not None:
            if not isinstance(entries, Mapping):
                raise ClientError(f"a vector clock is built from a mapping node -> counter, e.g. "
                                  f"VectorClock({{'A': 2}}); got {type(entries).__name__}")
            for node in sorted(entries, key=lambda n: (not isinstance(n, str), str(n))):
                _check_node(node)
                entry = entries[node]
                if isinstance(entry, (tuple, list)):
                    if len(entry) != 2:
                        raise ClientError(f"entry of node {node!r} must be a counter or a "
                                          f"(counter, timestamp) pair; got {entry!r}")
                    counter, stamp = entry
                    stamps[node] = _check_time(f"the timestamp of node {node!r}", stamp)
                else:
                    counter = entry
                    stamps[node] = 0.0
                counters[node] = _check_counter(node, counter)
        self._init(counters, stamps)

    def _init(self, counters: dict[str, int], stamps: dict[str, float]) -> None:
        # Sorted once here so that every dict this clock hands out is in node order.
        nodes = sorted(counters)
        set_ = object.__setattr__
        set_(self, "_counters", {n: counters[n] for n in nodes})
        set_(self, "_stamps", {n: stamps[n] for n in nodes})
        set_(self, "_key", tuple((n, counters[n]) for n in nodes))
        set_(self, "_hash", hash(self._key))

    @classmethod
    def _make(cls, counters: dict[str, int], stamps: dict[str, float]) -> VectorClock:
        """Build from already-validated dicts (internal: skips validation)."""
        clock = cls.__new__(cls)
        clock._init(counters, stamps)
        return clock

    # -- reading ---------------------------------------------------------------------------

    def get(self, node: str) -> int:
        """The counter of ``node``; 0 when the clock has no entry for it."""
        return self._counters.get(node, 0)

    __getitem__ = get

    def counters(self) -> dict[str, int]:
        """A new dict node -> counter, sorted by node id."""
        return dict(self._counters)

    def timestamp(self, node: str) -> float:
        """When ``node``'s counter was last set (0.0 when absent). Used only by truncation."""
        return self._stamps.get(node, 0.0)

    @property
    def nodes(self) -> tuple[str, ...]:
        """The node ids with an entry, sorted."""
        return tuple(self._counters)

    def __len__(self) -> int:
        return len(self._counters)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._counters))

    def __contains__(self, node: object) -> bool:
        return node in self._counters

    def __bool__(self) -> bool:
        return bool(self._counters)

    # -- the operations of the paper -------------------------------------------------------

    def increment(self, node: str, now: float = 0.0) -> VectorClock:
        """The clock a coordinator ``node`` stamps on a new write: its counter + 1, time ``now``.

        Raises :class:`ClientError` for a bad node id or a non-finite ``now``.
        """
        _check_node(node)
        now = _check_time("now", now)
        counters, stamps = dict(self._counters), dict(self._stamps)
        counters[node] = counters.get(node, 0) + 1
        stamps[node] = now
        return VectorClock._make(counters, stamps)

    def merge(self, other: VectorClock) -> VectorClock:
        """The least clock that descends both: pointwise max of the counters.

        Each entry keeps the timestamp that came with the larger counter (the larger timestamp
        on a tie), so merging is commutative, associative and idempotent, timestamps included.
        """
        _check_clock(other, "merge")
        counters, stamps = dict(self._counters), dict(self._stamps)
        for node, c in other._counters.items():
            t = other._stamps[node]
            mine = counters.get(node, 0)
            if c > mine:
                counters[node], stamps[node] = c, t
            elif c == mine:
                stamps[node] = max(stamps[node], t)
        return VectorClock._make(counters, stamps)

    def descends(self, other: VectorClock) -> bool:
        """True when every counter of ``other`` is <= the same counter here.

        A clock descends itself; the empty clock is descended by every clock.
        """
        _check_clock(other, "descends")
        mine = self._counters
        return all(mine.get(n, 0) >= c for n, c in other._counters.items())

    def compare(self, other: VectorClock) -> Order:
        """Where this clock stands relative to ``other``.

        ``BEFORE``: ``other`` strictly descends this one. ``AFTER``: this one strictly descends
        ``other``. ``EQUAL``: same counters. ``CONCURRENT``: neither descends the other.
        """
        ge, le = self.descends(other), other.descends(self)
        if ge and le:
            return Order.EQUAL
        if ge:
            return Order.AFTER
        if le:
            return Order.BEFORE
        return Order.CONCURRENT

    def concurrent_with(self, other: VectorClock) -> bool:
        """True when neither clock descends the other (the versions are siblings)."""
        return self.compare(other) is Order.CONCURRENT

    def truncate(self, threshold: int = DEFAULT_TRUNCATE_THRESHOLD) -> VectorClock:
        """Keep at most ``threshold`` entries, dropping the oldest by timestamp (ties: node id).

        This is the paper's scheme for bounding clock size. The original always descends the
        result. The price, as the paper notes, is that a truncated clock can later look
        concurrent with (or older than) a version it actually descends. Raises
        :class:`ClientError` unless ``threshold`` is an ``int`` >= 1.
        """
        if type(threshold) is not int or threshold < 1:
            raise ClientError(f"truncate threshold must be an int >= 1; got {threshold!r}")
        if len(self._counters) <= threshold:
            return self
        by_age = sorted(self._counters, key=lambda n: (self._stamps[n], n))
        keep = by_age[len(by_age) - threshold:]
        return VectorClock._make({n: self._counters[n] for n in keep},
                                 {n: self._stamps[n] for n in keep})

    # -- wire form -------------------------------------------------------------------------

    def to_json(self) -> dict[str, list]:
        """``{node: [counter, timestamp]}`` in node order; :meth:`from_json` reads it back."""
        return {n: [c, self._stamps[n]] for n, c in self._counters.items()}

    @classmethod
    def from_json(cls, obj: Any) -> VectorClock:
        """Parse :meth:`to_json` output. Strict: raises :class:`ClientError` (a ``ValueError``)
        unless ``obj`` is a dict of non-empty node id -> ``[int counter >= 1, number]``."""
        if not isinstance(obj, dict):
            raise ClientError(f"a vector clock in JSON is an object {{node: [counter, "
                              f"timestamp]}}; got {type(obj).__name__}")
        counters: dict[str, int] = {}
        stamps: dict[str, float] = {}
        for node, entry in obj.items():
            _check_node(node)
            if not isinstance(entry, (list, tuple)) or len(entry) != 2:
                raise ClientError(f"vector clock entry of node {node!r} must be "
                                  f"[counter, timestamp]; got {entry!r}")
            counters[node] = _check_counter(node, entry[0])
            stamps[node] = _check_time(f"the timestamp of node {node!r}", entry[1])
        return cls._make(counters, stamps)

    # -- identity and printing -------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VectorClock):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: object) -> bool:
        raise TypeError(_PARTIAL_ORDER)

    __le__ = __gt__ = __ge__ = __lt__

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("VectorClock is immutable; increment() and merge() return new clocks")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("VectorClock is immutable")

    def __copy__(self) -> VectorClock:
        return self

    def __deepcopy__(self, memo: dict) -> VectorClock:
        return self

    def __reduce__(self) -> tuple:
        return (VectorClock, ({n: (c, self._stamps[n]) for n, c in self._counters.items()},))

    def __repr__(self) -> str:
        return f"VectorClock({self._counters!r})"

    def __str__(self) -> str:
        return "[" + ", ".join(f"({n},{c})" for n, c in self._key) + "]"


def _check_clock(other: object, op: str) -> None:
    if not isinstance(other, VectorClock):
        raise TypeError(f"{op} needs a VectorClock; got {type(other).__name__} {other!r}")


#: The clock of "no version seen": what a blind write starts from.
EMPTY = VectorClock()
