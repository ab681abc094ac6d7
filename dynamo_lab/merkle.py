"""Merkle trees for anti-entropy (the paper, section 4.7).

Each node keeps one hash tree per key range it replicates. Two replicas of a range compare their
trees top-down: equal roots mean nothing to do; otherwise they exchange the children of every node
that differs, level by level, until they reach the leaves that differ, and only then the keys in
those leaves. The cost grows with the *difference*, not with the data.

The rules of this module:

* **Fixed shape.** A tree covers one :class:`~dynamo_lab.ring.KeyRange` and has ``2**depth`` leaves.
  Leaf ``i`` holds the keys whose :func:`~dynamo_lab.hashing.key_hash` falls in bucket ``i`` of the
  range (``key_range.bucket(h, 2**depth)``). The shape does not depend on which keys are present,
  so two replicas holding different keys still compare node for node.
* **Leaf hash.** SHA-256 of the JSON list ``[[key, digest], ...]`` of the bucket's entries sorted by
  key (compact separators, ASCII escaped). An empty bucket hashes to :data:`EMPTY_HASH`, which is
  the same formula applied to ``[]``. The digest of an entry is the SHA-256 hex of the value bytes,
  or a hex digest the caller already computed (for instance of a key's versions).
* **Inner hash.** SHA-256 of the left child's 32 raw bytes followed by the right child's.
* **Cost model.** :func:`merkle_diff` counts what a real exchange sends: 1 hash for the root, then
  the 2 children's hashes of every inner node found different. Identical trees cost 1; one
  differing leaf in a tree of depth D costs exactly 2D + 1; d differing leaves among L cost about
  2 d log2(L / d).

Updates are incremental: :meth:`MerkleTree.update` changes one bucket and marks its leaf dirty;
the next read of a hash recomputes only the dirty leaves and their paths to the root.

The level-by-level steps (:func:`child_hashes`, :func:`differing_children`, :func:`diff_entries`)
are what one side of an exchange computes; :func:`merkle_diff` runs them between two local
trees. The node's anti-entropy asks :mod:`dynamo_lab.node.exchange` (``diff_level``,
``differing_keys``: the same steps, on any tree with this class's ``node_hash``,
``leaf_entries`` and ``depth``), so that Lab 4 can swap in a student's tree and diff.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Union

from .errors import ClientError, ConfigError, InvalidKey, InvalidValue
from .hashing import RING_SIZE, key_hash
from .ring import KeyRange

__all__ = [
    "EMPTY_HASH",
    "MAX_DEPTH",
    "MerkleTree",
    "MerkleDiff",
    "merkle_diff",
    "full_sync_cost",
    "differing_children",
    "child_hashes",
    "diff_entries",
]

MAX_DEPTH = 20

ValueOrDigest = Union[bytes, bytearray, str]

_HEX = re.compile(r"[0-9a-f]+")


def _leaf_hash(entries: Mapping[str, str]) -> bytes:
    pairs = [[key, entries[key]] for key in sorted(entries)]
    return hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode("ascii")).digest()


def _inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(left + right).digest()


_EMPTY_LEAF = _leaf_hash({})

EMPTY_HASH: str = _EMPTY_LEAF.hex()
"""Hash of an empty bucket (a leaf with no keys)."""

# _EMPTY_BY_HEIGHT[h] is the hash of a subtree of height h with no keys at all. Absent nodes in
# a tree's sparse levels stand for these, so a deep tree over few keys stays small.
_EMPTY_BY_HEIGHT: list[bytes] = [_EMPTY_LEAF]
for _ in range(MAX_DEPTH):
    _EMPTY_BY_HEIGHT.append(_inner_hash(_EMPTY_BY_HEIGHT[-1], _EMPTY_BY_HEIGHT[-1]))

_WHOLE_RING = KeyRange(0, 0)


def _digest(key: str, value_or_digest: object) -> str:
    """The digest stored for ``key``: SHA-256 hex of value bytes, or a given hex digest (lowercased)."""
    if isinstance(value_or_digest, (bytes, bytearray)):
        return hashlib.sha256(value_or_digest).hexdigest()
    if isinstance(value_or_digest, str):
        digest = value_or_digest.lower()
        if not _HEX.fullmatch(digest):
            raise InvalidValue(
                f"key {key!r}: a str is taken as a hex digest, got {value_or_digest!r}; "
                f"pass the value as bytes to have it hashed, or pass hashlib.sha256(value).hexdigest()")
        return digest
    raise InvalidValue(f"key {key!r}: expected the value as bytes or its hex digest as str, "
                       f"got {type(value_or_digest).__name__}")


class MerkleTree:
    """A binary hash tree of fixed shape over one key range.

    It has ``2**depth`` leaves; leaf ``i`` hashes the (key, version digest) pairs whose key_hash
    falls in bucket ``i`` of the range. Two replicas with different keys still have the same
    shape, so they compare level by level. Level 0 is the root (index 0); level ``depth`` holds the
    leaves (index 0 .. 2**depth - 1).
    """

    def __init__(self, key_range: KeyRange | None = None, depth: int = 10):
        """An empty tree over ``key_range`` (None: the whole ring) with ``2**depth`` leaves.

        Raises :class:`~dynamo_lab.errors.ConfigError` if ``depth`` is not an int in 0..20 or
        ``key_range`` is not a ``KeyRange``.
        """
        if key_range is None:
            key_range = _WHOLE_RING
        if not isinstance(key_range, KeyRange):
            raise ConfigError(f"key_range must be a dynamo_lab.ring.KeyRange or None (whole ring), "
                              f"got {type(key_range).__name__}")
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH:
            raise ConfigError(f"depth must be an int from 0 to {MAX_DEPTH} (2**depth leaves), "
                              f"got {depth!r}; 10 (1024 leaves) suits ~100k keys")
        self._key_range = key_range
        self._depth = depth
        self._width = key_range.width
        self._digests: dict[str, str] = {}          # key -> digest
        self._leaf: dict[str, int] = {}             # key -> leaf index (saves re-hashing on remove)
        self._buckets: dict[int, dict[str, str]] = {}   # non-empty leaves only
        # _levels[l] maps index -> hash for nodes whose subtree holds a key; absent = empty subtree.
        self._levels: list[dict[int, bytes]] = [{} for _ in range(depth + 1)]
        self._dirty: set[int] = set()               # leaves whose hash (and path) is stale

    @classmethod
    def build(cls, items: Mapping[str, ValueOrDigest] | Iterable[tuple[str, ValueOrDigest]], *,
              key_range: KeyRange | None = None, depth: int = 10) -> MerkleTree:
        """A tree holding ``items``: a mapping or an iterable of ``(key, value_or_digest)``.

        ``bytes`` are a value (its SHA-256 hex becomes the digest); a ``str`` is already a hex
        digest. The result does not depend on the order of ``items``.
        Raises :class:`InvalidKey` for a bad key or one outside ``key_range`` (naming it),
        :class:`InvalidValue` for a bad value or a key given twice with different values, and
        :class:`ConfigError` for a bad ``depth``.
        """
        tree = cls(key_range, depth)
        pairs = items.items() if isinstance(items, Mapping) else items
        for pair in pairs:
            try:
                key, value = pair
            except (TypeError, ValueError):
                raise InvalidValue(f"items must be a mapping or (key, value) pairs; got {pair!r}") from None
            digest = _digest(key, value)
            known = tree._digests.get(key)
            if known is not None and known != digest:
                raise InvalidValue(f"key {key!r} is given twice with different values; "
                                   f"pass each key once (e.g. build from a dict)")
            tree._set(key, digest)
        return tree

    # -- shape -------------------------------------------------------------------------------

    @property
    def key_range(self) -> KeyRange:
        return self._key_range

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def leaf_count(self) -> int:
        return 1 << self._depth

    def same_shape(self, other: MerkleTree) -> bool:
        """True when ``other`` covers the same key range with the same depth (so they can be diffed)."""
        return (isinstance(other, MerkleTree) and self._depth == other._depth
                and self._key_range == other._key_range)

    # -- content -----------------------------------------------------------------------------

    def leaf_of(self, key: str) -> int:
        """The leaf whose bucket holds ``key`` (present or not).

        Raises :class:`InvalidKey` for a bad key or one outside this tree's key range.
        """
        known = self._leaf.get(key) if isinstance(key, str) else None
        if known is not None:
            return known
        h = key_hash(key)
        # KeyRange.bucket's formula, inlined: it re-validates its arguments on every call, which
        # is much of the cost of building a tree of 100k keys.
        offset = (h - self._key_range.start - 1) % RING_SIZE
        if offset >= self._width:
            raise InvalidKey(f"key {key!r} (hash {h:#034x}) is outside this tree's key range "
                             f"{self._key_range!r}; keep one tree per key range and add each key "
                             f"to the tree of the range that holds it")
        return offset * (1 << self._depth) // self._width

    def update(self, key: str, value_or_digest: ValueOrDigest) -> None:
        """Insert ``key`` or change its digest. Incremental: only its leaf and path are redone.

        Raises :class:`InvalidKey` (bad key, or outside the key range) or :class:`InvalidValue`.
        """
        self._set(key, _digest(key, value_or_digest))

    def _set(self, key: str, digest: str) -> None:
        leaf = self.leaf_of(key)
        if self._digests.get(key) == digest:
            return
        self._digests[key] = digest
        self._leaf[key] = leaf
        self._buckets.setdefault(leaf, {})[key] = digest
        self._dirty.add(leaf)

    def remove(self, key: str) -> None:
        """Forget ``key``; a no-op if it is absent."""
        leaf = self._leaf.pop(key, None) if isinstance(key, str) else None
        if leaf is None:
            return
        del self._digests[key]
        bucket = self._buckets[leaf]
        del bucket[key]
        if not bucket:
            del self._buckets[leaf]
        self._dirty.add(leaf)

    def digest_of(self, key: str) -> str | None:
        """The digest held for ``key``, or None if the tree does not hold it."""
        return self._digests.get(key)

    def leaf_entries(self, index: int) -> dict[str, str]:
        """A copy of leaf ``index``'s entries, key -> digest, in key order.

        Raises :class:`ClientError` if ``index`` is not a leaf index.
        """
        self._check_node(self._depth, index)
        bucket = self._buckets.get(index, {})
        return {key: bucket[key] for key in sorted(bucket)}

    def keys(self) -> list[str]:
        """Every key held, sorted."""
        return sorted(self._digests)

    def items(self) -> Iterator[tuple[str, str]]:
        """(key, digest) for every key held, in key order."""
        return ((key, self._digests[key]) for key in sorted(self._digests))

    def __len__(self) -> int:
        return len(self._digests)

    def __contains__(self, key: object) -> bool:
        return key in self._digests if isinstance(key, str) else False

    # -- hashes ------------------------------------------------------------------------------

    @property
    def root(self) -> str:
        """The root hash, hex."""
        return self.node_hash(0, 0)

    def node_hash(self, level: int, index: int) -> str:
        """Hex hash of node ``index`` at ``level`` (0 = root, ``depth`` = leaves).

        Raises :class:`ClientError` if there is no such node.
        """
        self._check_node(level, index)
        return self._node(level, index).hex()

    def children(self, level: int, index: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The (level, index) of the two children of an inner node.

        Raises :class:`ClientError` for a leaf or a node that does not exist.
        """
        self._check_node(level, index)
        if level == self._depth:
            raise ClientError(f"node ({level}, {index}) is a leaf (depth {self._depth}); "
                              f"leaves have no children, read leaf_entries({index}) instead")
        return (level + 1, 2 * index), (level + 1, 2 * index + 1)

    def _node(self, level: int, index: int) -> bytes:
        if self._dirty:
            self._refresh()
        found = self._levels[level].get(index)
        return found if found is not None else _EMPTY_BY_HEIGHT[self._depth - level]

    def _check_node(self, level: object, index: object) -> None:
        if (isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= self._depth
                or isinstance(index, bool) or not isinstance(index, int)
                or not 0 <= index < (1 << level)):
            raise ClientError(f"no node ({level!r}, {index!r}) in a tree of depth {self._depth}: "
                              f"levels run 0..{self._depth}, level l has indices 0..2**l - 1")

    def _refresh(self) -> None:
        """Recompute the dirty leaves, then each of their ancestors once, bottom-up."""
        dirty = sorted(self._dirty)
        self._dirty = set()
        leaves = self._levels[self._depth]
        for i in dirty:
            bucket = self._buckets.get(i)
            if bucket:
                leaves[i] = _leaf_hash(bucket)
            else:
                leaves.pop(i, None)
        for level in range(self._depth - 1, -1, -1):
            below, here = self._levels[level + 1], self._levels[level]
            empty_below = _EMPTY_BY_HEIGHT[self._depth - level - 1]
            dirty = sorted({i >> 1 for i in dirty})
            for p in dirty:
                left, right = below.get(2 * p), below.get(2 * p + 1)
                if left is None and right is None:
                    here.pop(p, None)   # keep levels sparse: an empty subtree is implied
                else:
                    here[p] = _inner_hash(left or empty_below, right or empty_below)

    def __repr__(self) -> str:
        return (f"MerkleTree(key_range={self._key_range!r}, depth={self._depth}, "
                f"keys={len(self)}, root={self.root[:12]}...)")


