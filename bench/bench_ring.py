"""Consistent hashing: lookup throughput, and load spread against the formula.

Run alone with ``python bench/bench_ring.py`` or with the others via ``python -m bench``.
"""

from __future__ import annotations

import math
import random
import statistics
import time

from dynamo_lab.hashing import key_hash
from dynamo_lab.ring import Ring, moved_keys

NODES, VNODES, N, LOOKUPS = 100, 256, 3, 200_000


def _rate(fn, items) -> float:
    t0 = time.perf_counter()
    for x in items:
        fn(x, N)
    return len(items) / (time.perf_counter() - t0)


def bench_lookups() -> None:
    t0 = time.perf_counter()
    ring = Ring([f"node-{i:03d}" for i in range(NODES)], vnodes=VNODES)
    build_ms = (time.perf_counter() - t0) * 1e3
    keys = [f"user:{i}" for i in range(LOOKUPS)]
    hashes = [key_hash(k) for k in keys]
    print(f"ring of {NODES} nodes x {VNODES} vnodes built in {build_ms:.0f} ms")
    cold = _rate(ring.preference_list_for_hash, hashes)   # first pass fills the walk cache
    warm = _rate(ring.preference_list_for_hash, hashes)
    with_hash = _rate(ring.preference_list, keys)
    print(f"preference_list_for_hash(h, n={N}) over {LOOKUPS:,} hashes: "
          f"{cold:,.0f}/s cold cache, {warm:,.0f}/s warm")
    print(f"preference_list(key, n={N}) including MD5:            {with_hash:,.0f}/s")
    t0 = time.perf_counter()
    equal = Ring([f"node-{i:03d}" for i in range(NODES)], strategy="equal", partitions=NODES * VNODES)
    build_ms = (time.perf_counter() - t0) * 1e3
    _rate(equal.preference_list_for_hash, hashes)
    print(f"strategy 'equal', Q={NODES * VNODES}: built in {build_ms:.0f} ms; lookups (warm) "
          f"{_rate(equal.preference_list_for_hash, hashes):,.0f}/s")


def bench_balance() -> None:
    n, sets = 10, 20
    rng = random.Random(2007)
    print(f"ownership CV, {n} nodes, RMS over {sets} random node-name sets (formula sqrt((n-1)/(n v+1))):")
    for v in (1, 4, 16, 64, 256):
        sq = []
        for _ in range(sets):
            own = list(Ring([f"node-{rng.getrandbits(32):08x}" for _ in range(n)], vnodes=v)
                       .ownership().values())
            sq.append((statistics.pstdev(own) / statistics.fmean(own)) ** 2)
        measured, formula = math.sqrt(statistics.fmean(sq)), math.sqrt((n - 1) / (n * v + 1))
        print(f"  v={v:4d}  measured {measured:.4f}  formula {formula:.4f}  ratio {measured / formula:.3f}")


def bench_movement() -> None:
    n, v, count = 10, 64, 20_000
    keys = [f"key:{i}" for i in range(count)]
    old = Ring([f"node-{i}" for i in range(n)], vnodes=v)
    fractions = []
    for j in range(10):
        new = old.copy()
        new.add_node(f"joiner-{j}")
        fractions.append(len(moved_keys(old, new, keys)) / count)
    print(f"keys moved by one join to {n} nodes (v={v}, {count:,} keys, 10 joiners): "
          f"mean {statistics.fmean(fractions):.4f}, min {min(fractions):.4f}, max {max(fractions):.4f}; "
          f"1/(n+1) = {1 / (n + 1):.4f}")


def main() -> None:
    bench_lookups()
    bench_balance()
    bench_movement()


if __name__ == "__main__":
    main()
