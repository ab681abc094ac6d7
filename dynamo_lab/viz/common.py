"""What every drawing shares: the figure type, PNG rendering, one colour per node, display order.

* :class:`VizFigure` is a plain matplotlib Figure that Jupyter shows as a PNG when it is the value
  of a cell; it never goes through ``pyplot``, so nothing is shown twice and nothing accumulates
  in pyplot's figure list. Everything works with the Agg backend.
* **One colour per node everywhere**: :func:`node_color` gives node ``"A"`` the same colour in the
  ring, the load chart, the space-time diagram and the version DAG (a fixed qualitative palette;
  names ``A``..``Z`` and names ending in a number get palette slot ``index mod 12``, so adding
  or removing a node never recolours the others).
"""

from __future__ import annotations

import hashlib
import io
import re
from typing import Iterable, Optional

from matplotlib.figure import Figure

from ..errors import ConfigError

__all__ = ["VizFigure", "figure_png", "PALETTE", "CLIENT_COLOR", "node_color", "node_colors",
           "figure_and_ax", "natural_key"]


class VizFigure(Figure):
    """A matplotlib Figure that Jupyter displays as a PNG (``_repr_png_``) without pyplot."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes (tight bounding box, white background)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def figure_and_ax(ax, figsize: tuple[float, float]):
    """``(figure, ax)``: a new :class:`VizFigure` of ``figsize`` with one Axes when ``ax`` is
    None, otherwise the figure that holds ``ax`` (the top one, when ``ax`` is in a SubFigure)."""
    if ax is None:
        fig = VizFigure(figsize=figsize, dpi=100)
        return fig, fig.add_subplot()
    fig = ax.figure
    # An Axes inside a SubFigure: hand back the figure that can be shown or saved.
    while getattr(fig, "figure", fig) is not fig and getattr(fig, "figure", None) is not None:
        fig = fig.figure
    return fig, ax


#: A qualitative palette (tab10 reordered, grey left out because keys and clients are grey,
#: then darker tones). Slot i is node A + i.
PALETTE = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#17becf",  # cyan
    "#bcbd22",  # olive
    "#d62728",  # red
    "#393b79",  # indigo
    "#637939",  # moss
    "#8c6d31",  # ochre
)
#: Client endpoints (``client:alice``) in space-time diagrams.
CLIENT_COLOR = "#7f7f7f"


def _natural_slot(node: str) -> Optional[int]:
    if len(node) == 1 and node.isascii() and node.isalpha():
        return ord(node.upper()) - ord("A")
    m = re.search(r"(\d+)$", node)
    return int(m.group(1)) if m else None


def _preferred_slot(node: str) -> int:
    slot = _natural_slot(node)
    if slot is None:
        # md5, not hash(): the same on every run and every PYTHONHASHSEED.
        slot = int.from_bytes(hashlib.md5(node.encode("utf-8", "surrogatepass")).digest()[:4], "big")
    return slot % len(PALETTE)


def node_color(node: str) -> str:
    """The colour of ``node`` in every drawing: ``A``..``Z`` and names ending in a number take
    palette slot (letter index or number) mod 12, other names a slot from their MD5; client
    endpoints (``client:...``) are grey. Use :func:`node_colors` to colour a set of nodes
    without two of them sharing a colour."""
    if not isinstance(node, str):
        raise ConfigError(f"node ids are strings such as 'A'; got {node!r}")
    if node.startswith("client:"):
        return CLIENT_COLOR
    return PALETTE[_preferred_slot(node)]


def node_colors(nodes: Iterable[str]) -> dict[str, str]:
    """``{node: colour}`` for ``nodes`` in sorted order: each node gets :func:`node_color`
    unless an earlier node (in sorted order) already has it, in which case it takes the next
    free palette slot (colours repeat only beyond 12 nodes)."""
    out: dict[str, str] = {}
    used: set[int] = set()
    for node in sorted(set(nodes)):
        if node.startswith("client:"):
            out[node] = CLIENT_COLOR
            continue
        slot = _preferred_slot(node)
        if len(used) < len(PALETTE):
            while slot in used:
                slot = (slot + 1) % len(PALETTE)
        used.add(slot)
        out[node] = PALETTE[slot]
    return out


def natural_key(name: str) -> tuple:
    """Sort key that puts node-2 before node-10 (display order only; still deterministic)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", name) if part)
