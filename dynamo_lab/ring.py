"""Consistent hashing: tokens, virtual nodes and preference lists (the paper, sections 4.2, 4.3, 6.2).

The output range of :func:`~dynamo_lab.hashing.key_hash` is a ring of ``RING_SIZE`` positions.
Every physical node owns a few positions on it, its *tokens* (virtual nodes). Rules:

* A key with hash ``h`` is *coordinated* by the owner of the first token ``>= h`` walking
  clockwise, wrapping past ``RING_SIZE - 1`` to 0.
* Its *preference list* for ``N`` replicas is the first ``N`` **distinct physical** nodes met on
  that walk: the tokens of a node already on the list are skipped (section 4.3).
* The arc between two consecutive tokens, ``(previous, token]``, is a :class:`KeyRange`. Every key
  in one arc has the same preference list, so replication, hand-off and anti-entropy work per arc.
* Two partitioning strategies (section 6.2):
  ``"random"`` (strategy 1): ``vnodes`` tokens per node; the i-th token of node ``X`` is
  ``key_hash(f"{X}#{i}")``, so every process computes the same ring with no coordination.
  ``"equal"`` (strategy 3): the ring is cut into ``partitions`` equal arcs, and each node holds
  ``Q/S`` of them; joins and leaves move whole partitions (see :class:`Ring`).
* Everything is deterministic: token ties are broken by node id, nothing depends on
  ``PYTHONHASHSEED`` or on the order of a set.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping

from .errors import ConfigError
from .hashing import RING_SIZE, key_hash

__all__ = ["KeyRange", "Ring", "Transfer", "moved_keys", "transfers", "STRATEGIES"]

STRATEGIES = ("random", "equal")
MAX_NODE_ID_BYTES = 256


# --------------------------------------------------------------------------- validation helpers

def _check_position(h: object, what: str = "ring position") -> int:
    if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h < RING_SIZE:
        raise ConfigError(f"a {what} is an int in [0, 2**128) such as key_hash('cart'); got {h!r}")
    return h


def _check_node(node: object) -> str:
    if not isinstance(node, str) or node == "":
        raise ConfigError(f"node ids are non-empty strings such as 'A' or 'node-1'; got {node!r}")
    try:
        size = len(node.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigError(f"node id {node!r} is not valid Unicode text (lone surrogate)") from None
    if size > MAX_NODE_ID_BYTES:
        raise ConfigError(f"node id is longer than {MAX_NODE_ID_BYTES} bytes; use a shorter name")
    return node


def _check_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be an int >= 1; got {value!r}")
    return value


# --------------------------------------------------------------------------- key ranges

@dataclass(frozen=True)
class KeyRange:
    """The arc of hashes ``h`` with ``start < h <= end`` walking clockwise, wrapping at RING_SIZE.

    ``start == end`` is the whole ring (what a ring with a single token has). Raises
    :class:`ConfigError` if ``start`` or ``end`` is not an int in ``[0, RING_SIZE)``.
    """

    start: int  # exclusive
    end: int    # inclusive

    def __post_init__(self) -> None:
        _check_position(self.start, "KeyRange start")
        _check_position(self.end, "KeyRange end")

    @property
    def width(self) -> int:
        """Number of hash positions in the range (``RING_SIZE`` when ``start == end``)."""
        return (self.end - self.start) % RING_SIZE or RING_SIZE

    @property
    def fraction(self) -> float:
        """Share of the key space covered: ``width / RING_SIZE``."""
        return self.width / RING_SIZE

    def offset(self, h: int) -> int:
        """Distance of ``h`` past ``start``, minus one: 0 for the first hash of the range.

        Only meaningful for contained hashes (it is then ``< width``).
        """
        return (_check_position(h) - self.start - 1) % RING_SIZE

    def contains(self, h: int) -> bool:
        """True if hash ``h`` lies in the range. Raises :class:`ConfigError` for a non-position."""
        return self.offset(h) < self.width

    def bucket(self, h: int, buckets: int) -> int:
        """Index ``0 .. buckets-1`` of ``h`` when the range is cut into ``buckets`` equal slices.

        Monotone in the offset of ``h`` inside the range, so slices are contiguous (this is how a
        Merkle tree over the range assigns keys to leaves). Raises :class:`ConfigError` (a
        ``ValueError``) if ``buckets < 1`` or ``h`` is not in the range.
        """
        _check_count(buckets, "buckets")
        off = self.offset(h)
        if off >= self.width:
            raise ConfigError(f"hash {h:#x} is not in the range {self}; find its range with "
                              f"ring.range_of(h) first")
        return off * buckets // self.width

    def to_json(self) -> list:
        """``[str(start), str(end)]``: decimal strings, because JSON numbers lose 128-bit ints."""
        return [str(self.start), str(self.end)]

    @classmethod
    def from_json(cls, obj: object) -> KeyRange:
        """Inverse of :meth:`to_json`. Raises :class:`ConfigError` (a ``ValueError``) on bad input."""
        if not isinstance(obj, (list, tuple)) or len(obj) != 2:
            raise ConfigError(f"a KeyRange in JSON is [start, end] as two decimal strings; got {obj!r}")
        bounds = []
        for item in obj:
            if isinstance(item, str) and item.isascii() and item.isdigit():
                item = int(item)
            elif isinstance(item, bool) or not isinstance(item, int):
                raise ConfigError(f"KeyRange bounds are decimal strings such as '12345'; got {item!r}")
            bounds.append(item)
        return cls(bounds[0], bounds[1])

    def __str__(self) -> str:
        return f"({self.start:032x}"[:5] + f"..:{self.end:032x}"[:7] + "..]"


# --------------------------------------------------------------------------- the ring

class Ring:
    """A consistent-hashing ring of physical nodes, each owning one or more tokens.

    ``Ring(nodes, vnodes=8, strategy="random")`` gives each node ``vnodes`` tokens
    ``key_hash(f"{node}#{i}")`` (the paper's strategy 1).

    ``Ring(nodes, strategy="equal", partitions=Q)`` is the paper's strategy 3: the ring is cut into
    ``Q`` equal partitions, partition ``p`` being the arc ``(p*RING_SIZE//Q, (p+1)*RING_SIZE//Q]``
    whose token is its end (mod RING_SIZE). Every node holds ``floor(Q/S)`` or ``ceil(Q/S)`` of
    them. ``vnodes`` is ignored by this strategy (it is still validated and kept in ``.vnodes``).
    The assignment is a deterministic function of the sequence of calls:

    * the constructor adds the initial nodes in sorted order (so their order does not matter);
    * a node joining steals one partition at a time from the most-loaded node (ties: smallest
      node id) until it is within one partition of it, so partitions move *only* to the new node;
      the j-th of its ``k`` steals takes the victim's partition nearest (circular index distance,
      ties to the smaller index) to partition ``(2j+1)*Q // (2k)``: evenly spaced targets, so a
      node's partitions are spread round the ring instead of bunched in one run;
    * a node leaving gives its partitions, in index order, each to the least-loaded remaining node
      (ties: smallest node id).

    Rings built with :meth:`from_tokens` have ``strategy == "tokens"``; :meth:`add_node` on them
    gives the new node the random-strategy tokens for ``vnodes``.

    Raises :class:`ConfigError` for: node ids that are not non-empty strings, duplicate nodes,
    ``vnodes < 1``, an unknown strategy, ``partitions`` missing or smaller than the number of
    nodes with ``"equal"``, ``partitions`` given with ``"random"``.
    """

    def __init__(self, nodes: Iterable[str] = (), vnodes: int = 8, *, strategy: str = "random",
                 partitions: int | None = None):
        self.vnodes = _check_count(vnodes, "vnodes (tokens per node)")
        if strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES}; got {strategy!r}")
        if isinstance(nodes, str):
            raise ConfigError(f"nodes is a list of node ids; got the string {nodes!r} "
                              f"(did you mean [{nodes!r}]?)")
        node_list = [_check_node(x) for x in nodes]
        dups = sorted(x for x, c in Counter(node_list).items() if c > 1)
        if dups:
            raise ConfigError(f"duplicate node ids {dups}; every physical node needs its own id")
        if strategy == "equal":
            if partitions is None:
                raise ConfigError("strategy='equal' needs partitions=Q (the number of equal arcs), "
                                  "e.g. Ring(nodes, strategy='equal', partitions=64)")
            _check_count(partitions, "partitions")
            if partitions < len(node_list):
                raise ConfigError(f"partitions={partitions} is fewer than the {len(node_list)} nodes; "
                                  f"every node needs at least one partition, so raise partitions")
        elif partitions is not None:
            raise ConfigError("partitions is only used by strategy='equal'; drop it or pass "
                              "strategy='equal'")
        self.strategy = strategy
        self.partitions = partitions
        self._token_map: dict[str, tuple[int, ...]] = {}
        self._owner: list[str | None] = [None] * partitions if strategy == "equal" else []
        for node in sorted(node_list):
            self._join(node)
        self._rebuild()

    @classmethod
    def from_tokens(cls, mapping: Mapping[str, Iterable[int]], *, vnodes: int | None = None) -> Ring:
        """A ring with exactly these tokens per node (e.g. a ring learnt by gossip).

        ``vnodes`` (default: the most tokens any node has, or 8 for an empty mapping) is what
        :meth:`add_node` uses later. Raises :class:`ConfigError` for a bad node id, a node with no
        tokens, a token outside ``[0, RING_SIZE)`` or the same token twice for one node.
        """
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"from_tokens takes a mapping node -> tokens; got {type(mapping).__name__}")
        token_map: dict[str, tuple[int, ...]] = {}
        for node, toks in mapping.items():
            _check_node(node)
            if isinstance(toks, (str, bytes)) or not isinstance(toks, Iterable):
                raise ConfigError(f"tokens of node {node!r} must be a list of ints; got {toks!r}")
            ts = [_check_position(t, f"token of node {node!r}") for t in toks]
            if not ts:
                raise ConfigError(f"node {node!r} has no tokens; every node needs at least one")
            if len(set(ts)) != len(ts):
                raise ConfigError(f"node {node!r} lists the same token twice; tokens of a node are distinct")
            token_map[node] = tuple(sorted(ts))
        ring = cls.__new__(cls)
        default = max((len(ts) for ts in token_map.values()), default=8)
        ring.vnodes = _check_count(default if vnodes is None else vnodes, "vnodes")
        ring.strategy = "tokens"
        ring.partitions = None
        ring._token_map = token_map
        ring._owner = []
        ring._rebuild()
        return ring

    # -- membership changes --------------------------------------------------------------

    def add_node(self, node: str) -> None:
        """Add a physical node. Raises :class:`ConfigError` if it is already in the ring (or, with
        ``"equal"``, if there would be more nodes than partitions)."""
        _check_node(node)
        if node in self._token_map:
            raise ConfigError(f"node {node!r} is already in the ring; remove it first or pick a new id")
        if self.strategy == "equal" and len(self._token_map) + 1 > self.partitions:
            raise ConfigError(f"cannot add {node!r}: {len(self._token_map) + 1} nodes would share only "
                              f"{self.partitions} partitions; build the ring with more partitions")
        self._join(node)
        self._rebuild()

    def remove_node(self, node: str) -> None:
        """Remove a physical node and its tokens. Raises :class:`ConfigError` if it is absent."""
        self._check_member(node)
        if self.strategy == "equal":
            self._equal_leave(node)
        del self._token_map[node]
        self._rebuild()

    def copy(self) -> Ring:
        """An independent ring with the same tokens, strategy and partition assignment."""
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        # The built arrays are replaced, never mutated, on change, so they can be shared.
        other._token_map = dict(self._token_map)
        other._owner = list(self._owner)
        other._cache = {}
        return other

    def _join(self, node: str) -> None:
        if self.strategy == "equal":
            self._equal_join(node)
        else:
            self._token_map[node] = tuple(sorted({key_hash(f"{node}#{i}") for i in range(self.vnodes)}))

    def _equal_join(self, node: str) -> None:
        owner = self._owner
        self._token_map[node] = ()  # placeholder: _rebuild derives the tokens from _owner
        if len(self._token_map) == 1:
            owner[:] = [node] * len(owner)
            return
        held: dict[str, list[int]] = {x: [] for x in self._token_map if x != node}
        for p, x in enumerate(owner):
            held[x].append(p)
        # Steal one at a time from the most-loaded node until within one partition of it.
        heap = [(-len(ps), x) for x, ps in held.items()]
        heapq.heapify(heap)
        order: list[str] = []
        while -heap[0][0] - len(order) > 1:
            load, victim = heapq.heappop(heap)
            order.append(victim)
            heapq.heappush(heap, (load + 1, victim))
        q, k = len(owner), len(order)
        for j, victim in enumerate(order):
            # The j-th steal aims at an evenly spaced target position, so the joiner's
            # partitions are spread round the ring rather than bunched where victims agree.
            target = (2 * j + 1) * q // (2 * k)
            ps = held[victim]
            i = bisect_left(ps, target)
            best = min((i % len(ps), i - 1),  # the neighbours of target in the victim's list
                       key=lambda c: (min((ps[c] - target) % q, (target - ps[c]) % q), ps[c]))
            owner[ps.pop(best)] = node

    def _equal_leave(self, node: str) -> None:
        load = {x: 0 for x in self._token_map if x != node}
        for x in self._owner:
            if x != node:
                load[x] += 1
        for p, x in enumerate(self._owner):
            if x != node:
                continue
            if not load:
                self._owner[p] = None
                continue
            heir = min(load, key=lambda y: (load[y], y))
            self._owner[p] = heir
            load[heir] += 1

    def _rebuild(self) -> None:
        if self.strategy == "equal":
            q = len(self._owner)
            ends: dict[str, list[int]] = {x: [] for x in self._token_map}
            for p, x in enumerate(self._owner):
                if x is not None:
                    ends[x].append((p + 1) * RING_SIZE // q % RING_SIZE)
            self._token_map = {x: tuple(sorted(ts)) for x, ts in ends.items()}
        entries = sorted((t, x) for x, ts in self._token_map.items() for t in ts)
        self._entries = entries
        self._hashes = [t for t, _ in entries]
        self._owners = [x for _, x in entries]
        points: list[int] = []
        firsts: list[int] = []
        for i, t in enumerate(self._hashes):
            if not points or points[-1] != t:
                points.append(t)
                firsts.append(i)
        self._points = points    # distinct token values: the ends of the arcs
        self._firsts = firsts    # index in _entries of the first entry at each point
        self._nodes = sorted(self._token_map)
        self._cache: dict[int, list[tuple[str, ...] | None]] = {}

    # -- reading the ring ----------------------------------------------------------------

    @property
    def nodes(self) -> list[str]:
        """The physical node ids, sorted."""
        return list(self._nodes)

    @property
    def tokens(self) -> list[tuple[int, str]]:
        """Every ``(token, node)`` sorted by token, then node id (so collisions are deterministic)."""
        return list(self._entries)

    def tokens_of(self, node: str) -> list[int]:
        """The tokens of ``node``, ascending. Raises :class:`ConfigError` if it is not in the ring."""
        self._check_member(node)
        return list(self._token_map[node])

    def token_map(self) -> dict[str, list[int]]:
        """``{node: tokens}`` sorted by node: what :meth:`from_tokens` takes back."""
        return {x: list(self._token_map[x]) for x in self._nodes}

    def coordinator(self, key: str) -> str:
        """The node owning the first token clockwise from ``key_hash(key)``.

        Raises :class:`InvalidKey` for a bad key, :class:`ConfigError` on an empty ring.
        """
        h = key_hash(key)
        self._check_nonempty()
        return self._owners[self._index(h)]

    def preference_list(self, key: str, n: int) -> list[str]:
        """The ``n`` distinct physical nodes that hold ``key``, clockwise from its coordinator.

        Raises :class:`InvalidKey` for a bad key and :class:`ConfigError` if the ring is empty or
        ``n`` is not in ``1 .. len(ring)``.
        """
        return self.preference_list_for_hash(key_hash(key), n)

    def preference_list_for_hash(self, h: int, n: int) -> list[str]:
        """:meth:`preference_list` for a hash already computed. Same errors, plus a bad ``h``."""
        # Cheap exact-type checks first: this is the hot path of every get and put.
        if type(n) is not int or not 0 < n <= len(self._nodes):
            self._check_n(n)
        if type(h) is not int or not 0 <= h < RING_SIZE:
            _check_position(h)
        return list(self._walk(self._index(h), n))

    def successors(self, key_or_hash: str | int) -> list[str]:
        """All distinct physical nodes in clockwise order from a key or a hash: the preference
        list followed by the fallbacks a sloppy quorum uses when replicas are down."""
        if isinstance(key_or_hash, int) and not isinstance(key_or_hash, bool):
            h = _check_position(key_or_hash)
        else:
            h = key_hash(key_or_hash)  # raises InvalidKey for anything but a good key
        self._check_nonempty()
        return list(self._walk(self._index(h), len(self._nodes)))

    def ownership(self) -> dict[str, float]:
        """Fraction of the key space each node coordinates, sorted by node; sums to 1.0."""
        width = {x: 0 for x in self._nodes}
        for r, first in zip(self.ranges(), self._firsts):
            width[self._owners[first]] += r.width
        return {x: w / RING_SIZE for x, w in width.items()}

    def ranges(self) -> list[KeyRange]:
        """The arcs ``(previous token, token]`` in ring order, one per distinct token value
        (colliding tokens of two nodes make one arc). They tile the ring; [] on an empty ring."""
        pts = self._points
        return [KeyRange(pts[j - 1], pts[j]) for j in range(len(pts))]

    def range_of(self, h: int) -> KeyRange:
        """The arc of :meth:`ranges` that contains hash ``h``. ConfigError on an empty ring."""
        _check_position(h)
        self._check_nonempty()
        pts = self._points
        j = bisect_left(pts, h)
        if j == len(pts):
            j = 0
        return KeyRange(pts[j - 1], pts[j])

    def replica_ranges(self, node: str, n: int) -> list[KeyRange]:
        """The arcs whose first-``n`` preference list contains ``node``, in ring order: what the
        node must store, one Merkle tree each. Raises :class:`ConfigError` for an absent node or
        a bad ``n``."""
        self._check_member(node)
        self._check_n(n)
        return [r for r, first in zip(self.ranges(), self._firsts) if node in self._walk(first, n)]

    def replicas_of_range(self, r: KeyRange, n: int) -> list[str]:
        """The preference list (``n`` distinct nodes) shared by every key of ``r``.

        ``r`` must lie inside one arc of this ring (an arc of :meth:`ranges` or a piece of one);
        otherwise its keys have different replicas and :class:`ConfigError` is raised.
        """
        if not isinstance(r, KeyRange):
            raise ConfigError(f"replicas_of_range takes a KeyRange; got {r!r}")
        self._check_n(n)
        arc = self.range_of(r.end)
        if arc.width < RING_SIZE and arc.offset(r.end) + 1 < r.width:
            raise ConfigError(f"range {r} spans several arcs of the ring, whose keys have different "
                              f"replicas; split it along ring.ranges() first")
        return list(self._walk(self._index(r.end), n))

    # -- internals -----------------------------------------------------------------------

    def _index(self, h: int) -> int:
        i = bisect_left(self._hashes, h)
        return 0 if i == len(self._hashes) else i

    def _walk(self, i: int, n: int) -> tuple[str, ...]:
        # Cached per (token index, n): the walk is the same for every key of the arc ending at
        # token i, and most lookups hit arcs already walked.
        cache = self._cache.get(n)
        if cache is None:
            cache = self._cache[n] = [None] * len(self._owners)
        found = cache[i]
        if found is None:
            owners, size = self._owners, len(self._owners)
            out: list[str] = []
            seen: set[str] = set()
            j = i
            for _ in range(size):  # at most one lap, so a walk always ends
                x = owners[j]
                if x not in seen:
                    seen.add(x)
                    out.append(x)
                    if len(out) == n:
                        break
                j = j + 1 if j + 1 < size else 0
            found = cache[i] = tuple(out)
        return found

    def _check_nonempty(self) -> None:
        if not self._nodes:
            raise ConfigError("the ring has no nodes; add some with ring.add_node(...) first")

    def _check_n(self, n: object) -> None:
        self._check_nonempty()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n (the number of replicas) must be an int >= 1; got {n!r}")
        if n > len(self._nodes):
            raise ConfigError(f"a preference list of n={n} distinct nodes needs at least {n} nodes, "
                              f"but the ring has {len(self._nodes)}; lower n or add nodes")

    def _check_member(self, node: object) -> None:
        _check_node(node)
        if node not in self._token_map:
            raise ConfigError(f"node {node!r} is not in the ring (nodes: {self._short_nodes()})")

    def _short_nodes(self) -> str:
        shown = ", ".join(self._nodes[:8])
        return shown + (f", ... ({len(self._nodes)} in all)" if len(self._nodes) > 8 else "")

    # -- dunder --------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ring):
            return NotImplemented
        return self._entries == other._entries

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node: object) -> bool:
        return isinstance(node, str) and node in self._token_map

    def __repr__(self) -> str:
        extra = f", partitions={self.partitions}" if self.strategy == "equal" else ""
        return (f"Ring([{self._short_nodes()}], vnodes={self.vnodes}, strategy={self.strategy!r}"
                f"{extra}, tokens={len(self._entries)})")


# --------------------------------------------------------------------------- data movement

def _replica_set(ring: Ring, h: int, n: int) -> tuple[str, ...]:
    # A ring with fewer than n nodes keeps every key on all of them (and an empty ring on none).
    if not ring._nodes:
        return ()
    return ring._walk(ring._index(h), min(n, len(ring._nodes)))


def moved_keys(old: Ring, new: Ring, keys: Iterable[str], n: int = 1) -> dict[str, tuple[list[str], list[str]]]:
    """The keys whose first-``n`` preference list differs between ``old`` and ``new``, mapped to
    ``(old list, new list)``, in the order of ``keys``. A ring with fewer than ``n`` nodes gives
    lists of all its nodes. Raises :class:`InvalidKey` for a bad key, :class:`ConfigError` for a
    bad ``n``."""
    _check_count(n, "n (the number of replicas)")
    out: dict[str, tuple[list[str], list[str]]] = {}
    for key in keys:
        h = key_hash(key)
        a, b = _replica_set(old, h, n), _replica_set(new, h, n)
        if a != b:
            out[key] = (list(a), list(b))
    return out


@dataclass(frozen=True)
class Transfer:
    """One key range whose replica set changes between two rings.

    ``gaining``: nodes that must receive the range (in new preference order); ``losing``: nodes
    that may drop it afterwards (old order); ``sources``: every old replica, i.e. every node that
    holds the data, those still in the new ring first (they stay reachable), then departing ones.
    """

    range: KeyRange
    gaining: tuple[str, ...]
    losing: tuple[str, ...]
    sources: tuple[str, ...]


def transfers(old: Ring, new: Ring, n: int) -> list[Transfer]:
    """The hand-offs that turn ``old`` into ``new`` for ``n`` replicas (a join, a leave, or any
    change), in ring order.

    Ranges are cut along the union of both rings' tokens, so each piece has one old and one new
    replica set; neighbouring pieces with the same old and new preference lists are merged.
    A ring with fewer than ``n`` nodes stores every key on all of them. Raises
    :class:`ConfigError` for a bad ``n``.
    """
    _check_count(n, "n (the number of replicas)")
    points = sorted(set(old._points) | set(new._points))
    groups: list[list] = []  # [start, end, old list, new list]
    for j, p in enumerate(points):
        a, b = _replica_set(old, p, n), _replica_set(new, p, n)
        if groups and groups[-1][2] == a and groups[-1][3] == b:
            groups[-1][1] = p
        else:
            groups.append([points[j - 1], p, a, b])
    if len(groups) > 1 and groups[0][2:] == groups[-1][2:]:
        last = groups.pop()
        groups[0][0] = last[0]
    if len(groups) == 1:
        groups[0][0] = groups[0][1]  # one group all the way round: the whole ring
    out = []
    for start, end, a, b in groups:
        if set(a) == set(b):
            continue
        staying = tuple(x for x in a if x in new)
        leaving = tuple(x for x in a if x not in new)
        out.append(Transfer(KeyRange(start, end),
                            gaining=tuple(x for x in b if x not in a),
                            losing=tuple(x for x in a if x not in b),
                            sources=staying + leaving))
    return out