# -- the exchange, one level at a time -------------------------------------------------------

def child_hashes(tree: MerkleTree, level: int, parents: Iterable[int]) -> dict[int, str]:
    """This tree's hashes at ``level + 1`` of the children of ``parents`` (nodes at ``level``).

    This is what one side sends in a round: for each parent the other side found different,
    the hashes of its two children. Keys of the result are sorted indices.
    Raises :class:`ClientError` if ``level`` is the leaf level or a parent does not exist.
    """
    result: dict[int, str] = {}
    for p in sorted(set(parents)):
        for child_level, child in tree.children(level, p):
            result[child] = tree.node_hash(child_level, child)
    return result


def differing_children(tree: MerkleTree, level: int, remote_hashes: Mapping[int, str]) -> list[int]:
    """Sorted indices at ``level`` where this tree's hash differs from ``remote_hashes`` (hex).

    Raises :class:`ClientError` for an index that is not a node at ``level`` or a hash that is
    not a str.
    """
    differing = []
    for index in sorted(remote_hashes):
        remote = remote_hashes[index]
        if not isinstance(remote, str):
            raise ClientError(f"remote hash of node ({level}, {index}) must be a hex str, "
                              f"got {type(remote).__name__}")
        if tree.node_hash(level, index) != remote.lower():
            differing.append(index)
    return differing


