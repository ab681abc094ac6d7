"""One client write, one version: write ids, and the writes a coordinator stamped lately.

Every put and delete carries a write id, given where the client's request first arrived
(``client:request id``) and kept through forwards and retries. A coordinator that already
stamped a write with that id (a duplicated or retried request) sends that version again
instead of stamping a second one.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Iterable, Optional

from ..vclock import VectorClock
from ..versions import MAX_WRITE_ID_CHARS, Versioned

#: How many recent writes a coordinator remembers by write id (beyond what its store shows).
RECENT_WRITES = 4096


def write_id_for(client: str, req_id: str) -> str:
    """The id of a client's write: ``client:request id`` (hashed if that is too long)."""
    wid = f"{client}:{req_id}"
    if len(wid) > MAX_WRITE_ID_CHARS:
        wid = "h:" + hashlib.sha256(wid.encode("utf-8", "surrogatepass")).hexdigest()
    return wid


class RecentWrites:
    """The versions this coordinator stamped lately, by write id (oldest forgotten first)."""

    def __init__(self, size: int = RECENT_WRITES):
        self.size = size
        self._by_id: OrderedDict[str, tuple[str, Versioned]] = OrderedDict()

    def remember(self, write_id: str, key: str, version: Versioned) -> None:
        self._by_id[write_id] = (key, version)
        if len(self._by_id) > self.size:
            self._by_id.popitem(last=False)

    def find(self, write_id: str, key: str, deleted: bool, value: Any, context: VectorClock,
             held: Iterable[Versioned]) -> Optional[Versioned]:
        """The version this write was stamped with before, if remembered here or among the
        versions ``held`` (the replicas' copies); None for a new write. It must be the same
        write: same id, same value (or a delete), on top of the same context."""
        def same(v: Versioned) -> bool:
            return (v.write_id == write_id and v.deleted == deleted
                    and (deleted or v.value == value) and v.clock.descends(context))

        seen = self._by_id.get(write_id)
        if seen is not None and seen[0] == key and same(seen[1]):
            return seen[1]
        return next((v for v in held if same(v)), None)
