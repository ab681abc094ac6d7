"""Log truncation (Petersen et al., SOSP 1997, section 5): a server may discard the head of its
committed writes, since committed writes never move again.

What it keeps instead:

* the **checkpoint**: the database as of the last discarded write;
* the **omitted vector** O: for each server, the highest stamp among the discarded writes;
* the **OSN**: the CSN of the last discarded write.

The version vector still counts the discarded writes (it is at least O), so the stamp rule and
anti-entropy work as before; a receiver whose CSN is below the OSN gets the checkpoint (a full
database transfer) and then the writes after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .database import replay
from .log import committed_count
from .writes import JSON, Write


@dataclass(frozen=True)
class Checkpoint:
    """A server's database as of its OSN, with its omitted vector: what a full database transfer
    carries. Items are sorted by key, so two equal checkpoints are equal on the wire."""
    osn: int
    omitted: tuple[tuple[str, int], ...]
    database: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, osn: int, omitted: Mapping[str, int], db: Mapping[str, JSON]) -> "Checkpoint":
        return cls(osn, tuple(sorted(omitted.items())), tuple(sorted(db.items())))


def truncate(log: Sequence[Write], checkpoint: Mapping[str, JSON], omitted: Mapping[str, int],
             osn: int, keep: int) -> tuple[list[Write], dict[str, JSON], dict[str, int], int]:
    """Discard committed writes from the head of ``log`` until at most ``keep`` committed ones
    are left. Returns the new (log, checkpoint, omitted vector, OSN); tentative writes stay."""
    if keep < 0:
        raise ValueError(f"keep is a number of committed writes to keep, not {keep}")
    drop = max(0, committed_count(log) - keep)
    if drop == 0:
        return list(log), dict(checkpoint), dict(omitted), osn
    gone = log[:drop]
    omitted = dict(omitted)
    for w in gone:
        omitted[w.server] = max(omitted.get(w.server, 0), w.stamp)
    return list(log[drop:]), replay(checkpoint, gone), omitted, gone[-1].csn
