"""Pictures of Dynamo for the labs.

* :mod:`dynamo_lab.viz.draw`: pure drawing functions (matplotlib + networkx). Each takes an
  optional ``ax`` and returns the Figure; tests inspect what was drawn.
* :mod:`dynamo_lab.viz.widgets`: ipywidgets built on them (imported on first use, so the
  drawings work without a Jupyter stack).

::

    from dynamo_lab.viz import draw_ring, RingWidget
    draw_ring(dl.Ring(["A", "B", "C", "D"]), keys=keys, highlight_key="cart:alice")
    RingWidget(nodes=("A", "B", "C", "D"), vnodes=8)
"""

from .draw import (CLIENT_COLOR, PALETTE, Message, VizFigure, draw_convergence, draw_load,
                   draw_load_spread, draw_merkle_diff, draw_ring, draw_spacetime,
                   draw_version_dag, figure_png, match_messages, node_color, node_colors,
                   paper_d1_d5, paper_d1_d5_steps, ring_tokens, version_dag)

_WIDGETS = ("RingWidget", "VersionDagWidget", "SpaceTimeWidget", "MerkleDiffWidget")


def __getattr__(name):
    # ipywidgets is only needed by the widgets: load it when one is asked for.
    if name in _WIDGETS:
        from . import widgets
        return getattr(widgets, name)
    raise AttributeError(f"module 'dynamo_lab.viz' has no attribute {name!r}")


__all__ = [
    "CLIENT_COLOR", "PALETTE", "Message", "VizFigure", "draw_convergence", "draw_load",
    "draw_load_spread", "draw_merkle_diff", "draw_ring", "draw_spacetime", "draw_version_dag",
    "figure_png", "match_messages", "node_color", "node_colors", "paper_d1_d5",
    "paper_d1_d5_steps", "ring_tokens", "version_dag", *_WIDGETS,
]