def diff_entries(local: Mapping[str, str], remote: Mapping[str, str]) -> list[str]:
    """Sorted keys present on one side only, or on both with different digests."""
    return sorted(key for key in set(local) | set(remote) if local.get(key) != remote.get(key))


@dataclass(frozen=True)
class MerkleDiff:
    """What a top-down comparison of two replicas found, and what it cost.

    * ``keys``: exactly the keys held by one side only or with different digests, sorted;
    * ``hashes_exchanged``: 1 for the roots, then 2 for every inner node found different;
    * ``rounds``: levels visited (1 when the roots agree, at most depth + 1);
    * ``leaves_compared``: differing leaves whose entries were exchanged;
    * ``entries_exchanged``: (key, digest) pairs sent for those leaves, both sides together.
    """

    keys: tuple[str, ...]
    hashes_exchanged: int
    rounds: int
    leaves_compared: int
    entries_exchanged: int


def merkle_diff(a: MerkleTree, b: MerkleTree) -> MerkleDiff:
    """Compare two replicas of one key range top-down and account for the cost.

    Raises :class:`ConfigError` if the trees are not the same shape (key range and depth).
    """
    if not isinstance(a, MerkleTree) or not isinstance(b, MerkleTree):
        raise ClientError(f"merkle_diff compares two MerkleTrees, got "
                          f"{type(a).__name__} and {type(b).__name__}")
    if not a.same_shape(b):
        raise ConfigError(f"cannot diff trees of different shapes: {a.key_range!r} depth {a.depth} vs "
                          f"{b.key_range!r} depth {b.depth}; build both over the same key range and depth")
    hashes, rounds = 1, 1
    differing = differing_children(a, 0, {0: b.root})
    for level in range(a.depth):
        if not differing:
            break
        remote = child_hashes(b, level, differing)
        hashes += len(remote)
        rounds += 1
        differing = differing_children(a, level + 1, remote)
    keys: list[str] = []
    entries = 0
    for leaf in differing:
        local, remote_entries = a.leaf_entries(leaf), b.leaf_entries(leaf)
        entries += len(local) + len(remote_entries)
        keys.extend(diff_entries(local, remote_entries))
    return MerkleDiff(keys=tuple(sorted(keys)), hashes_exchanged=hashes, rounds=rounds,
                      leaves_compared=len(differing), entries_exchanged=entries)


def full_sync_cost(tree: MerkleTree) -> int:
    """What a naive full sync sends instead: one (key, digest) pair per key held."""
    return len(tree)
