"""Vector clocks: how Dynamo tells "this version replaces that one" from "these two conflict"
(the paper, section 4.4).

A vector clock is a list of ``(node, counter)`` pairs. The coordinator of a write increments its
own counter. Clock ``a`` *descends* clock ``b`` when every counter of ``b`` is at most the
matching counter of ``a``: then ``a``'s version saw ``b``'s and may replace it. When neither
descends the other the two versions are *concurrent* and both must be kept as siblings until a
client reconciles them.

Two writes that race through the *same* coordinator from the same context are concurrent, but
the paper's rule ("increment the coordinator's counter") stamps both with the same clock. So a
clock may also hold *dots*: single events ``(node, counter)`` above that node's contiguous
counter. ``[(A,1) +(A,3)]`` means "A's events 1 and 3, not 2". This is the dotted version vector
of Preguica et al. (what riak_kv moved to): a coordinator stamps a new write with the next
counter it has ever used for the key, and when that is not the context's counter + 1 the event
is kept as a dot instead of claiming the events in between. A clock without dots is exactly the
paper's vector clock, so everything the paper says (and Lab 2) holds unchanged; dots only appear
for writes racing through one coordinator, and they fold back into the counter as soon as a
read has seen the events in between. The size of a clock is the number of nodes that
coordinated the key, not the number of concurrent writers.

Rules of this module:

* clocks are immutable and hashable; every operation returns a new clock;
* identity (``==`` and ``hash``) is the counters and dots only. Each entry also carries the time its
  counter was last set, used only to decide which entries truncation drops first;
* vector clocks are a *partial* order, so ``<``, ``<=``, ``>``, ``>=`` raise ``TypeError``: use
  :meth:`VectorClock.descends` or :meth:`VectorClock.compare`, whose answers include
  ``CONCURRENT``;
* everything iterates in sorted node order, so output never depends on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Iterable, Iterator, Mapping, Union

from . import jsontext
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


_canonical = jsontext.encoder(sort_keys=True)


class VectorClock:
    """An immutable vector clock: node id -> (counter >= 1, timestamp).

    ``VectorClock({"A": 2, "B": 1})`` or, with timestamps, ``VectorClock({"A": (2, 12.5)})``
    (a bare counter gets timestamp 0.0). Raises :class:`~dynamo_lab.errors.ClientError` (a
    ``ValueError``) for a node id that is not a non-empty string or a counter that is not an
    ``int`` >= 1 (``bool`` is rejected).
    """

    __slots__ = ("_counters", "_dots", "_stamps", "_key", "_hash", "_size", "_text")

    def __init__(self, entries: Mapping[str, Entry] | VectorClock | None = None,
                 dots: Iterable[tuple[str, int]] = ()):
        counters: dict[str, int] = {}
        stamps: dict[str, float] = {}
        extra: dict[str, set[int]] = {}
        if isinstance(entries, VectorClock):
            counters, stamps = dict(entries._counters), dict(entries._stamps)
            extra = {n: set(ds) for n, ds in entries._dots.items()}
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
        if isinstance(dots, (str, bytes)) or not isinstance(dots, Iterable):
            raise ClientError(f"dots is a list of (node, counter) pairs; got {dots!r}")
        for dot in dots:
            if not isinstance(dot, (tuple, list)) or len(dot) != 2:
                raise ClientError(f"a dot is a (node, counter) pair; got {dot!r}")
            node = _check_node(dot[0])
            extra.setdefault(node, set()).add(_check_counter(node, dot[1]))
            stamps.setdefault(node, 0.0)
        self._init(counters, extra, stamps)

    def _init(self, counters: dict[str, int], dots: Mapping[str, Iterable[int]],
              stamps: dict[str, float]) -> None:
        """Normalise and freeze: a dot at or below its node's counter is already counted; dots
        contiguous with the counter fold into it. Sorted once here, so every dict this clock
        hands out is in node order."""
        if dots:
            counters = dict(counters)
            folded: dict[str, tuple[int, ...]] = {}
            for n, ds in dots.items():
                c = counters.get(n, 0)
                rest = sorted(d for d in set(ds) if d > c)
                i = 0
                while i < len(rest) and rest[i] == c + 1:
                    c += 1
                    i += 1
                if c:
                    counters[n] = c
                if i < len(rest):
                    folded[n] = tuple(rest[i:])
            dots = folded
        set_ = object.__setattr__
        if not dots:
            nodes = sorted(counters)
            # Already in node order with a stamp each (what the operations build): kept as is.
            if list(counters) != nodes:
                counters = {n: counters[n] for n in nodes}
            if list(stamps) != nodes:
                stamps = {n: stamps[n] for n in nodes}
            set_(self, "_counters", counters)
            set_(self, "_dots", {})
            set_(self, "_stamps", stamps)
        else:
            nodes = sorted(set(counters) | set(dots))
            set_(self, "_counters", {n: counters[n] for n in nodes if n in counters})
            set_(self, "_dots", {n: dots[n] for n in nodes if n in dots})
            set_(self, "_stamps", {n: stamps[n] for n in nodes})
        if dots:
            key = tuple((n, counters.get(n, 0), dots.get(n, ())) for n in nodes)
        else:
            key = tuple((n, counters[n]) for n in nodes)
        set_(self, "_key", key)
        set_(self, "_hash", hash(key))
        # How many events the history holds: a clock can only strictly descend a smaller one.
        set_(self, "_size", sum(counters.values()) + sum(len(ds) for ds in dots.values()))
        set_(self, "_text", None)

    @classmethod
    def _make(cls, counters: dict[str, int], stamps: dict[str, float],
              dots: Mapping[str, Iterable[int]] | None = None) -> VectorClock:
        """Build from already-validated dicts (internal: skips validation)."""
        clock = cls.__new__(cls)
        clock._init(counters, dots or {}, stamps)
        return clock

    # -- reading ---------------------------------------------------------------------------

    def get(self, node: str) -> int:
        """The (contiguous) counter of ``node``: events 1..counter are seen. 0 when absent."""
        return self._counters.get(node, 0)

    __getitem__ = get

    def counters(self) -> dict[str, int]:
        """A new dict node -> counter, sorted by node id (the paper's view: dots left out)."""
        return dict(self._counters)

    @property
    def dots(self) -> tuple[tuple[str, int], ...]:
        """The single events above their node's counter, as sorted ``(node, counter)`` pairs."""
        return tuple((n, d) for n, ds in self._dots.items() for d in ds)

    def max_counter(self, node: str) -> int:
        """The highest event of ``node`` this clock has seen (counter or dot); 0 when none."""
        ds = self._dots.get(node)
        return ds[-1] if ds else self._counters.get(node, 0)

    def has_event(self, node: str, counter: int) -> bool:
        """True when event ``(node, counter)`` is in this clock's history."""
        return counter <= self._counters.get(node, 0) or counter in self._dots.get(node, ())

    def timestamp(self, node: str) -> float:
        """When ``node``'s counter was last set (0.0 when absent). Used only by truncation."""
        return self._stamps.get(node, 0.0)

    @property
    def nodes(self) -> tuple[str, ...]:
        """The node ids with an entry (a counter or a dot), sorted."""
        return tuple(self._stamps)

    def __len__(self) -> int:
        return len(self._stamps)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._stamps))

    def __contains__(self, node: object) -> bool:
        return node in self._stamps

    def __bool__(self) -> bool:
        return bool(self._stamps)

    # -- the operations of the paper -------------------------------------------------------

    def increment(self, node: str, now: float = 0.0) -> VectorClock:
        """The clock a coordinator ``node`` stamps on a new write: its counter + 1, time ``now``.

        (With dots, the new event is ``node``'s highest event + 1.) Raises :class:`ClientError`
        for a bad node id or a non-finite ``now``.
        """
        _check_node(node)
        return self.add_event(node, self.max_counter(node) + 1, now)

    def add_event(self, node: str, counter: int, now: float = 0.0) -> VectorClock:
        """This clock with the one event ``(node, counter)`` added, stamped at time ``now``.

        Contiguous with ``node``'s counter it is the paper's increment; above it, it is kept as
        a dot, so the events in between are not claimed. Raises :class:`ClientError` for a bad
        node id, a counter that is not an ``int`` >= 1, or a non-finite ``now``.
        """
        _check_node(node)
        _check_counter(node, counter)
        now = _check_time("now", now)
        stamps = dict(self._stamps)
        stamps[node] = now
        c = self._counters.get(node, 0)
        if not self._dots and counter == c + 1:      # the common case, the paper's increment
            counters = dict(self._counters)
            counters[node] = counter
            return VectorClock._make(counters, stamps)
        dots = dict(self._dots)
        dots[node] = dots.get(node, ()) + (counter,)
        return VectorClock._make(self._counters, stamps, dots)

    def merge(self, other: VectorClock) -> VectorClock:
        """The least clock that descends both: the union of their histories (pointwise max of
        the counters, union of the dots).

        Each entry keeps the timestamp that came with the larger event (the larger timestamp
        on a tie), so merging is commutative, associative and idempotent, timestamps included.
        """
        _check_clock(other, "merge")
        counters, stamps = dict(self._counters), dict(self._stamps)
        for node, t in other._stamps.items():
            theirs, mine = other.max_counter(node), self.max_counter(node)
            if node not in stamps or theirs > mine:
                stamps[node] = t
            elif theirs == mine:
                stamps[node] = max(stamps[node], t)
        for node, c in other._counters.items():
            if c > counters.get(node, 0):
                counters[node] = c
        if not self._dots and not other._dots:
            return VectorClock._make(counters, stamps)
        dots = {n: set(ds) for n, ds in self._dots.items()}
        for n, ds in other._dots.items():
            dots.setdefault(n, set()).update(ds)
        return VectorClock._make(counters, stamps, dots)

    def descends(self, other: VectorClock) -> bool:
        """True when this clock's history holds every event of ``other``'s: each counter of
        ``other`` is <= the same counter here, and each dot of ``other`` is counted or a dot
        here.

        A clock descends itself; the empty clock is descended by every clock.
        """
        _check_clock(other, "descends")
        return self._covers(other)

    def _covers(self, other: VectorClock) -> bool:
        mine = self._counters
        for n, c in other._counters.items():
            if mine.get(n, 0) < c:
                return False
        for n, ds in other._dots.items():
            c, extra = mine.get(n, 0), self._dots.get(n, ())
            for d in ds:
                if d > c and d not in extra:
                    return False
        return True

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
        """Keep at most ``threshold`` nodes' entries, dropping the oldest by timestamp (ties:
        node id); a node's dots go with its counter.

        This is the paper's scheme for bounding clock size. The original always descends the
        result. The price, as the paper notes, is that a truncated clock can later look
        concurrent with (or older than) a version it actually descends. Raises
        :class:`ClientError` unless ``threshold`` is an ``int`` >= 1.
        """
        if type(threshold) is not int or threshold < 1:
            raise ClientError(f"truncate threshold must be an int >= 1; got {threshold!r}")
        if len(self._stamps) <= threshold:
            return self
        by_age = sorted(self._stamps, key=lambda n: (self._stamps[n], n))
        keep = set(by_age[len(by_age) - threshold:])
        return VectorClock._make({n: c for n, c in self._counters.items() if n in keep},
                                 {n: t for n, t in self._stamps.items() if n in keep},
                                 {n: ds for n, ds in self._dots.items() if n in keep})

    # -- wire form -------------------------------------------------------------------------

    def to_json(self) -> dict[str, list]:
        """``{node: [counter, timestamp]}`` in node order, with a third item, the sorted list
        of that node's dots, where it has any (the counter is then 0 or more);
        :meth:`from_json` reads it back."""
        out: dict[str, list] = {}
        for n, t in self._stamps.items():
            ds = self._dots.get(n)
            out[n] = [self._counters.get(n, 0), t, list(ds)] if ds else [self._counters[n], t]
        return out

    def json_text(self) -> str:
        """The canonical JSON text of :meth:`to_json` (sorted keys, no spaces), made once."""
        text = self._text
        if text is None:
            text = _canonical(self.to_json())
            object.__setattr__(self, "_text", text)
        return text

    @classmethod
    def from_json(cls, obj: Any) -> VectorClock:
        """Parse :meth:`to_json` output. Strict: raises :class:`ClientError` (a ``ValueError``)
        unless ``obj`` is a dict of non-empty node id -> ``[int counter >= 1, number]`` or
        ``[int counter >= 0, number, [int dot >= 1, ...]]`` with at least one dot."""
        if not isinstance(obj, dict):
            raise ClientError(f"a vector clock in JSON is an object {{node: [counter, "
                              f"timestamp]}}; got {type(obj).__name__}")
        counters: dict[str, int] = {}
        stamps: dict[str, float] = {}
        dots: dict[str, list[int]] = {}
        for node, entry in obj.items():
            if (type(entry) is list and len(entry) == 2 and type(node) is str and node
                    and type(entry[0]) is int and entry[0] >= 1 and type(entry[1]) is float
                    and math.isfinite(entry[1])):
                counters[node], stamps[node] = entry     # the common case, checked inline
                continue
            _check_node(node)
            if not isinstance(entry, (list, tuple)) or len(entry) not in (2, 3):
                raise ClientError(f"vector clock entry of node {node!r} must be "
                                  f"[counter, timestamp] or [counter, timestamp, [dots]]; "
                                  f"got {entry!r}")
            stamps[node] = _check_time(f"the timestamp of node {node!r}", entry[1])
            if len(entry) == 3:
                if not isinstance(entry[2], (list, tuple)) or not entry[2]:
                    raise ClientError(f"the dots of node {node!r} are a non-empty list of "
                                      f"counters; got {entry[2]!r}")
                dots[node] = [_check_counter(node, d) for d in entry[2]]
                if entry[0] != 0:
                    counters[node] = _check_counter(node, entry[0])
                continue
            counters[node] = _check_counter(node, entry[0])
        return cls._make(counters, stamps, dots)

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
        return (VectorClock, ({n: (c, self._stamps[n]) for n, c in self._counters.items()},
                              self.dots))

    def __repr__(self) -> str:
        if self._dots:
            return f"VectorClock({self._counters!r}, dots={list(self.dots)!r})"
        return f"VectorClock({self._counters!r})"

    def __str__(self) -> str:
        """``[(A,2), (B,1)]``; dots follow with a plus: ``[(A,1) +(A,3)]``."""
        text = ", ".join(f"({n},{c})" for n, c in self._counters.items())
        if self._dots:
            text = (text + " " if text else "") + " ".join(f"+({n},{d})" for n, d in self.dots)
        return "[" + text + "]"


def _check_clock(other: object, op: str) -> None:
    if not isinstance(other, VectorClock):
        raise TypeError(f"{op} needs a VectorClock; got {type(other).__name__} {other!r}")


#: The clock of "no version seen": what a blind write starts from.
EMPTY = VectorClock()
