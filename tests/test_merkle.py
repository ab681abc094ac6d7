"""Merkle trees: fixed shape, incremental updates, and a top-down diff whose cost is exact."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dynamo_lab.errors import ConfigError, InvalidKey, InvalidValue
from dynamo_lab.hashing import RING_SIZE, key_hash
from dynamo_lab.merkle import (
    EMPTY_HASH,
    MerkleDiff,
    MerkleTree,
    child_hashes,
    diff_entries,
    differing_children,
    full_sync_cost,
    merkle_diff,
)
from dynamo_lab.ring import KeyRange

SETTINGS = settings(derandomize=True, deadline=None, max_examples=80)

keys_st = st.text(alphabet="abcdefgh:0123", min_size=1, max_size=4)
digests_st = st.binary(min_size=0, max_size=3).map(lambda b: hashlib.sha256(b).hexdigest())
contents_st = st.dictionaries(keys_st, digests_st, max_size=40)
depth_st = st.integers(min_value=0, max_value=6)


def sha(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def content(n: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    return {f"key:{i}": sha(rng.randbytes(8)) for i in range(n)}


def symmetric_difference(a: dict[str, str], b: dict[str, str]) -> tuple[str, ...]:
    return tuple(sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)))


def expected_hashes(tree: MerkleTree, differing_keys) -> int:
    """1 + 2 x (distinct ancestors of the differing leaves at every inner level)."""
    leaves = {tree.leaf_of(k) for k in differing_keys}
    if not leaves:
        return 1
    return 1 + 2 * sum(len({leaf >> (tree.depth - level) for leaf in leaves})
                       for level in range(tree.depth))


# -- the diff finds exactly the difference -----------------------------------------------------

edits_st = st.lists(st.tuples(st.sampled_from(["insert", "delete", "change"]), keys_st, digests_st,
                              st.booleans()), max_size=12)


@SETTINGS
@given(base=contents_st, edits=edits_st, depth=depth_st)
def test_diff_is_exactly_the_symmetric_difference(base, edits, depth):
    a, b = dict(base), dict(base)
    for op, key, digest, on_a in edits:
        side = a if on_a else b
        if op == "delete":
            victims = sorted(side)
            side.pop(victims[len(key) % len(victims)] if victims else key, None)
        elif op == "change" and side:
            victims = sorted(side)
            side[victims[len(key) % len(victims)]] = digest
        else:
            side[key] = digest
    ta, tb = MerkleTree.build(a, depth=depth), MerkleTree.build(b, depth=depth)
    want = symmetric_difference(a, b)
    diff = merkle_diff(ta, tb)
    assert diff.keys == want
    assert merkle_diff(tb, ta).keys == want
    assert diff.hashes_exchanged == expected_hashes(ta, want)
    assert diff.rounds == (1 if not want else depth + 1)
    leaves = sorted({ta.leaf_of(k) for k in want})
    assert diff.leaves_compared == len(leaves)
    assert diff.entries_exchanged == sum(len(ta.leaf_entries(i)) + len(tb.leaf_entries(i))
                                         for i in leaves)
    assert (ta.root == tb.root) == (not want)


@pytest.mark.parametrize("depth", [0, 3, 10, 14])
def test_identical_replicas_cost_one_hash(depth):
    items = content(500, seed=1)
    a = MerkleTree.build(items, depth=depth)
    b = MerkleTree.build(sorted(items.items(), reverse=True), depth=depth)
    assert merkle_diff(a, b) == MerkleDiff(keys=(), hashes_exchanged=1, rounds=1,
                                           leaves_compared=0, entries_exchanged=0)
    assert merkle_diff(MerkleTree(depth=depth), MerkleTree(depth=depth)).hashes_exchanged == 1


@pytest.mark.parametrize("depth", [0, 1, 4, 10, 14, 20])
@pytest.mark.parametrize("edit", ["insert", "delete", "change"])
def test_one_differing_key_costs_2d_plus_1(depth, edit):
    items = content(300, seed=2)
    a = MerkleTree.build(items, depth=depth)
    b = MerkleTree.build(items, depth=depth)
    if edit == "insert":
        b.update("extra", b"new value")
        key = "extra"
    elif edit == "delete":
        key = "key:17"
        b.remove(key)
    else:
        key = "key:42"
        b.update(key, b"changed")
    diff = merkle_diff(a, b)
    assert diff.keys == (key,)
    assert diff.hashes_exchanged == 2 * depth + 1
    assert diff.rounds == depth + 1
    assert diff.leaves_compared == 1
    leaf = a.leaf_of(key)
    assert diff.entries_exchanged == len(a.leaf_entries(leaf)) + len(b.leaf_entries(leaf))


def keys_in_leaves(tree: MerkleTree, leaves: list[int]) -> list[str]:
    """One fresh key landing in each of ``leaves`` (found by search, so deterministic)."""
    wanted, found, i = set(leaves), {}, 0
    while len(found) < len(wanted):
        key = f"probe:{i}"
        leaf = tree.leaf_of(key)
        if leaf in wanted and leaf not in found:
            found[leaf] = key
        i += 1
    return [found[leaf] for leaf in sorted(found)]


@pytest.mark.parametrize("depth, d", [(8, 8), (10, 4), (10, 32)])
def test_d_spread_leaves_cost_2d_log2_l_over_d(depth, d):
    # d leaves spaced L/d apart: every node above level log2(d) differs, and below it exactly d
    # per level, so the cost is 2(d - 1) + 2 d log2(L/d) + 1.
    base = MerkleTree(depth=depth)
    leaf_count = base.leaf_count
    probes = keys_in_leaves(base, [i * (leaf_count // d) for i in range(d)])
    a = MerkleTree.build(content(200, seed=3), depth=depth)
    b = MerkleTree.build(content(200, seed=3), depth=depth)
    for key in probes:
        b.update(key, b"only on b")
    diff = merkle_diff(a, b)
    assert diff.keys == tuple(sorted(probes))
    assert diff.hashes_exchanged == 2 * d * math.log2(leaf_count / d) + 2 * (d - 1) + 1
    assert diff.leaves_compared == d


def test_d_random_leaves_cost_about_2d_log2_l_over_d():
    depth, d = 12, 16
    a = MerkleTree.build(content(2000, seed=4), depth=depth)
    b = MerkleTree.build(content(2000, seed=4), depth=depth)
    for i in range(d):
        b.update(f"key:{i * 97}", b"changed")
    diff = merkle_diff(a, b)
    paper = 2 * d * math.log2(a.leaf_count / d)
    assert len(diff.keys) == d
    assert 0.75 * paper <= diff.hashes_exchanged <= paper + 2 * d
    assert diff.hashes_exchanged + diff.entries_exchanged < full_sync_cost(a) / 5


# -- incremental updates -----------------------------------------------------------------------

ops_st = st.lists(st.tuples(st.sampled_from(["update", "update", "remove", "read"]), keys_st,
                            digests_st), max_size=40)


@SETTINGS
@given(initial=contents_st, ops=ops_st, depth=depth_st)
def test_incremental_updates_match_a_rebuild(initial, ops, depth):
    tree = MerkleTree.build(initial, depth=depth)
    model = dict(initial)
    for op, key, digest in ops:
        if op == "update":
            tree.update(key, digest)
            model[key] = digest
        elif op == "remove":
            tree.remove(key)
            model.pop(key, None)
        else:
            tree.root  # a read in between exercises the lazy recomputation
    rebuilt = MerkleTree.build(model, depth=depth)
    assert tree.root == rebuilt.root
    for level in range(depth + 1):
        for index in range(1 << level):
            assert tree.node_hash(level, index) == rebuilt.node_hash(level, index)
    assert tree.keys() == sorted(model)
    assert len(tree) == len(model)
    assert all(tree.digest_of(k) == v and k in tree for k, v in model.items())


@SETTINGS
@given(items=contents_st, depth=depth_st, data=st.data())
def test_order_of_insertion_is_irrelevant(items, depth, data):
    pairs = sorted(items.items())
    shuffled = data.draw(st.permutations(pairs))
    one = MerkleTree.build(pairs, depth=depth)
    two = MerkleTree(depth=depth)
    for key, digest in shuffled:
        two.update(key, digest)
    assert one.root == two.root == MerkleTree.build(dict(shuffled), depth=depth).root


def test_remove_of_absent_key_and_same_digest_update_change_nothing():
    tree = MerkleTree.build(content(50, seed=5), depth=4)
    before = tree.root
    tree.remove("not-there")
    tree.update("key:3", tree.digest_of("key:3"))
    assert tree.root == before
    tree.update("key:3", b"other")
    assert tree.root != before
    tree.remove("key:3")
    tree.remove("key:3")
    assert "key:3" not in tree and tree.digest_of("key:3") is None and len(tree) == 49


def test_emptied_tree_returns_to_the_empty_root():
    empty = MerkleTree(depth=5).root
    tree = MerkleTree.build(content(30, seed=6), depth=5)
    assert tree.root != empty
    for key in tree.keys():
        tree.remove(key)
    assert tree.root == empty


# -- hashes and entries ------------------------------------------------------------------------

def test_hash_formulas():
    assert EMPTY_HASH == sha(b"[]")
    assert MerkleTree(depth=0).root == EMPTY_HASH
    tree = MerkleTree.build({"b": b"2", "a": b"1"}, depth=0)
    leaf = json.dumps([["a", sha(b"1")], ["b", sha(b"2")]], separators=(",", ":")).encode()
    assert tree.root == sha(leaf)
    deeper = MerkleTree.build({"a": b"1"}, depth=3)
    for level in range(3):
        left, right = deeper.children(level, 0)[0], deeper.children(level, 0)[1]
        assert left == (level + 1, 0) and right == (level + 1, 1)
    for level, index in [(0, 0), (1, 1), (2, 3)]:
        (ll, li), (rl, ri) = deeper.children(level, index)
        raw = bytes.fromhex(deeper.node_hash(ll, li)) + bytes.fromhex(deeper.node_hash(rl, ri))
        assert deeper.node_hash(level, index) == sha(raw)


def test_values_and_digests():
    tree = MerkleTree(depth=2)
    tree.update("v", b"value")
    tree.update("d", sha(b"value").upper())
    assert tree.digest_of("v") == tree.digest_of("d") == sha(b"value")
    assert tree.leaf_entries(tree.leaf_of("v"))["v"] == sha(b"value")
    with pytest.raises(InvalidValue, match="hex digest"):
        tree.update("x", "not hex!")
    with pytest.raises(InvalidValue, match="bytes"):
        tree.update("x", 12)
    with pytest.raises(InvalidKey):
        tree.update("", b"v")
    with pytest.raises(InvalidKey):
        tree.update(7, b"v")
    with pytest.raises(InvalidValue, match="twice"):
        MerkleTree.build([("k", b"1"), ("k", b"2")])
    assert MerkleTree.build([("k", b"1"), ("k", b"1")]).keys() == ["k"]
    assert "x" not in tree and 5 not in tree


def test_leaf_entries_are_sorted_copies_and_cover_every_key():
    items = content(200, seed=7)
    tree = MerkleTree.build(items, depth=3)
    seen = {}
    for i in range(tree.leaf_count):
        entries = tree.leaf_entries(i)
        assert list(entries) == sorted(entries)
        assert all(tree.leaf_of(k) == i for k in entries)
        seen.update(entries)
        entries["intruder"] = "00"
    assert seen == items
    assert "intruder" not in tree
    assert full_sync_cost(tree) == 200


def test_node_addressing_errors():
    tree = MerkleTree(depth=3)
    assert tree.leaf_count == 8
    for level, index in [(-1, 0), (4, 0), (1, 2), (3, 8), (0, -1)]:
        with pytest.raises(ValueError, match="no node"):
            tree.node_hash(level, index)
    with pytest.raises(ValueError, match="leaf"):
        tree.children(3, 0)
    with pytest.raises(ValueError):
        tree.leaf_entries(8)


@pytest.mark.parametrize("depth", [-1, 21, 2.0, True, "10"])
def test_depth_out_of_range_is_rejected(depth):
    with pytest.raises(ConfigError, match="depth"):
        MerkleTree(depth=depth)


def test_deepest_tree_stays_sparse_and_diffable():
    a = MerkleTree.build(content(100, seed=8), depth=20)
    b = MerkleTree.build(content(100, seed=8), depth=20)
    b.update("key:5", b"x")
    assert merkle_diff(a, b).hashes_exchanged == 41


# -- key ranges and shape ----------------------------------------------------------------------

@pytest.mark.parametrize("key_range", [KeyRange(RING_SIZE // 4, RING_SIZE // 2),
                                       KeyRange(3 * RING_SIZE // 4, RING_SIZE // 8)])
def test_tree_over_a_key_range_accepts_only_its_keys(key_range):
    candidates = [f"user:{i}" for i in range(400)]
    inside = [k for k in candidates if key_range.contains(key_hash(k))]
    outside = [k for k in candidates if not key_range.contains(key_hash(k))]
    assert inside and outside
    tree = MerkleTree.build({k: b"v" for k in inside}, key_range=key_range, depth=4)
    assert tree.keys() == sorted(inside)
    with pytest.raises(InvalidKey, match=outside[0]):
        tree.update(outside[0], b"v")
    with pytest.raises(InvalidKey, match=outside[1]):
        MerkleTree.build({outside[1]: b"v"}, key_range=key_range)
    with pytest.raises(ValueError):
        tree.leaf_of(outside[2])
    # leaves cut the range into consecutive slices, in clockwise order from the range's start
    clockwise = sorted(inside, key=lambda k: (key_hash(k) - key_range.start - 1) % RING_SIZE)
    leaves = [tree.leaf_of(k) for k in clockwise]
    assert leaves == sorted(leaves) and leaves[0] < leaves[-1]
    assert leaves == [key_range.bucket(key_hash(k), tree.leaf_count) for k in clockwise]


def test_different_shapes_cannot_be_diffed():
    a = MerkleTree(depth=4)
    assert a.same_shape(MerkleTree(KeyRange(0, 0), depth=4))
    others = [MerkleTree(depth=5), MerkleTree(KeyRange(0, RING_SIZE // 2), depth=4)]
    for other in others:
        assert not a.same_shape(other)
        with pytest.raises(ValueError, match="shape"):
            merkle_diff(a, other)
        with pytest.raises(ValueError, match="shape"):
            merkle_diff(other, a)


# -- the exchange as the node runs it over messages --------------------------------------------

def test_protocol_steps_over_json_messages_find_the_same_keys():
    a = MerkleTree.build(content(1000, seed=9), depth=6)
    b = MerkleTree.build(content(1000, seed=9), depth=6)
    for i in (1, 2, 500):
        b.update(f"key:{i}", b"changed")
    b.remove("key:9")
    wire = lambda m: {int(k): v for k, v in json.loads(json.dumps(m)).items()}  # noqa: E731
    differing = differing_children(a, 0, wire({0: b.root}))
    for level in range(a.depth):
        assert differing == sorted(differing)
        differing = differing_children(a, level + 1, wire(child_hashes(b, level, differing)))
    keys = sorted(k for leaf in differing
                  for k in diff_entries(a.leaf_entries(leaf), b.leaf_entries(leaf)))
    assert tuple(keys) == merkle_diff(a, b).keys == ("key:1", "key:2", "key:500", "key:9")


def test_protocol_helpers_directly():
    tree = MerkleTree.build({"a": b"1", "b": b"2"}, depth=2)
    hashes = child_hashes(tree, 1, [1, 0, 1])
    assert list(hashes) == [0, 1, 2, 3]
    assert hashes == {i: tree.node_hash(2, i) for i in range(4)}
    remote = dict(hashes)
    remote[3] = EMPTY_HASH if hashes[3] != EMPTY_HASH else "00"
    remote[1] = hashes[1].upper()
    assert differing_children(tree, 2, remote) == [3]
    with pytest.raises(ValueError):
        child_hashes(tree, 2, [0])
    with pytest.raises(ValueError):
        differing_children(tree, 1, {5: EMPTY_HASH})
    assert diff_entries({"a": "1", "b": "2", "c": "3"}, {"c": "3", "b": "9", "d": "4"}) == ["a", "b", "d"]
    assert diff_entries({}, {}) == []


# -- determinism -------------------------------------------------------------------------------

SCRIPT = """
import hashlib
from dynamo_lab.merkle import MerkleTree, merkle_diff
items = {f"cart:{i}": hashlib.sha256(str(i).encode()).hexdigest() for i in range(300)}
a = MerkleTree.build(items, depth=7)
b = MerkleTree.build(set(items.items()), depth=7)
b.update("cart:7", b"x"); b.remove("cart:8")
print(a.root, b.root, merkle_diff(a, b))
"""


def test_roots_do_not_depend_on_pythonhashseed():
    outputs = set()
    for seed in ("0", "1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                              text=True, timeout=60, check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert "keys=('cart:7', 'cart:8'), hashes_exchanged=23, rounds=8" in outputs.pop()


# -- a node's trees: built from the keys of their range only ---------------------------------------

from dynamo_lab.node import NodeConfig, NodeServices, Parts, Versioning  # noqa: E402
from dynamo_lab.node.common import versions_digest  # noqa: E402
from dynamo_lab.storage import MemoryStore  # noqa: E402
from dynamo_lab.vclock import VectorClock  # noqa: E402
from dynamo_lab.versions import Versioned  # noqa: E402

_KEYS = [f"k{i}" for i in range(60)]
_RANGES = [KeyRange(0, 0),                                     # the whole ring
           KeyRange(RING_SIZE // 4, RING_SIZE // 2),
           KeyRange(3 * RING_SIZE // 4, RING_SIZE // 8),       # wraps past 0
           KeyRange(key_hash("k7"), key_hash("k7") + 1 if key_hash("k7") + 1 < RING_SIZE else 0)]
_steps_st = st.lists(st.tuples(st.sampled_from(["put", "drop", "tree"]), st.sampled_from(_KEYS),
                               st.integers(0, len(_RANGES) - 1)), max_size=60)


@settings(SETTINGS)
@given(_steps_st)
# A key written, dropped, then written again after a tree of its range was built.
@example([("tree", "k2", 0), ("put", "k2", 0), ("drop", "k2", 0), ("tree", "k2", 1),
          ("put", "k2", 0)])
def test_a_nodes_tree_of_a_range_is_the_tree_of_every_key_it_holds_in_that_range(steps):
    store = MemoryStore()
    services = NodeServices("A", store, random.Random(0), NodeConfig(), versioning=Versioning(),
                            parts=Parts())
    for n, (what, key, r) in enumerate(steps):
        if what == "put":
            services.merge_local(key, [Versioned(n, VectorClock({"A": n + 1}))])
        elif what == "drop":
            services.drop_local(key)
        else:
            services.tree(_RANGES[r], 3)
    for key_range in _RANGES:
        expected = MerkleTree.build(
            {k: versions_digest(vs) for k, vs in store.items() if key_range.contains(key_hash(k))},
            key_range=key_range, depth=3)
        got = services.tree(key_range, 3)
        assert list(got.items()) == list(expected.items())
        assert got.root == expected.root
