"""Bayou's writes: what a client asks for, and the record a server keeps of it.

A client's request is a named **operation** (plain data; no code crosses the wire). Every
operation has Bayou's three parts (Terry et al., SOSP 1995, section 4):

* a **dependency check**: a query on the database and the result it expects;
* an **update**: what to change when the check holds;
* a **merge procedure**: what to change instead when it does not.

Each server runs the same operation in the same order on the same data, so the three parts
must be deterministic functions of the database; here they are methods of the operation's
class, which every server has, and only the operation's fields travel.

A server that accepts a write gives it an **accept-stamp** from its logical clock (the
lecture's rule, :func:`new_stamp`), records itself as the accepting server, and leaves its
**CSN** (commit sequence number) empty, infinity on the slides, until the primary commits it.
``(stamp, server)`` names a write everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

JSON = Any
ABSENT = None      # what a query of a key that holds nothing returns (a deleted key holds nothing)


# ---------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------

class _Unconditional:
    """A plain write: no dependency check (it always holds), so no merge procedure either."""

    def dependency_check(self, db: Mapping[str, JSON]) -> bool:
        return True

    def merge(self, db: Mapping[str, JSON]) -> dict[str, JSON]:   # pragma: no cover - never runs
        return {}


@dataclass(frozen=True)
class Put(_Unconditional):
    """w(key, value): set a key (a value of None is the same as a delete)."""
    key: str
    value: JSON

    def update(self, db: Mapping[str, JSON]) -> dict[str, JSON]:
        return {self.key: self.value}

    def label(self) -> str:
        return f"w({self.key},{_text(self.value)})"


@dataclass(frozen=True)
class Delete(_Unconditional):
    """D(key): remove a key."""
    key: str

    def update(self, db: Mapping[str, JSON]) -> dict[str, JSON]:
        return {self.key: ABSENT}

    def label(self) -> str:
        return f"D({self.key})"


@dataclass(frozen=True)
class Add(_Unconditional):
    """Add ``item`` to the set held at ``key`` (a sorted list): a shopping cart's "add"."""
    key: str
    item: str

    def update(self, db: Mapping[str, JSON]) -> dict[str, JSON]:
        items = db.get(self.key)
        items = list(items) if isinstance(items, list) else []
        return {self.key: sorted(set(items) | {self.item})}

    def label(self) -> str:
        return f"add({self.key},{self.item})"


@dataclass(frozen=True)
class Book:
    """The paper's meeting room: book ``room`` at ``slot`` for ``who``.

    Dependency check: the query "who holds ``room`` at ``slot``?" expects nobody.
    Update: ``room`` at ``slot`` is ``who``'s. Merge procedure: the first of ``alternatives``
    that is free is ``who``'s; when none is, the request goes to the ``unbooked`` list (the
    paper's error log), which the user will see.
    """
    room: str
    slot: str
    who: str
    alternatives: tuple[str, ...] = ()

    def key(self, slot: str) -> str:
        return f"{self.room}@{slot}"

    def dependency_check(self, db: Mapping[str, JSON]) -> bool:
        return db.get(self.key(self.slot)) is ABSENT

    def update(self, db: Mapping[str, JSON]) -> dict[str, JSON]:
        return {self.key(self.slot): self.who}

    def merge(self, db: Mapping[str, JSON]) -> dict[str, JSON]:
        for slot in self.alternatives:
            if db.get(self.key(slot)) is ABSENT:
                return {self.key(slot): self.who}
        unbooked = db.get("unbooked")
        unbooked = list(unbooked) if isinstance(unbooked, list) else []
        return {"unbooked": sorted(set(unbooked) | {f"{self.who}:{self.room}@{self.slot}"})}

    def label(self) -> str:
        alt = "|" + "|".join(self.alternatives) if self.alternatives else ""
        return f"book({self.room},{self.slot}{alt},{self.who})"


Operation = Union[Put, Delete, Add, Book]
OPERATIONS = (Put, Delete, Add, Book)


def _text(v: JSON) -> str:
    return v if isinstance(v, str) else str(v).replace(" ", "")


# ---------------------------------------------------------------------------------------------
# Writes in a server's log
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Write:
    """One entry of a write log: the operation, its accept-stamp and accepting server, and its
    CSN (None while tentative: infinity on the slides)."""
    stamp: int
    server: str
    op: Operation
    csn: Optional[int] = None

    @property
    def wid(self) -> tuple[int, str]:
        """The write's name everywhere: (accept-stamp, accepting server)."""
        return (self.stamp, self.server)

    @property
    def committed(self) -> bool:
        return self.csn is not None

    def label(self) -> str:
        """The slides' notation: ``CSN:TS:server``, with ``∞`` for a tentative write."""
        return f"{'∞' if self.csn is None else self.csn}:{self.stamp}:{self.server}"

    def __str__(self) -> str:
        return f"{self.label()} {self.op.label()}"


@dataclass(frozen=True)
class Commit:
    """A commit notice: the write (stamp, server), which the receiver already holds, has CSN
    ``csn``. Sent instead of the whole write (Petersen et al., SOSP 1997, figure 4)."""
    stamp: int
    server: str
    csn: int

    @property
    def wid(self) -> tuple[int, str]:
        return (self.stamp, self.server)


def new_stamp(clock: int, vector: Mapping[str, int]) -> int:
    """The accept-stamp of a new write (the lecture's rule): ``max(clock, max stamp seen + 1)``.

    ``clock`` is the server's clock reading; ``vector`` its version vector, whose largest entry
    is the largest stamp it has seen (its own writes included). So stamps of one server only
    grow, and a write is stamped above every write its server held when it accepted it: the
    order of stamps respects causality.
    """
    return max(clock, max(vector.values(), default=0) + 1)
