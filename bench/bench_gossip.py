"""Lab 5's measurements with the reference merge, larger than the notebook runs them: push and
push-pull rounds until all n know a rumour beside Pittel's log2 n + ln n (n = 10..10,000),
rumour mongering's residue beside Demers' s = e^{-(k+1)(1-s)}, and false suspicions and
detection time of a time-out and of phi accrual on the same heartbeat traces; each with the
wall time it took."""

from __future__ import annotations

import time

from dynamo_lab.failure_detector import PhiAccrualDetector, TimeoutDetector
from dynamo_lab.labs.lab5_gossip import detection, rumours
from dynamo_lab.labs.lab5_gossip.checks import reference_merge_views

SIZES = (10, 30, 100, 300, 1000, 3000, 10000)
SEEDS = 40


def main() -> None:
    t0 = time.perf_counter()
    push = rumours.rounds_to_all(reference_merge_views, SIZES, lambda n: SEEDS)
    pp = rumours.rounds_to_all(reference_merge_views, SIZES, lambda n: SEEDS, "push-pull")
    print(f"rumour rounds, {SEEDS} seeds per n ({time.perf_counter() - t0:.1f} s):")
    for a, b in zip(push, pp):
        print(f"  n={a.n:>6}: push {a}; log2 n + ln n = {rumours.pittel(a.n):5.1f} "
              f"(mean - formula {a.mean - rumours.pittel(a.n):+.2f}); push-pull {b}")
    t0 = time.perf_counter()
    res = rumours.residues(reference_merge_views, 10000, seeds=10)
    print(f"rumour mongering residue, n=10,000, 10 seeds ({time.perf_counter() - t0:.1f} s):")
    for k, (mean, se) in res.items():
        print(f"  k={k}: {mean:.4f} +- {se:.4f}, Demers {rumours.demers_residue(k):.4f}")
    for interval in (1.0, 2.0):
        t0 = time.perf_counter()
        rows = detection.compare(TimeoutDetector, lambda th: PhiAccrualDetector(th, 100, 1.0),
                                 (1.5, 2, 3, 4, 6), (0.5, 1, 2, 3, 5, 8), seeds=range(1, 11),
                                 interval_s=interval)
        print(f"detectors, heartbeats every {interval:g} s, 10 traces of 600 s "
              f"({time.perf_counter() - t0:.1f} s):")
        for r in rows:
            print(f"  {r}")
