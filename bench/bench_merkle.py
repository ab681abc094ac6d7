"""Merkle trees: build speed, incremental update speed, and what a diff costs beside a full sync."""

from __future__ import annotations

import hashlib
import math
import random
import time

from dynamo_lab.merkle import MerkleTree, full_sync_cost, merkle_diff

KEYS = 100_000
DIFFERING = 10
SEED = 11


def _content(n: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    return {f"user:{i}": hashlib.sha256(rng.randbytes(16)).hexdigest() for i in range(n)}


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    print(f"merkle: {KEYS:,} keys, seed={SEED}")
    items = _content(KEYS, SEED)

    for depth in (10, 14):
        tree, fill_s = _timed(lambda: MerkleTree.build(items, depth=depth))
        _, root_s = _timed(lambda: tree.root)  # hashes are computed lazily, on the first read
        build_s = fill_s + root_s
        print(f"  depth {depth:2d} ({1 << depth:,} leaves): build {build_s * 1e3:6.1f} ms "
              f"({KEYS / build_s:,.0f} keys/s; of which hashing {root_s * 1e3:.1f} ms)")

    tree = MerkleTree.build(items, depth=10)
    tree.root
    rng = random.Random(SEED)
    names = sorted(items)
    updates = 20_000

    def update_and_read():
        for i in range(updates):
            tree.update(names[rng.randrange(KEYS)], i.to_bytes(4, "big"))
            tree.root  # read after every write: the worst case for the lazy recomputation

    def update_then_read():
        for i in range(updates):
            tree.update(names[rng.randrange(KEYS)], (i + updates).to_bytes(4, "big"))
        tree.root

    _, each_s = _timed(update_and_read)
    _, batch_s = _timed(update_then_read)
    print(f"  incremental updates (depth 10): {updates / each_s:,.0f}/s with the root read after "
          f"each, {updates / batch_s:,.0f}/s batched with one read")

    print(f"  diff with {DIFFERING} differing keys (full sync sends {KEYS:,} (key, digest) pairs):")
    for depth in (10, 14):
        a = MerkleTree.build(items, depth=depth)
        b = MerkleTree.build(items, depth=depth)
        for name in rng.sample(names, DIFFERING):
            b.update(name, b"changed on b")
        a.root, b.root
        diff, diff_s = _timed(lambda: merkle_diff(a, b))
        assert len(diff.keys) == DIFFERING
        leaves = a.leaf_count
        paper = 2 * DIFFERING * math.log2(leaves / DIFFERING)
        sent = diff.hashes_exchanged + diff.entries_exchanged
        print(f"    depth {depth:2d}: {diff.hashes_exchanged} hashes (2d log2(L/d) = {paper:.0f}) "
              f"in {diff.rounds} rounds + {diff.entries_exchanged} entries from "
              f"{diff.leaves_compared} leaves = {sent:,} items, "
              f"{full_sync_cost(a) / sent:,.0f}x less than a full sync; diff {diff_s * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
