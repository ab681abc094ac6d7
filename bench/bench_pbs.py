"""Lab 3's measurements at full length, on the reference cluster: stale reads against the PBS
closed form, t-visibility against the paper's LNKD-SSD and LNKD-DISK figures, the R/W
trade-off (staleness beside p99.9 latency), and availability with sloppy and strict quorum.

``python -m bench pbs`` (about 2.5 minutes of CPU here). The notebook runs the same functions
(``dynamo_lab.labs.lab3_quorums.pbs``) with a few hundred trials; tests run a short slice.
Every trial is its own seeded cluster: the figures are the same on every run.
"""

from __future__ import annotations

import time

from dynamo_lab.labs.lab3_quorums import pbs

STALE_TRIALS = 10_000       # per (N, R, W)
VISIBILITY_TRIALS = 20_000  # per latency model (N=3, R=W=1)
TRADE_OFF_TRIALS = 2_000    # per (R, W, model)
PUTS = 2_000                # per availability setting


def bench_closed_form() -> None:
    print(f"stale reads right after a write reached exactly W of N replicas "
          f"({STALE_TRIALS:,} trials each):")
    for n, r, w in pbs.PBS_CONFIGS:
        t0 = time.perf_counter()
        rate = pbs.stale_reads(n, r, w, trials=STALE_TRIALS, seed=1)
        formula = pbs.closed_form(n, r, w)
        print(f"   N={n} R={r} W={w}: measured {rate}, C(N-W,R)/C(N,R) = {formula:.4f} "
              f"{'inside' if rate.contains(formula) else 'OUTSIDE'} the 95% interval "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    rate = pbs.stale_reads(3, 1, 1, trials=STALE_TRIALS // 2, seed=2, k=2)
    formula = pbs.closed_form(3, 1, 1, k=2)
    print(f"   two versions stale, N=3 R=1 W=1: measured {rate}, (2/3)^2 = {formula:.4f} "
          f"{'inside' if rate.contains(formula) else 'OUTSIDE'}", flush=True)


def bench_t_visibility() -> None:
    print(f"t-visibility, N=3, R=W=1, coordinator outside the replicas (the paper's model), "
          f"{VISIBILITY_TRIALS:,} trials each:")
    for preset, paper in pbs.PAPER_T_VISIBILITY.items():
        t0 = time.perf_counter()
        res = pbs.t_visibility(preset, ts_ms=(0, 1, 2, 5, 10), trials=VISIBILITY_TRIALS, seed=1)
        for t in sorted(res.consistent):
            line = f"   {preset:9} t={t:>2} ms: {res.consistent[t]}"
            if t in paper:
                gap = 100 * (res.consistent[t].value - paper[t])
                line += (f"   the paper {100 * paper[t]:.3f}%  (difference {gap:+.2f} points, "
                         f"{'within' if abs(gap) <= 2 else 'NOT within'} 2)")
            print(line)
        print(f"   {preset:9} p99.9 latency: write {res.percentile('write', 0.999):.2f} ms, "
              f"read {res.percentile('read', 0.999):.2f} ms ({time.perf_counter() - t0:.1f} s)",
              flush=True)


def bench_trade_off() -> None:
    print(f"R and W against staleness and latency, N=3 ({TRADE_OFF_TRIALS:,} trials each):")
    print(f"   {'model':9} {'R':>2} {'W':>2}  {'consistent at t=0':>26}  {'at t=5 ms':>26}  "
          f"{'p99.9 write':>11}  {'p99.9 read':>10}")
    for preset in pbs.PAPER_T_VISIBILITY:
        for r, w in ((1, 1), (1, 2), (2, 1), (2, 2), (1, 3), (3, 1)):
            res = pbs.t_visibility(preset, ts_ms=(0, 5), trials=TRADE_OFF_TRIALS, seed=3,
                                   r=r, w=w)
            print(f"   {preset:9} {r:>2} {w:>2}  {str(res.consistent[0]):>26}  "
                  f"{str(res.consistent[5]):>26}  {res.percentile('write', 0.999):>8.2f} ms  "
                  f"{res.percentile('read', 0.999):>7.2f} ms", flush=True)


def bench_availability() -> None:
    print(f"availability from the moment nodes crash ({PUTS:,} puts each, a new key through a "
          f"random live node; the paper: 99.9995% without a time-out):")
    cases = [("6 nodes, C and D down, N=3 R=W=2", {"nodes": 6, "down": ("C", "D")}),
             ("5 nodes, C down,       N=3 R=W=2", {"nodes": 5, "down": ("C",)}),
             ("5 nodes, C down,       N=3 R=1 W=3", {"nodes": 5, "down": ("C",), "r": 1, "w": 3})]
    for label, kw in cases:
        sloppy = pbs.availability(puts=PUTS, seed=1, sloppy=True, **kw)
        strict = pbs.availability(puts=PUTS, seed=1, sloppy=False, **kw)
        print(f"   {label}: sloppy {sloppy}, strict {strict}", flush=True)


def main() -> None:
    bench_closed_form()
    bench_t_visibility()
    bench_trade_off()
    bench_availability()


if __name__ == "__main__":
    main()
