"""Pictures of Dynamo for the labs: pure drawing functions (matplotlib + networkx), one module
per thing drawn, and ipywidgets built on them.

==========================  ===============================================================
module                      draws
==========================  ===============================================================
:mod:`.ring`                the ring, its preference lists, the load per node (Lab 1)
:mod:`.versions`            the version DAG of one key (Lab 2)
:mod:`.messages`            space-time diagrams of a trace (Lab 3)
:mod:`.merkle`              where two Merkle trees differ (Lab 4)
:mod:`.membership`          gossip convergence (Lab 5)
:mod:`.common`              the figure type, PNG rendering, one colour per node
:mod:`.widgets`             the widgets (imported on first use, so the drawings work without
                            a Jupyter stack)
==========================  ===============================================================

Rules every drawing follows:

* every ``draw_*`` function takes an optional ``ax`` (a matplotlib Axes to draw into) and
  returns the Figure it drew on; without ``ax`` it makes a new :class:`VizFigure`, shown once
  as a PNG when it is the value of a cell (with an ``ax`` from ``plt.subplots()`` pyplot shows
  the figure itself: end the line with ``;``);
* **one colour per node everywhere** (:func:`node_color`);
* **the title says what to look at**;
* **deterministic**: the same input gives the same picture (nothing depends on set order or
  ``PYTHONHASHSEED``);
* **inspectable**: the artists a test or a grader may look for carry a ``gid`` (for example
  ``"tokens:A"``, ``"pref:1"``, ``"edge:D1->D2"``, ``"msg:drop:ReplicaPut"``); the docstring
  of each function lists them;
* bad input raises :class:`~dynamo_lab.errors.ConfigError` (a ``ValueError``) saying what is
  expected.

::

    from dynamo_lab.viz import draw_ring, RingWidget
    draw_ring(dl.Ring(["A", "B", "C", "D"]), keys=keys, highlight_key="cart:alice")
    RingWidget(nodes=("A", "B", "C", "D"), vnodes=8)
"""

from .common import CLIENT_COLOR, PALETTE, VizFigure, figure_png, node_color, node_colors
from .membership import draw_convergence
from .merkle import draw_merkle_diff
from .messages import Message, draw_spacetime, match_messages
from .ring import draw_load, draw_load_spread, draw_ring, ring_tokens
from .versions import draw_version_dag, version_dag

_WIDGETS = ("RingWidget", "VersionDagWidget", "SpaceTimeWidget", "MerkleDiffWidget")
# Lab 2's story lives with Lab 2; the notebooks import it from here.
_STORY = ("paper_d1_d5", "paper_d1_d5_steps")


def __getattr__(name):
    # ipywidgets is only needed by the widgets: load it when one is asked for.
    if name in _WIDGETS:
        from . import widgets
        return getattr(widgets, name)
    if name in _STORY:
        from ..labs.lab2_vector_clocks import story
        return getattr(story, name)
    raise AttributeError(f"module 'dynamo_lab.viz' has no attribute {name!r}")


__all__ = [
    "CLIENT_COLOR", "PALETTE", "Message", "VizFigure", "draw_convergence", "draw_load",
    "draw_load_spread", "draw_merkle_diff", "draw_ring", "draw_spacetime", "draw_version_dag",
    "figure_png", "match_messages", "node_color", "node_colors", "ring_tokens", "version_dag",
    *_STORY, *_WIDGETS,
]
