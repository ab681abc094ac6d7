"""Lab 2's story: the shopping cart of the paper's Figure 3, versions D1..D5.

:func:`paper_d1_d5` gives the versions, :func:`paper_d1_d5_steps` the same story as a
:class:`~dynamo_lab.viz.VersionDagWidget` scenario. Both are also importable from
:mod:`dynamo_lab.viz`, as the notebooks do.
"""

from __future__ import annotations

from ...vclock import VectorClock
from ...versions import Versioned

__all__ = ["paper_d1_d5", "paper_d1_d5_steps"]


def paper_d1_d5() -> list[tuple[str, Versioned]]:
    """The shopping-cart versions of the paper's Figure 3, as ``(label, Versioned)``:
    D1 [(Sx,1)], D2 [(Sx,2)], D3 [(Sx,2),(Sy,1)], D4 [(Sx,2),(Sz,1)], D5 [(Sx,3),(Sy,1),(Sz,1)].
    D3 and D4 are concurrent; D5 is the reconciled write that descends both."""
    return [
        ("D1", Versioned(["book"], VectorClock({"Sx": 1}))),
        ("D2", Versioned(["book", "pen"], VectorClock({"Sx": 2}))),
        ("D3", Versioned(["book", "pen", "lamp"], VectorClock({"Sx": 2, "Sy": 1}))),
        ("D4", Versioned(["book", "pen", "mug"], VectorClock({"Sx": 2, "Sz": 1}))),
        ("D5", Versioned(["book", "pen", "lamp", "mug"], VectorClock({"Sx": 3, "Sy": 1, "Sz": 1}))),
    ]


def paper_d1_d5_steps() -> list[tuple[str, list[tuple[str, Versioned]], str]]:
    """The D1..D5 story as a :class:`~dynamo_lab.viz.VersionDagWidget` scenario:
    ``(step label, new versions, what happened)``."""
    d = dict(paper_d1_d5())
    story = [
        ("D1", "A client writes a new cart; node Sx coordinates the write: [(Sx,1)]."),
        ("D2", "The client updates the cart, again through Sx: [(Sx,2)] descends D1, "
               "so D1 can be forgotten."),
        ("D3", "The client updates it again, through Sy this time: [(Sx,2),(Sy,1)]."),
        ("D4", "Another client read D2 and writes through Sz: [(Sx,2),(Sz,1)]. Neither D3 nor D4 "
               "descends the other: they are siblings."),
        ("D5", "A client reads both siblings, merges the carts and writes through Sx: "
               "[(Sx,3),(Sy,1),(Sz,1)] descends D3 and D4."),
    ]
    return [(label, [(label, d[label])], text) for label, text in story]
