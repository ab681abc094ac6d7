"""A Bayou database: the write log applied in order, with an undo record per applied write.

The database is a plain ``dict`` from key to JSON value; a key that holds nothing is absent.
Applying a write runs its dependency check against the database as it is at that point of the
log; if the check holds the update is applied, otherwise the merge procedure's changes are.
What each write changed is remembered (its *undo record*: the keys' previous values), so that
a server can roll tentative writes back when an earlier write arrives.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from .writes import ABSENT, JSON, Write

Undo = tuple[tuple[str, JSON], ...]      # (key, value before the write), ABSENT if it had none
Outcome = tuple[str, tuple[tuple[str, JSON], ...]]   # (UPDATED or MERGED, the changes made)

UPDATED = "updated"    # the write's dependency check held: its update was applied
MERGED = "merged"      # it did not: the merge procedure's changes were


def execute(write: Write, db: dict[str, JSON]) -> tuple[Undo, Outcome]:
    """Apply ``write`` to ``db`` in place; return its undo record and its outcome (which branch
    ran and what it changed: the result a user of this server sees for the write).
    Deterministic: the same database gives the same result."""
    op = write.op
    if op.dependency_check(db):
        changes, branch = op.update(db), UPDATED
    else:
        changes, branch = op.merge(db), MERGED
    keys = sorted(changes)
    undo = tuple((k, db.get(k, ABSENT)) for k in keys)
    for k in keys:
        if changes[k] is ABSENT:
            db.pop(k, None)
        else:
            db[k] = changes[k]
    return undo, (branch, tuple((k, changes[k]) for k in keys))


def undo(db: dict[str, JSON], record: Undo) -> None:
    """Roll one write back: put back the values its undo record kept."""
    for k, v in record:
        if v is ABSENT:
            db.pop(k, None)
        else:
            db[k] = v


def replay(checkpoint: Mapping[str, JSON], writes: Iterable[Write]) -> dict[str, JSON]:
    """The database that ``writes`` make, applied in order from ``checkpoint`` (which is not
    changed): what a server's database must always equal."""
    db = dict(checkpoint)
    for w in writes:
        execute(w, db)
    return db
