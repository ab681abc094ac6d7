"""Failure detectors: when a node believes another one down (the paper, section 4.8).

Dynamo's detection is local: node A suspects B when it has not heard from B for a while.
A detector is told each piece of evidence that a node is alive (``heard(node, now)``: its
heartbeat rose in gossip, or a message from it arrived) and is asked ``suspected(node,
now)``. ``now`` is the asking node's own clock; a detector never reads a real clock.

* :class:`TimeoutDetector`, what every node uses by default: suspect a node not heard from
  for more than ``suspect_after_s``. One fixed time-out for every node and every network.
* :class:`PhiAccrualDetector`, the accrual detector of Hayashibara et al. (SRDS 2004) in the
  form Cassandra uses: instead of yes or no, a level of suspicion ``phi`` that grows with the
  silence, measured in units of the node's own observed inter-arrival times, so that a node
  whose heartbeats come irregularly (a slow network, a busy host) is given longer.
"""

from __future__ import annotations

import math
from collections import deque


class TimeoutDetector:
    """Suspects a node not heard from for more than ``suspect_after_s`` seconds (a node never
    heard from at all is suspected)."""

    def __init__(self, suspect_after_s: float):
        self.suspect_after_s = suspect_after_s
        self._last: dict[str, float] = {}

    def heard(self, node: str, now: float) -> None:
        """Evidence at ``now`` that ``node`` is alive."""
        self._last[node] = max(self._last.get(node, now), now)

    def suspected(self, node: str, now: float) -> bool:
        last = self._last.get(node)
        return last is None or now - last > self.suspect_after_s


class PhiAccrualDetector:
    """The phi accrual failure detector, as Cassandra computes it.

    For each node it keeps the last ``window`` intervals between successive ``heard`` calls
    (an interval of 0, heard twice at one moment, is not kept) and models the next interval as
    exponentially distributed with their mean (``first_interval_s`` until one interval is
    known). After a silence of ``t`` the probability that the node is still alive is
    ``P(next interval > t) = exp(-t / mean)``, and

        phi = -log10(exp(-t / mean)) = t / (mean * ln 10)

    so phi = 1 means a 10% chance that the heartbeat is merely late, phi = 2 a 1% chance, and
    so on. A node is suspected when phi exceeds ``threshold`` (Cassandra's default is 8); a
    node never heard from has phi = infinity.
    """

    def __init__(self, threshold: float = 8.0, window: int = 100, first_interval_s: float = 1.0):
        self.threshold = threshold
        self.window = window
        self.first_interval_s = first_interval_s
        self._last: dict[str, float] = {}
        self._intervals: dict[str, deque] = {}

    def heard(self, node: str, now: float) -> None:
        last = self._last.get(node)
        if last is not None and now > last:
            self._intervals.setdefault(node, deque(maxlen=self.window)).append(now - last)
        if last is None or now > last:
            self._last[node] = now

    def phi(self, node: str, now: float) -> float:
        last = self._last.get(node)
        if last is None:
            return math.inf
        seen = self._intervals.get(node)
        mean = sum(seen) / len(seen) if seen else self.first_interval_s
        return max(0.0, now - last) / (mean * math.log(10))

    def suspected(self, node: str, now: float) -> bool:
        return self.phi(node, now) > self.threshold
