"""Lab 4's measurements at full length, on the reference: hashes exchanged against differing
leaves beside 2D + 1 and 2d log2(L/d) (20 trials per d, two depths), depth against cost for
10^5 keys with 10 differences (depths 4 to 20), a wiped node rebuilt by anti-entropy alone
over 10 seeds (rounds beside its number of ranges, bytes beside copying its ranges), and
rounds of pairwise exchange beside ceil(log2 n).

``python -m bench anti_entropy`` (about a minute of CPU here). The notebook runs the same functions
(``dynamo_lab.labs.lab4_anti_entropy.scenarios``) with the student's tree and fewer trials;
tests run a short slice. Everything is seeded: the figures are the same on every run.
"""

from __future__ import annotations

import math
import time

from dynamo_lab.labs.lab4_anti_entropy import checks, scenarios


def bench_cost_curve() -> None:
    for depth, keys in ((10, 8000), (12, 30_000)):
        t0 = time.perf_counter()
        L = 1 << depth
        rows = scenarios.cost_curve(checks.ReferenceTree, checks.reference_merkle_diff,
                                    depth=depth, keys=keys, trials=20, seed=1)
        print(f"hashes exchanged, depth {depth} (L = {L:,} leaves), {keys:,} keys, 20 trials per d:")
        for r in rows:
            off = f"{(r.hashes - r.formula) / r.formula:+6.1%}" if r.formula else "     -"
            exact = "  (2D + 1 = {})".format(2 * depth + 1) if r.d == 1 else ""
            print(f"   d={r.d:6,}: {r.hashes:9.1f} hashes, 2d log2(L/d) = {r.formula:9.1f} "
                  f"{off}; + entries {r.merkle_total:10.1f} vs full sync {r.full_sync:,}{exact}")
        within = [r.d for r in rows if r.formula and abs(r.hashes - r.formula) <= 0.1 * r.formula]
        worse = next((r.d for r in rows if r.merkle_total > r.full_sync), None)
        print(f"   within 10% of 2d log2(L/d) for d in {within}; hashes + entries pass a full "
              f"sync at d = {worse} ({time.perf_counter() - t0:.1f} s)", flush=True)


def bench_depth() -> None:
    t0 = time.perf_counter()
    rows = scenarios.depth_tradeoff(tuple(range(4, 21, 2)), keys=100_000, differences=10, seed=1)
    print("depth against cost, 10^5 keys, 10 differ:")
    for r in rows:
        print(f"   D={r.depth:2}: {r.hashes:4} hashes in {r.rounds:2} rounds + {r.entries:6,} "
              f"leaf entries = {r.total:6,}")
    best = min(rows, key=lambda r: r.total)
    print(f"   cheapest: D={best.depth}; riak_core's 1024 x 1024 segments at 10^9 keys: "
          f"{10**9 / 2**20:.0f} keys a segment, 3 hash exchanges ({time.perf_counter() - t0:.1f} s)",
          flush=True)


def bench_wipe() -> None:
    t0 = time.perf_counter()
    print("a wiped node rebuilt by anti-entropy alone (5 nodes, N=3, 150 keys), 10 seeds:")
    for seed in range(1, 11):
        s = scenarios.wipe_story(seed=seed)
        print(f"   seed {seed:2}: {s.replicated} keys back in {s.rounds:.0f} rounds "
              f"(its ranges: {s.ranges}); {s.messages} messages, {s.bytes:,} bytes vs "
              f"{s.copy_bytes:,} to copy its ranges ({s.bytes / s.copy_bytes:.1f}x)")
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)


def bench_spread() -> None:
    print("rounds until n replicas agree, pairwise push-pull with random peers, 1,000 trials:")
    for n in (3, 8, 32, 128, 512):
        print(f"   n={n:4}: {scenarios.spread_rounds(n, trials=1000, seed=1):5.2f} measured, "
              f"ceil(log2 n) = {math.ceil(math.log2(n))}", flush=True)


def main() -> None:
    bench_cost_curve()
    bench_depth()
    bench_wipe()
    bench_spread()


if __name__ == "__main__":
    main()
