"""Lab 5's failure-detection measurements: false suspicions and detection time, a plain
time-out against phi accrual, on the same heartbeat traces.

A trace is when node A hears node B: B sends a heartbeat every ``interval_s``; each takes a
log-normal network delay (median ``median_ms``, shape ``sigma``: most arrive quickly, a few
very late), so arrivals bunch and gap. Once, B pauses for ``pause_s`` (a long garbage
collection, a stalled disk: B is alive but silent, a *gray* failure), and at the end B crashes
for good. A asks its detector every ``check_s`` whether B is suspected:

* a *false suspicion* is a moment at which A starts suspecting B while B is alive (the pause
  counts: B was slow, not dead);
* the *detection time* is how long after the crash A starts suspecting B.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass(frozen=True)
class Trace:
    """When A hears B (arrival times, sorted), when B paused, when it crashed."""
    arrivals: tuple[float, ...]
    pause: tuple[float, float]
    crash_s: float
    interval_s: float


def heartbeat_trace(seed: int, *, duration_s: float = 600.0, interval_s: float = 1.0,
                    median_ms: float = 100.0, sigma: float = 1.0, pause_at_s: float = 300.0,
                    pause_s: float = 2.0) -> Trace:
    """One seeded trace (see the module docstring); B crashes at ``duration_s``."""
    rng = random.Random(f"lab5-heartbeats/{seed}")
    mu = math.log(median_ms / 1000)
    arrivals = []
    t = 0.0
    while t < duration_s:
        if not pause_at_s <= t < pause_at_s + pause_s:
            arrivals.append(t + rng.lognormvariate(mu, sigma))
        t = round(t + interval_s, 9)
    arrivals = sorted(a for a in arrivals if a < duration_s + 30)
    return Trace(tuple(arrivals), (pause_at_s, pause_at_s + pause_s), duration_s, interval_s)


@dataclass
class Outcome:
    """One detector on one trace: false suspicions while B lived, detection time of the crash
    (None: never suspected within the trace's end)."""
    false_suspicions: int
    detection_s: float | None
    lived_s: float

    @property
    def per_hour(self) -> float:
        return self.false_suspicions * 3600 / self.lived_s


def run_detector(make: Callable[[], object], trace: Trace, check_s: float = 0.1,
                 warmup_s: float = 60.0) -> Outcome:
    """Feed ``trace`` to a fresh detector (``make()``, with ``heard`` and ``suspected``) and
    ask it about B every ``check_s``. Suspicions that start in the first ``warmup_s`` (while
    an accrual detector has few intervals to go by) are not counted; the detection time is
    when the suspicion that never ends began, counted from the crash (0 when it began
    before)."""
    det = make()
    arrivals = list(trace.arrivals)
    end = (arrivals[-1] if arrivals else trace.crash_s) + 60
    i, was, false, began = 0, False, 0, None
    for s in range(1, int(end / check_s) + 1):
        now = s * check_s
        while i < len(arrivals) and arrivals[i] <= now:
            det.heard("B", arrivals[i])
            i += 1
        if i == 0:
            continue
        sus = bool(det.suspected("B", now))
        if sus and not was:
            began = now
            if warmup_s <= now < trace.crash_s:
                false += 1
        was = sus
    detected = max(0.0, began - trace.crash_s) if was and began is not None else None
    return Outcome(false, detected, trace.crash_s - warmup_s)


@dataclass
class Row:
    """One detector setting over several traces."""
    name: str
    setting: float
    per_hour: float
    detection_s: float

    def __str__(self) -> str:
        return (f"{self.name} {self.setting:g}: {self.per_hour:6.1f} false suspicions per hour, "
                f"crash detected after {self.detection_s:.2f} s")


def compare(make_timeout: Callable[[float], object], make_phi: Callable[[float], object],
            timeouts: Sequence[float], thresholds: Sequence[float], seeds: Sequence[int] = (1, 2, 3),
            **trace_kw) -> list[Row]:
    """Every time-out and every phi threshold on the same traces (one per seed): false
    suspicions per hour of B's life and the mean detection time."""
    traces = [heartbeat_trace(s, **trace_kw) for s in seeds]
    rows = []
    for name, make, settings in (("timeout", make_timeout, timeouts),
                                 ("phi", make_phi, thresholds)):
        for x in settings:
            outs = [run_detector(lambda: make(x), tr) for tr in traces]
            rate = sum(o.false_suspicions for o in outs) * 3600 / sum(o.lived_s for o in outs)
            det = [o.detection_s for o in outs if o.detection_s is not None]
            rows.append(Row(name, x, rate, statistics.fmean(det) if det else math.inf))
    return rows


def tail_latency_s(q: float = 0.999, median_ms: float = 100.0, sigma: float = 1.0) -> float:
    """The ``q`` quantile of the log-normal heartbeat delay (seconds)."""
    return math.exp(math.log(median_ms / 1000) + sigma * statistics.NormalDist().inv_cdf(q))
