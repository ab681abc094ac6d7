"""The order of a Bayou write log, and where an incoming write goes in it.

Every server keeps its writes in one total order, the same everywhere for the writes they
share once they are committed:

1. **committed** writes first, by CSN (the primary's order);
2. then **tentative** writes, by (accept-stamp, accepting server).

The database a server shows is its log applied in that order. A write that arrives and sorts
before tentative writes already applied makes the server **roll back** those writes (undo
them, last first), put the new write in place, and **redo** them: their dependency checks
and merge procedures may now decide differently.
"""

from __future__ import annotations

import bisect
from typing import Mapping, Sequence

from .writes import Write


def order_key(w: Write) -> tuple:
    """The sort key of the log order: committed by CSN, then tentative by (stamp, server)."""
    if w.csn is not None:
        return (0, w.csn, "")
    return (1, w.stamp, w.server)


def committed_count(log: Sequence[Write]) -> int:
    """How many entries at the head of ``log`` are committed."""
    lo, hi = 0, len(log)
    while lo < hi:                      # committed entries form a prefix of the log
        mid = (lo + hi) // 2
        if log[mid].csn is not None:
            lo = mid + 1
        else:
            hi = mid
    return lo


def position(log: Sequence[Write], write: Write) -> int:
    """Where ``write`` goes in ``log`` (which is in log order and does not hold it): every
    entry from that index on sorts after it, and a server that had applied them rolls them
    back first. A committed write goes after every committed entry with a smaller CSN, which
    is before every tentative one."""
    keys = [order_key(w) for w in log]
    return bisect.bisect_left(keys, order_key(write))


def find(log: Sequence[Write], wid: tuple[int, str]) -> int:
    """The index of the write named ``wid`` = (stamp, server) in ``log``, or -1."""
    for i, w in enumerate(log):
        if w.wid == wid:
            return i
    return -1


def version_vector(log: Sequence[Write], omitted: Mapping[str, int],
                   servers: Sequence[str]) -> dict[str, int]:
    """For each server, the highest accept-stamp of its writes that this log holds or has
    truncated (0 when none). Because of the prefix property, the vector says exactly which
    writes the log holds: all of X's writes stamped up to ``vector[X]``, and no other."""
    vector = {s: omitted.get(s, 0) for s in servers}
    for w in log:
        if w.stamp > vector.get(w.server, 0):
            vector[w.server] = w.stamp
    return vector


def in_log_order(log: Sequence[Write]) -> bool:
    """True when ``log`` is sorted by :func:`order_key` and its CSNs are consecutive."""
    keys = [order_key(w) for w in log]
    if any(a >= b for a, b in zip(keys, keys[1:])):
        return False
    csns = [w.csn for w in log if w.csn is not None]
    return all(b == a + 1 for a, b in zip(csns, csns[1:]))
