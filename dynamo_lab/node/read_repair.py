"""Read repair (the paper, section 4.5): after a get, bring stale primary replicas up to date.

A pure function; the coordinator sends what it returns. Lab 3 swaps it for a student's
(``Parts.read_repair``).
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Optional, Sequence

from ..versions import Versioned
from .common import same_versions


def read_repairs(replies: Mapping[str, Sequence[Versioned]], primaries: Sequence[str],
                 targets: Mapping[str, Optional[str]],
                 reconcile: Callable[[Iterable[Versioned]], list[Versioned]]
                 ) -> tuple[list[Versioned], list[str]]:
    """The reconciled siblings of every reply, and the replicas to send them to.

    ``replies``: replica -> the versions it answered with; ``primaries``: the key's top N;
    ``targets``: everyone the get asked, with whom each stood in for (None: itself).
    A replica is repaired when it is a primary that answered for itself (a stand-in keeps
    hints, not the key) and its own versions, reconciled, are not the reconciled siblings of
    all replies (it missed a write, or kept one another reply supersedes). Sorted by name.
    """
    merged = reconcile(v for vs in replies.values() for v in vs)
    stale = [replica for replica, versions in sorted(replies.items())
             if replica in primaries and targets.get(replica) is None
             and not same_versions(reconcile(versions), merged)]
    return merged, stale
