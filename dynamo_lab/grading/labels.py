"""Versions as the labs' parts see them: *labels*, strings naming one version each.

A part that decides about versions (Lab 3's read repair, Lab 4's repair step) takes and returns
labels, so that its inputs and answers cross the grading sandbox as plain strings:
``'["book", "pen"]@[(A,2)]'`` is the value ``["book", "pen"]`` with clock ``[(A,2)]``, and
``'<tombstone>@[(A,2),(B,1)]'`` a delete. :class:`Labels` keeps them unique per version.
"""

from __future__ import annotations

from typing import Any, Iterable


def version_label(version: Any) -> str:
    """A version's label: its value (JSON) or ``<tombstone>``, then ``@`` and its clock."""
    from ..versions import canonical_json
    what = "<tombstone>" if version.deleted else canonical_json(version.value)
    return f"{what}@{version.clock}"


class Labels:
    """Labels for the versions of one decision, unique per version: a label two versions
    would share (same value and clock, two writes) gets the second one's write id.
    ``versions`` maps each label given out to its version."""

    def __init__(self) -> None:
        self._by_digest: dict[str, str] = {}
        self.versions: dict[str, Any] = {}

    def of(self, versions: Iterable) -> list[str]:
        out = []
        for v in versions:
            label = self._by_digest.get(v.digest())
            if label is None:
                label = version_label(v)
                if label in self.versions:
                    label = f"{label} (write {v.write_id or len(self.versions)})"
                self._by_digest[v.digest()] = label
                self.versions[label] = v
            out.append(label)
        return out


def sample_versions() -> list:
    """A few versions of a cart, some concurrent, one a delete: what the checks draw from."""
    from ..vclock import VectorClock
    from ..versions import Versioned
    return [Versioned(["book"], VectorClock({"A": 1})),
            Versioned(["book", "pen"], VectorClock({"A": 2})),
            Versioned(["book", "mug"], VectorClock({"A": 1, "B": 1})),
            Versioned(None, VectorClock({"A": 2, "B": 1}), deleted=True),
            Versioned(["lamp"], VectorClock({"C": 1})),
            Versioned(["book", "mug", "tea"], VectorClock({"A": 1, "B": 2}))]
