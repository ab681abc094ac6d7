"""Lab 2's story: the shopping cart of the paper's Figure 3, versions D1..D5.

:func:`paper_d1_d5` gives the versions, :func:`paper_d1_d5_steps` the same story as a
:class:`~dynamo_lab.viz.VersionDagWidget` scenario. Both are also importable from
:mod:`dynamo_lab.viz`, as the notebooks do. :func:`explain_steps` is the smaller example the
lab explains the rules with before it asks for predictions about the paper's story (so the
explanation does not give its answers away).
"""

from __future__ import annotations

from ...vclock import VectorClock
from ...versions import Versioned

__all__ = ["paper_d1_d5", "paper_d1_d5_steps", "explain_steps"]


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


def explain_steps() -> list[tuple]:
    """The lab's first example as a :class:`~dynamo_lab.viz.VersionDagWidget` scenario: a
    profile written through nodes A and B, one version that descends another and two siblings,
    then (in words only) the merge a reader's context holds."""
    v1 = Versioned(["ada"], VectorClock({"A": 1}))
    v2 = Versioned(["ada", "london"], VectorClock({"A": 2}))
    v3 = Versioned(["ada", "paris"], VectorClock({"A": 1, "B": 1}))
    return [
        ("v1", [("v1", v1)], "A client writes a new profile; node A coordinates: [(A,1)]."),
        ("v2", [("v2", v2)], "The client updates it through A again, on top of v1: [(A,2)] "
                             "descends [(A,1)], so v1 can be forgotten."),
        ("v3", [("v3", v3)], "Another client, which had read v1 only, writes through B: "
                             "[(A,1),(B,1)]. Neither v2 nor v3 descends the other: both stay, "
                             "as siblings."),
        ("a reader", "A client that reads both siblings gets their merge as its context, "
                     "[(A,2),(B,1)]: whatever it writes next descends v2 and v3."),
    ]
