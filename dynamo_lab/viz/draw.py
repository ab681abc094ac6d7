"""Pure drawing functions for the labs: matplotlib + networkx, no widgets, no pyplot state.

Every ``draw_*`` function takes an optional ``ax`` (a matplotlib Axes to draw into) and returns
the Figure it drew on. Without ``ax`` it makes a new :class:`VizFigure`, which is a plain
matplotlib Figure that Jupyter shows as a PNG when it is the value of a cell; it never goes
through ``pyplot``, so nothing is shown twice and nothing accumulates in pyplot's figure list.
All of it works with the Agg backend.

Rules every drawing follows:

* **one colour per node everywhere**: :func:`node_color` gives node ``"A"`` the same colour in
  the ring, the load chart, the space-time diagram and the version DAG (a fixed qualitative
  palette; names ``A``..``Z`` and names ending in a number get palette slot ``index mod 12``, so
  adding or removing a node never recolours the others);
* **the title says what to look at**;
* **deterministic**: the same input gives the same picture (nothing depends on set order or
  ``PYTHONHASHSEED``);
* **shown once**: a drawing returned as a cell's value is shown; when you pass an ``ax`` from
  ``plt.subplots()`` pyplot shows the figure itself (end the line with ``;``);
* **inspectable**: the artists a test or a grader may look for carry a ``gid`` (for example
  ``"tokens:A"``, ``"pref:1"``, ``"edge:D1->D2"``, ``"msg:drop:ReplicaPut"``); the docstring of
  each function lists them.

Bad input raises :class:`~dynamo_lab.errors.ConfigError` (a ``ValueError``) saying what is
expected.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

import networkx as nx
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch
from matplotlib.path import Path as MplPath
from matplotlib.transforms import blended_transform_factory

from ..errors import ConfigError
from ..hashing import RING_SIZE, key_hash
from ..merkle import MerkleTree, full_sync_cost, merkle_diff
from ..vclock import VectorClock
from ..versions import Versioned

__all__ = [
    "VizFigure", "PALETTE", "CLIENT_COLOR", "node_color", "node_colors", "ring_tokens",
    "draw_ring", "draw_load", "draw_load_spread", "draw_version_dag", "draw_merkle_diff",
    "draw_spacetime", "draw_convergence", "paper_d1_d5", "paper_d1_d5_steps",
    "match_messages", "Message", "figure_png", "version_dag",
]

# --------------------------------------------------------------------------------------------
# Figures and colours
# --------------------------------------------------------------------------------------------


class VizFigure(Figure):
    """A matplotlib Figure that Jupyter displays as a PNG (``_repr_png_``) without pyplot."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes (tight bounding box, white background)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


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
_KEY_COLOR = "#6b6b6b"
_MOVED_COLOR = "#ffc400"
_DIFF_COLOR = "#d62728"
_SAME_COLOR = "#2ca02c"
_SKIP_COLOR = "#d9d9d9"
_SIBLING_FACE, _SIBLING_EDGE = "#ffe3b3", "#e67e00"
_LATEST_FACE, _LATEST_EDGE = "#dcf3dc", "#2ca02c"


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


def _figure_and_ax(ax, figsize: tuple[float, float]):
    if ax is None:
        fig = VizFigure(figsize=figsize, dpi=100)
        return fig, fig.add_subplot()
    fig = ax.figure
    # An Axes inside a SubFigure: hand back the figure that can be shown or saved.
    while getattr(fig, "figure", fig) is not fig and getattr(fig, "figure", None) is not None:
        fig = fig.figure
    return fig, ax


# --------------------------------------------------------------------------------------------
# Rings: what a ring object must offer
# --------------------------------------------------------------------------------------------


def _check_token(t: object, node: object) -> int:
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < RING_SIZE:
        raise ConfigError(f"token {t!r} of node {node!r} is not a ring position (an int in "
                          f"[0, 2**128) such as key_hash('A#0'))")
    return t


def ring_tokens(ring: Any) -> list[tuple[int, str]]:
    """The ``(token, node)`` pairs of any ring-like object, sorted by token then node.

    What a ring needs (the first that applies is used):

    1. ``ring.tokens``: a list of ``(token, node)`` pairs (``(node, token)`` is accepted too),
       or a mapping ``node -> list of tokens``; it may be a method returning either;
    2. ``ring.nodes`` (a list, or a method returning one) and ``ring.tokens_of(node)`` (also
       used when ``ring.tokens`` is a bare list of positions);
    3. ``ring.token_map()`` returning ``{node: tokens}``.

    Tokens are ints in ``[0, 2**128)`` (positions from :func:`~dynamo_lab.key_hash`).
    Raises :class:`ConfigError` when none of these is there or a token is malformed.
    """
    source = getattr(ring, "tokens", None)
    if callable(source):
        source = source()
    if (source is not None and not isinstance(source, Mapping) and hasattr(ring, "tokens_of")
            and any(not isinstance(item, (tuple, list)) for item in source)):
        source = None  # a bare list of positions: the nodes come from tokens_of
    pairs: list[tuple[int, str]] = []
    if isinstance(source, Mapping):
        for node, toks in source.items():
            pairs.extend((_check_token(t, node), str(node)) for t in toks)
    elif source is not None:
        for item in source:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ConfigError(f"ring.tokens must hold (token, node) pairs; found {item!r}")
            a, b = item
            token, node = (b, a) if isinstance(a, str) else (a, b)
            pairs.append((_check_token(token, node), str(node)))
    elif hasattr(ring, "tokens_of"):
        for node in _ring_node_list(ring):
            pairs.extend((_check_token(t, node), node) for t in ring.tokens_of(node))
    elif callable(getattr(ring, "token_map", None)):
        for node, toks in ring.token_map().items():
            pairs.extend((_check_token(t, node), str(node)) for t in toks)
    else:
        raise ConfigError(
            f"cannot read the tokens of {type(ring).__name__}: give it a .tokens list of "
            f"(token, node) pairs, or .nodes and .tokens_of(node)")
    return sorted(pairs)


def _natural(name: str) -> tuple:
    """Sort key that puts node-2 before node-10 (display order only; still deterministic)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", name) if part)


def _ring_node_list(ring: Any, pairs: Optional[list[tuple[int, str]]] = None) -> list[str]:
    nodes = getattr(ring, "nodes", None)
    if callable(nodes):
        nodes = nodes()
    if nodes is None:
        if pairs is None:
            raise ConfigError(f"{type(ring).__name__} has no .nodes; give it a list of node ids")
        nodes = {node for _, node in pairs}
    return sorted((str(x) for x in nodes), key=_natural)


def _walk(pairs: list[tuple[int, str]], h: int) -> Iterable[tuple[int, str]]:
    """Every (token, node) clockwise from hash h (first token >= h), once round the ring."""
    if not pairs:
        return
    start = bisect_left(pairs, (h, ""))
    for k in range(len(pairs)):
        yield pairs[(start + k) % len(pairs)]


def _coordinator(ring: Any, pairs: list[tuple[int, str]], key: str) -> str:
    if callable(getattr(ring, "coordinator", None)):
        return ring.coordinator(key)
    for _, node in _walk(pairs, key_hash(key)):
        return node
    raise ConfigError("the ring has no tokens; add a node first")


def _preference_nodes(ring: Any, pairs: list[tuple[int, str]], key: str, n: int) -> list[str]:
    """The ring's own preference list (a student's ring shows what it computes), or the
    definition walked over the tokens when the ring has no ``preference_list``."""
    if callable(getattr(ring, "preference_list", None)):
        return list(ring.preference_list(key, n))
    out: list[str] = []
    for _, node in _walk(pairs, key_hash(key)):
        if node not in out:
            out.append(node)
        if len(out) == n:
            break
    return out


def _ownership_from_tokens(pairs: list[tuple[int, str]], nodes: Sequence[str]) -> dict[str, float]:
    width = {x: 0 for x in nodes}
    for j, (token, node) in enumerate(pairs):
        prev = pairs[j - 1][0]
        width[node] = width.get(node, 0) + ((token - prev) % RING_SIZE or
                                            (RING_SIZE if len(pairs) == 1 else 0))
    return {x: w / RING_SIZE for x, w in sorted(width.items())}


def _ownership(ring_or_ownership: Any) -> dict[str, float]:
    if isinstance(ring_or_ownership, Mapping):
        own = {str(k): float(v) for k, v in ring_or_ownership.items()}
    elif callable(getattr(ring_or_ownership, "ownership", None)):
        own = {str(k): float(v) for k, v in ring_or_ownership.ownership().items()}
    else:
        pairs = ring_tokens(ring_or_ownership)
        own = _ownership_from_tokens(pairs, _ring_node_list(ring_or_ownership, pairs))
    if not own:
        raise ConfigError("no nodes to chart: the ring is empty")
    return {k: own[k] for k in sorted(own, key=_natural)}


# --------------------------------------------------------------------------------------------
# The ring
# --------------------------------------------------------------------------------------------

_KEY_R, _TOKEN_R = 0.86, 1.0


def _angle(h: int) -> float:
    # Position 0 at twelve o'clock, growing clockwise, as in the paper's Figure 2.
    return math.pi / 2 - 2 * math.pi * (h / RING_SIZE)


def _xy(h: int, r: float) -> tuple[float, float]:
    a = _angle(h)
    return r * math.cos(a), r * math.sin(a)


def _arc_points(start: int, end: int, r: float, whole: bool = False) -> list[tuple[float, float]]:
    """Points along the clockwise arc (start, end] at radius r."""
    span = RING_SIZE if whole else (end - start) % RING_SIZE
    steps = max(2, int(360 * span / RING_SIZE) + 2)
    return [_xy((start + span * i // (steps - 1)) % RING_SIZE, r) for i in range(steps)]


def draw_ring(ring: Any, *, keys: Iterable[str] = (), highlight_key: Optional[str] = None,
              n: int = 3, moved: Iterable[str] = (), ax=None) -> Figure:
    """Draw a consistent-hashing ring: position 0 at the top, hashes growing clockwise.

    * every token is a dot on the circle in its node's colour (gid ``tokens:<node>``, one
      scatter per node, with a legend giving each node's share of the key space); the arc
      ``(previous token, token]`` is drawn in the colour of the token's node, because those
      keys are coordinated by it (gid ``ring:arcs``, one segment per arc);
    * ``keys`` are small grey ticks just inside the circle (gid ``keys``);
    * ``moved`` keys (e.g. those that changed owner on a join) are gold stars (gid ``moved``);
    * ``highlight_key``: a black dot (gid ``highlight``) with arrows to the first token of
      each node of its preference list, numbered 1..n in walk order (gids ``pref:1`` ..
      ``pref:n`` on the arrows, ``pref-label:i`` on the numbers). ``n`` is capped at the
      number of nodes.

    ``ring``: any object :func:`ring_tokens` can read; ``preference_list(key, n)`` is used when
    it has one (so a student's ring shows what it computes), otherwise the preference list is
    walked from the tokens. Raises :class:`ConfigError` for an unreadable ring or a bad ``n``,
    :class:`~dynamo_lab.errors.InvalidKey` for a bad key.
    """
    pairs = ring_tokens(ring)
    nodes = _ring_node_list(ring, pairs)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n (replicas in the preference list) must be an int >= 1; got {n!r}")
    colors = node_colors(nodes)
    fig, ax = _figure_and_ax(ax, (6.4, 6.4))
    ax.set_aspect("equal")
    ax.axis("off")
    lim = 1.36
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)

    # The circle itself, then the arcs coloured by the node that coordinates them.
    ax.add_line(Line2D(*zip(*_arc_points(0, 0, _TOKEN_R, whole=True)), color="#e6e6e6",
                       lw=7, zorder=1, solid_capstyle="butt"))
    segments, seg_colors = [], []
    for j, (token, node) in enumerate(pairs):
        prev = pairs[j - 1][0]
        if prev == token and len(pairs) > 1:
            continue
        segments.append(_arc_points(prev, token, _TOKEN_R, whole=len(pairs) == 1))
        seg_colors.append(colors.get(node, CLIENT_COLOR))
    if segments:
        arcs = LineCollection(segments, colors=seg_colors, linewidths=7, alpha=0.45, zorder=2,
                              capstyle="butt")
        arcs.set_gid("ring:arcs")
        ax.add_collection(arcs)

    share = _ownership_from_tokens(pairs, nodes)
    for node in nodes:
        pts = [_xy(t, _TOKEN_R) for t, x in pairs if x == node]
        if not pts:
            continue
        sc = ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=44, color=colors[node],
                        edgecolors="white", linewidths=1.0, zorder=4,
                        label=f"{node}  {share.get(node, 0):.0%}")
        sc.set_gid(f"tokens:{node}")

    # Where 0 is and which way hashes grow: a tick at the top and a note in the corner, out of
    # the way of the preference-list arcs.
    ax.add_line(Line2D([0, 0], [0.93, 1.07], color="#777777", lw=1.2, zorder=3))
    ax.text(0.0, 0.0, "0 is at the top;\nhashes grow clockwise", transform=ax.transAxes,
            ha="left", va="bottom", fontsize=8, color="#888888")
    keys = list(keys)
    moved_set = sorted(set(moved))
    if keys:
        kp = [_xy(key_hash(k), _KEY_R) for k in keys]
        sc = ax.scatter([p[0] for p in kp], [p[1] for p in kp], s=10, color=_KEY_COLOR,
                        alpha=0.7, zorder=3, marker="o", linewidths=0)
        sc.set_gid("keys")
    if moved_set:
        mp = [_xy(key_hash(k), _KEY_R) for k in moved_set]
        sc = ax.scatter([p[0] for p in mp], [p[1] for p in mp], s=70, color=_MOVED_COLOR,
                        edgecolors="#5a4500", linewidths=0.6, marker="*", zorder=5,
                        label=f"moved ({len(moved_set)})")
        sc.set_gid("moved")

    title = f"{len(nodes)} nodes, {len(pairs)} tokens: each arc belongs to the next token clockwise"
    if highlight_key is not None:
        n_eff = min(n, len(nodes))
        pref = _preference_nodes(ring, pairs, highlight_key, n_eff)
        h = key_hash(highlight_key)
        kx, ky = _xy(h, _KEY_R)
        dot = ax.scatter([kx], [ky], s=60, color="black", zorder=7)
        dot.set_gid("highlight")
        # The key's name sits inside the circle, on the key's radius.
        lx, ly = _xy(h, 0.6)
        ax.text(lx, ly, highlight_key, ha="center", va="center", fontsize=10, fontweight="bold",
                zorder=8, bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="#333333", lw=0.8))
        used: set[int] = set()
        placed: list[tuple[float, float]] = []
        walk = list(_walk(pairs, h))
        for i, node in enumerate(pref, start=1):
            # The first token of this node clockwise from the key not already used (a list
            # that repeats a node gets a second arc to the same colour: easy to spot).
            target = next((t for t, x in walk if x == node and t not in used), None)
            if target is None:
                continue
            used.add(target)
            # Arc i runs clockwise from the key to the token, outside the ring, one radius per
            # replica: nested arcs show the walk and keep the numbers apart.
            r = 1.06 + min(0.075, 0.3 / n_eff) * i
            pts = [_xy(h, _KEY_R)] + _arc_points(h, target, r) + [_xy(target, _TOKEN_R + 0.035)]
            arrow = FancyArrowPatch(path=MplPath(pts), arrowstyle="-|>", mutation_scale=12,
                                    color=colors.get(node, "black"), lw=1.8, zorder=6)
            arrow.set_gid(f"pref:{i}")
            ax.add_patch(arrow)
            # The number sits on its own arc, as near the token as it can without covering a
            # number already placed (nearby tokens would otherwise stack their numbers).
            # If the arc is too short, the number moves outwards past the arc's corner.
            spots = pts[1:-1][::-1] + [_xy(target, r + 0.06 * k) for k in range(1, 8)]
            ex, ey = next((p for p in spots if all(math.dist(p, q) >= 0.095 for q in placed)),
                          spots[0])
            placed.append((ex, ey))
            label = ax.text(ex, ey, str(i), ha="center", va="center", fontsize=8,
                            fontweight="bold", color="white", zorder=9,
                            bbox=dict(boxstyle="circle,pad=0.18", fc=colors.get(node, "black"),
                                      ec="white", lw=0.8))
            label.set_gid(f"pref-label:{i}")
        title = (f"Preference list of {highlight_key!r} (N={n_eff}): " + " → ".join(pref)
                 + "\nwalk clockwise from the key, skip nodes already on the list")
    if moved_set:
        title += f"\n★ = {len(moved_set)} of {len(keys) or len(moved_set)} keys changed owner"
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(0.98, 1.0), frameon=False, fontsize=9,
              title="node  share", title_fontsize=9, handletextpad=0.3)
    return fig


def draw_load(ring_or_ownership: Any, *, ax=None, expected: Optional[float] = None) -> Figure:
    """Bar chart of the share of the key space each node coordinates, with a dashed line at
    the fair share ``expected`` (default ``1/number of nodes``).

    ``ring_or_ownership``: a mapping ``node -> fraction``, a ring with ``ownership()``, or any
    ring :func:`ring_tokens` can read. Bars carry gid ``load:<node>`` and the node's colour;
    the fair-share line has gid ``fair-share``. Raises :class:`ConfigError` for an empty ring.
    """
    own = _ownership(ring_or_ownership)
    nodes = list(own)
    fair = 1 / len(nodes) if expected is None else float(expected)
    colors = node_colors(nodes)
    fig, ax = _figure_and_ax(ax, (max(4.0, 0.7 * len(nodes) + 2.0), 3.6))
    bars = ax.bar(range(len(nodes)), [own[x] for x in nodes],
                  color=[colors[x] for x in nodes], width=0.7, edgecolor="white")
    for node, bar in zip(nodes, bars):
        bar.set_gid(f"load:{node}")
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{own[node]:.0%}",
                ha="center", va="bottom", fontsize=8)
    line = ax.axhline(fair, color="#333333", ls="--", lw=1.2,
                      label=f"fair share {'1/' + str(len(nodes)) if expected is None else ''}"
                            f" = {fair:.0%}".replace("  ", " "))
    line.set_gid("fair-share")
    ax.set_xticks(range(len(nodes)))
    ax.set_xticklabels(nodes, fontsize=9 if len(nodes) <= 12 else 7,
                       rotation=0 if len(nodes) <= 12 else 90)
    top = max(max(own.values()), fair)
    ax.set_ylim(0, top * 1.3 if top > 0 else 1)
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    ax.set_ylabel("share of the key space")
    ax.spines[["top", "right"]].set_visible(False)
    worst = max(own.values()) / fair if fair > 0 else float("nan")
    ax.set_title(f"Load per node: the busiest has {worst:.2f}× its fair share", fontsize=10)
    ax.legend(loc="upper right", frameon=False, fontsize=8)
    return fig


def draw_load_spread(vnodes_list: Sequence[int], cv_measured: Sequence[float],
                     cv_formula: Sequence[float], *, ax=None) -> Figure:
    """Coefficient of variation of ownership against virtual nodes per node: the measured
    points (gid ``measured``) and ``sqrt((n-1)/(n v + 1))`` (gid ``formula``), log-2 x axis.

    Raises :class:`ConfigError` unless the three sequences have the same non-zero length and
    every vnodes count is >= 1.
    """
    v, m, f = list(vnodes_list), [float(x) for x in cv_measured], [float(x) for x in cv_formula]
    if not v or not len(v) == len(m) == len(f):
        raise ConfigError(f"vnodes_list, cv_measured and cv_formula must have the same non-zero "
                          f"length; got {len(v)}, {len(m)}, {len(f)}")
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) or x < 1 for x in v):
        raise ConfigError(f"vnodes counts are numbers >= 1; got {v}")
    fig, ax = _figure_and_ax(ax, (5.6, 3.8))
    (fl,) = ax.plot(v, f, ls="--", color="#555555", lw=1.5, label="theory √((n−1)/(n·v+1))")
    fl.set_gid("formula")
    (ml,) = ax.plot(v, m, marker="o", color=PALETTE[0], lw=2, label="measured")
    ml.set_gid("measured")
    ax.set_xscale("log", base=2)
    ax.set_xticks(v)
    ax.set_xticklabels([f"{x:g}" for x in v])
    ax.set_xlabel("virtual nodes (tokens) per node, v")
    ax.set_ylabel("CV of ownership (std / mean)")
    ax.set_ylim(0, max(m + f) * 1.15 or 1)
    ax.grid(True, which="major", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=9)
    ax.set_title("More tokens per node, evener load: the spread falls like 1/√v", fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------------


def _version_items(versions: Iterable[Any], labels: Optional[Sequence[str]]) -> list[tuple[str, VectorClock, Any]]:
    items: list[tuple[str, VectorClock, Any]] = []
    raw = list(versions)
    if labels is not None and len(labels) != len(raw):
        raise ConfigError(f"labels has {len(labels)} names for {len(raw)} versions; give one each")
    for i, item in enumerate(raw):
        label: Optional[str] = None
        if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
            label, item = item
        if isinstance(item, Versioned):
            clock, version = item.clock, item
        elif isinstance(item, VectorClock):
            clock, version = item, None
        else:
            raise ConfigError(f"versions are Versioned objects or (label, Versioned | VectorClock) "
                              f"pairs; item {i} is {item!r}")
        if labels is not None:
            label = str(labels[i])
        items.append((label if label is not None else f"v{i + 1}", clock, version))
    names = [x[0] for x in items]
    dups = sorted({x for x in names if names.count(x) > 1})
    if dups:
        raise ConfigError(f"version labels must be distinct; {dups} used twice")
    return items


def _clock_text(clock: VectorClock) -> str:
    return str(clock).replace(", ", ",")


def _value_text(version: Any) -> str:
    if version is None:
        return ""
    if version.deleted:
        return "<deleted>"
    v = version.value
    text = ", ".join(map(str, v)) if isinstance(v, list) and all(
        isinstance(x, (str, int, float)) for x in v) else repr(v)
    text = "{" + text + "}" if isinstance(v, list) else text
    return text if len(text) <= 28 else text[:25] + "..."


def version_dag(versions: Iterable[Any], labels: Optional[Sequence[str]] = None) -> nx.DiGraph:
    """The DAG :func:`draw_version_dag` draws: an edge ``a -> b`` when ``b``'s clock strictly
    descends ``a``'s and no third version lies between (transitive reduction). Node attributes:
    ``clock``, ``version`` (or None) and ``generation`` (how many events the clock holds:
    the sum of the counters, and one for each dot)."""
    items = _version_items(versions, labels)
    full = nx.DiGraph()
    for label, clock, version in items:
        full.add_node(label, clock=clock, version=version, generation=sum(clock.counters().values()) + len(clock.dots))
    for a, ca, _ in items:
        for b, cb, _ in items:
            if a != b and cb.descends(ca) and cb != ca:
                full.add_edge(a, b)
    dag = nx.transitive_reduction(full)
    dag.add_nodes_from(full.nodes(data=True))
    return dag


def _maximal(dag: nx.DiGraph) -> list[str]:
    """Labels of versions no other version strictly descends (what reconcile keeps), in order."""
    return [x for x in dag.nodes if dag.out_degree(x) == 0]


def draw_version_dag(versions: Iterable[Any], *, labels: Optional[Sequence[str]] = None,
                     ax=None) -> Figure:
    """Draw the versions of one key as a DAG, oldest on the left.

    ``versions``: :class:`~dynamo_lab.Versioned` objects (named by ``labels``, default
    ``v1, v2, ...``) or ``(label, Versioned | VectorClock)`` pairs. An arrow ``a -> b`` means
    ``b`` descends ``a`` directly (transitive reduction: no arrow that a path already implies).
    Columns are generations (sum of the counters), deterministic. Each version is a box
    ``"D3\\n[(Sx,2),(Sy,1)]"`` (plus its value when it has one) with gid ``version:<label>``;
    arrows have gid ``edge:<a>-><b>``. The versions reconcile keeps are highlighted: orange when
    there are several distinct ones (concurrent siblings), green when one version descends all
    others. Raises :class:`ConfigError` for unreadable items or repeated labels.
    """
    dag = version_dag(versions, labels)
    order = list(dag.nodes)
    if not order:
        raise ConfigError("no versions to draw; pass a list of Versioned objects")
    gens = sorted({dag.nodes[x]["generation"] for x in order})
    col_of = {g: i for i, g in enumerate(gens)}
    columns: list[list[str]] = [[] for _ in gens]
    for x in order:
        columns[col_of[dag.nodes[x]["generation"]]].append(x)
    # Rows: each column sorted by the mean row of its parents (fewer crossings), ties by input
    # order, so the picture depends only on the input.
    ypos: dict[str, float] = {}
    for col in columns:
        def bary(x: str) -> tuple[float, int]:
            ps = [ypos[p] for p in dag.predecessors(x) if p in ypos]
            return (sum(ps) / len(ps) if ps else 0.0, order.index(x))
        col.sort(key=bary)
        for k, x in enumerate(col):
            ypos[x] = (len(col) - 1) / 2 - k
    tallest = max(len(c) for c in columns)

    maximal = _maximal(dag)
    distinct_max = {dag.nodes[x]["clock"] for x in maximal}
    siblings = len(distinct_max) > 1
    writers = sorted({n for x in order for n in dag.nodes[x]["clock"].nodes})
    colors = node_colors(writers)

    fig, ax = _figure_and_ax(ax, (max(4.5, 2.6 * len(columns) + 0.8), max(2.8, 1.35 * tallest + 1.6)))
    ax.axis("off")
    ax.set_xlim(-0.7, len(columns) - 0.3)
    ax.set_ylim(-(tallest - 1) / 2 - 0.6, (tallest - 1) / 2 + 0.6)
    boxes = {}
    for x in order:
        node = dag.nodes[x]
        clock, version = node["clock"], node["version"]
        if x in maximal:
            fc, ec, lw = (_SIBLING_FACE, _SIBLING_EDGE, 2.4) if siblings else (_LATEST_FACE, _LATEST_EDGE, 2.4)
        else:
            fc, ec, lw = "white", "#9a9a9a", 1.0
        value = _value_text(version)
        text = f"{x}\n{_clock_text(clock)}" + (f"\n{value}" if value else "")
        box = ax.text(col_of[node["generation"]], ypos[x], text, ha="center", va="center",
                      fontsize=9, linespacing=1.35, zorder=3,
                      bbox=dict(boxstyle="round,pad=0.45", fc=fc, ec=ec, lw=lw))
        box.set_gid(f"version:{x}")
        boxes[x] = box
    for a, b in sorted(dag.edges, key=lambda e: (order.index(e[0]), order.index(e[1]))):
        # Arrow from the right edge of a's box to the left edge of b's, whatever their sizes.
        ann = ax.annotate("", xy=(0, 0.5), xycoords=boxes[b], xytext=(1, 0.5),
                          textcoords=boxes[a], zorder=2,
                          arrowprops=dict(arrowstyle="-|>", color="#555555", lw=1.3,
                                          shrinkA=7, shrinkB=7, mutation_scale=12))
        ann.set_gid(f"edge:{a}->{b}")
    # Who wrote each version: the node whose counter went up past the merge of its parents.
    for x in order:
        clock = dag.nodes[x]["clock"]
        base = VectorClock()
        for p in dag.predecessors(x):
            base = base.merge(dag.nodes[p]["clock"])
        grew = [n for n in clock.nodes if clock.get(n) > base.get(n)]
        if len(grew) == 1:
            w = ax.annotate(f"written by {grew[0]}", xy=(0.5, 1.0), xycoords=boxes[x],
                            xytext=(0, 6), textcoords="offset points", ha="center", va="bottom",
                            fontsize=7.5, color=colors[grew[0]], zorder=4)
            w.set_gid(f"writer:{x}")
    if siblings:
        names = " and ".join(maximal) if len(maximal) == 2 else ", ".join(maximal)
        title = (f"Siblings: {names} are concurrent (neither clock descends the other);\n"
                 f"reconcile keeps {'both' if len(maximal) == 2 else 'them all'} until a client merges them")
    elif len(order) == 1:
        title = "One version"
    else:
        title = (f"{' = '.join(maximal)} descends every other version: it alone survives "
                 f"reconcile")
    ax.set_title(title, fontsize=10)
    handles = [Patch(fc=_SIBLING_FACE, ec=_SIBLING_EDGE, label="concurrent sibling (kept)"),
               Patch(fc=_LATEST_FACE, ec=_LATEST_EDGE, label="latest (kept)"),
               Patch(fc="white", ec="#9a9a9a", label="obsolete (has a descendant)")]
    ax.legend(handles=handles[:1] + handles[2:] if siblings else handles[1:], loc="upper center",
              bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False, fontsize=8)
    return fig


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


# --------------------------------------------------------------------------------------------
# Merkle trees
# --------------------------------------------------------------------------------------------


def draw_merkle_diff(tree_a: MerkleTree, tree_b: MerkleTree, *, max_depth: int = 5, ax=None) -> Figure:
    """One tree drawn with every node coloured by whether the two replicas agree on it, for the
    top ``max_depth`` levels (capped at 8 and at the trees' depth).

    * red (gid ``merkle:differ``): the hashes differ and were compared;
    * green (gid ``merkle:same``): the hashes were compared and agree, so the diff stops there;
    * light grey (gid ``merkle:skipped``): never compared, because an ancestor agreed;
    * thick dark edges (gid ``merkle:path``) lead to the nodes the diff visited.

    The title gives the cost of the diff (hashes exchanged, from
    :func:`~dynamo_lab.merkle_diff`) against a full sync (one digest per key). Raises
    :class:`ConfigError` for trees of different shapes or a bad ``max_depth``.
    """
    if not isinstance(tree_a, MerkleTree) or not isinstance(tree_b, MerkleTree):
        raise ConfigError(f"draw_merkle_diff takes two MerkleTrees; got "
                          f"{type(tree_a).__name__} and {type(tree_b).__name__}")
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0:
        raise ConfigError(f"max_depth is an int >= 0 (levels below the root); got {max_depth!r}")
    diff = merkle_diff(tree_a, tree_b)  # raises ConfigError for different shapes
    shown = min(max_depth, tree_a.depth, 8)
    differ: dict[tuple[int, int], bool] = {}
    visited: set[tuple[int, int]] = {(0, 0)}
    for level in range(shown + 1):
        for i in range(1 << level):
            if level == 0 or (level - 1, i // 2) in visited and differ[(level - 1, i // 2)]:
                visited.add((level, i))
                differ[(level, i)] = tree_a.node_hash(level, i) != tree_b.node_hash(level, i)
            else:
                differ[(level, i)] = False

    def pos(level: int, i: int) -> tuple[float, float]:
        return (i + 0.5) / (1 << level), -level

    fig, ax = _figure_and_ax(ax, (max(6.0, min(11.0, 0.2 * (1 << shown) + 4)), 0.8 * shown + 2.4))
    ax.axis("off")
    faint, path = [], []
    for level in range(shown):
        for i in range(1 << level):
            for c in (2 * i, 2 * i + 1):
                seg = [pos(level, i), pos(level + 1, c)]
                (path if (level + 1, c) in visited else faint).append(seg)
    if faint:
        lc = LineCollection(faint, colors="#e3e3e3", linewidths=0.8, zorder=1)
        lc.set_gid("merkle:faint")
        ax.add_collection(lc)
    if path:
        lc = LineCollection(path, colors="#444444", linewidths=1.8, zorder=2)
        lc.set_gid("merkle:path")
        ax.add_collection(lc)
    # Marker area per level: as big as the spacing of that level allows (points squared).
    width_pt = fig.get_figwidth() * 72 * 0.8
    base = max(16.0, 170.0 / (1 + 0.45 * shown))

    def size(level: int) -> float:
        return max(2.0, min(base, (0.8 * width_pt / (1 << level)) ** 2))

    groups: dict[str, list[tuple[int, int]]] = {"differ": [], "same": [], "skipped": []}
    for (level, i) in sorted(differ):
        kind = "skipped" if (level, i) not in visited else ("differ" if differ[(level, i)] else "same")
        groups[kind].append((level, i))
    style = {"differ": (_DIFF_COLOR, "differs (compared)"),
             "same": (_SAME_COLOR, "agrees (compared: stop here)"),
             "skipped": (_SKIP_COLOR, "never compared")}
    for kind, nodes_ in groups.items():
        color, label = style[kind]
        pts = [pos(level, i) for level, i in nodes_]
        sc = ax.scatter([p[0] for p in pts], [p[1] for p in pts],
                        # Compared nodes stay visible even where the level is crowded.
                        s=[size(level) * 0.8 if kind == "skipped" else max(30.0, size(level))
                           for level, _ in nodes_],
                        color=color, edgecolors="white" if kind != "skipped" else "#bbbbbb",
                        linewidths=0.8 if kind != "skipped" else 0.5, zorder=3 if kind == "skipped" else 4,
                        label=f"{label}: {len(pts)}")
        sc.set_gid(f"merkle:{kind}")
    for level in range(shown + 1):
        name = "root" if level == 0 else ("leaves" if level == tree_a.depth else f"level {level}")
        ax.text(-0.02, -level, name, ha="right", va="center", fontsize=8, color="#555555")
    ax.set_xlim(-0.12, 1.02)
    ax.set_ylim(-shown - 0.6, 0.6)
    full = max(full_sync_cost(tree_a), full_sync_cost(tree_b))
    def count(k: int, word: str) -> str:
        return f"{k} {word}" + ("" if k == 1 else ("es" if word.endswith("sh") else "s"))

    differ_text = "1 key differs" if len(diff.keys) == 1 else f"{len(diff.keys)} keys differ"
    title = (f"Merkle diff: {count(diff.hashes_exchanged, 'hash')} exchanged vs "
             f"{count(full, 'key digest')} for a full sync\n{differ_text}; the comparison walks "
             f"down only where hashes differ ({count(diff.rounds, 'round')})")
    ax.set_title(title, fontsize=10)
    if shown < tree_a.depth:
        ax.text(0.5, -shown - 0.45, f"levels {shown + 1}..{tree_a.depth} not drawn: the diff went on "
                f"to {diff.leaves_compared} differing leaves", ha="center", va="top", fontsize=8,
                color="#555555")
    handles = [Line2D([], [], ls="", marker="o", ms=7, color=style[k][0],
                      markeredgecolor="white" if k != "skipped" else "#bbbbbb",
                      label=f"{style[k][1]}: {len(groups[k])}") for k in ("differ", "same", "skipped")]
    ax.legend(handles=handles, loc="upper right", frameon=False, fontsize=8)
    return fig


# --------------------------------------------------------------------------------------------
# Space-time diagrams of a trace
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One message of a trace: its send event and how it ended.

    ``end`` is the deliver or drop event (None while in flight); ``fate`` is ``"deliver"``,
    ``"drop"`` or ``"in-flight"``; ``duplicate`` marks a second delivery of one send.
    """

    send: Any
    end: Any
    fate: str
    duplicate: bool = False

    @property
    def src(self) -> str:
        return self.send.node

    @property
    def dst(self) -> str:
        return self.send.peer

    @property
    def kind(self) -> str:
        return type(self.send.msg).__name__


def _events_of(obj: Any) -> list[Any]:
    if hasattr(obj, "sim") and hasattr(obj.sim, "trace"):
        obj = obj.sim.trace
    if hasattr(obj, "events") and not isinstance(obj, (list, tuple)):
        obj = obj.events
    events = list(obj)
    for e in events[:1]:
        if not all(hasattr(e, a) for a in ("seq", "time", "kind", "node", "peer", "msg")):
            raise ConfigError(f"expected trace events (cluster.sim.trace.events); got {e!r}")
    return sorted(events, key=lambda e: e.seq)


def match_messages(events: Any) -> list[Message]:
    """Pair every ``send`` of a trace with the ``deliver`` or ``drop`` that ended it.

    A deliver or drop ``src -> dst`` is matched to the oldest unmatched send ``src -> dst`` of
    an equal message (messages are immutable values, and the simulator's wire check makes a
    delivered message equal to the one sent); a second delivery of an already matched send
    (the network duplicated it) becomes a ``duplicate``. Sends never matched are
    ``"in-flight"``. ``events``: a list of TraceEvents, a Trace or a SimCluster. Result in
    send order (duplicates right after their original).
    """
    events = _events_of(events)
    pending: dict[tuple[str, str], list[int]] = {}
    out: list[Optional[Message]] = []
    last_for: dict[tuple[str, str], list[int]] = {}
    extra: dict[int, list[Message]] = {}
    for e in events:
        if e.kind == "send":
            pending.setdefault((e.node, e.peer), []).append(len(out))
            out.append(Message(e, None, "in-flight"))
            continue
        if e.kind not in ("deliver", "drop"):
            continue
        link = (e.peer, e.node) if e.kind == "deliver" else (e.node, e.peer)
        queue = pending.get(link, [])
        hit = next((j for j, idx in enumerate(queue) if out[idx].send.msg == e.msg), None)
        if hit is not None:
            idx = queue.pop(hit)
            out[idx] = Message(out[idx].send, e, e.kind)
            last_for.setdefault(link, []).append(idx)
            continue
        done = last_for.get(link, [])
        orig = next((idx for idx in reversed(done) if out[idx].send.msg == e.msg), None)
        if orig is not None:
            extra.setdefault(orig, []).append(Message(out[orig].send, e, e.kind, duplicate=True))
    result: list[Message] = []
    for idx, m in enumerate(out):
        result.append(m)
        result.extend(extra.get(idx, ()))
    return result


def _msg_keys(msg: Any) -> list[str]:
    """The keys a message is about (empty for gossip and Merkle levels)."""
    keys: list[str] = []
    k = getattr(msg, "key", None)
    if isinstance(k, str):
        keys.append(k)
    req = getattr(msg, "request", None)
    if req is not None and isinstance(getattr(req, "key", None), str):
        keys.append(req.key)
    for item in getattr(msg, "items", ()) or ():
        if isinstance(item, tuple) and item and isinstance(item[0], str):
            keys.append(item[0])
    for field in ("wants", "keys"):
        keys.extend(x for x in getattr(msg, field, ()) or () if isinstance(x, str))
    for item in getattr(msg, "entries", ()) or ():
        if isinstance(item, tuple) and item and isinstance(item[0], str):
            keys.append(item[0])
    return keys


_CONTEXT_KINDS = ("crash", "restart", "partition", "heal", "join", "leave", "wipe")


def _time_fmt(span: float):
    digits = 3 if span < 2 else (2 if span < 20 else 1)
    return lambda v, _pos: f"{v:.{digits}f}"


class _Rows:
    """Vertical positions of trace events. ``"order"``: one row per event, in trace order (a
    Lamport diagram: causality is exact, idle gaps vanish); ``"time"``: the virtual time."""

    def __init__(self, mode: str, seqs: Iterable[int]):
        self.mode = mode
        self.seqs = sorted(set(seqs))
        self.rank = {s: i for i, s in enumerate(self.seqs)}

    def y(self, event: Any) -> float:
        if self.mode == "time":
            return event.time
        if event.seq in self.rank:
            return float(self.rank[event.seq])
        # An event that has no row of its own sits between its neighbours.
        return bisect_left(self.seqs, event.seq) - 0.5


def draw_spacetime(events: Any, *, nodes: Optional[Sequence[str]] = None,
                   start: Optional[float] = None, end: Optional[float] = None,
                   key: Optional[str] = None, ax=None, max_messages: int = 200,
                   time_axis: str = "order") -> Figure:
    """A message space-time (Lamport) diagram: one vertical lifeline per node, time flowing
    down, an arrow from each send to its delivery.

    * ``events``: trace events (``cluster.sim.trace.events``), a Trace or a SimCluster;
    * ``nodes``: the lifelines, left to right (default: client endpoints, then the nodes, in
      sorted order, that take part in the messages shown); messages to or from other nodes
      are left out;
    * ``start``/``end``: the window of send times, in virtual seconds (default: everything);
    * ``key``: only messages about that key (client requests, forwards, replica reads and
      writes, hints, transfers), plus crashes, restarts, partitions and heals;
    * at most ``max_messages`` messages (the earliest); the title says when some are left out;
    * ``time_axis``: ``"order"`` (default) gives every event its own row in trace order, so
      bursts stay readable and idle gaps vanish (the axis still shows virtual times);
      ``"time"`` plots virtual time to scale.

    Arrows are in the sender's colour and labelled with the message type while there are at
    most 60 of them; gids ``msg:deliver:<Type>``, ``msg:drop:<Type>``,
    ``msg:in-flight:<Type>``. A dropped message stops part-way in a black x (scatter gid
    ``drops``); a duplicate delivery is dotted. Crashes are red bars (gid ``crash:<node>``),
    the lifeline of a node that is down is dashed, restarts are green bars (gid
    ``restart:<node>``); partitions and heals are lines across the diagram (gids
    ``partition``, ``heal``). Raises :class:`ConfigError` for events that are not trace
    events or a bad ``max_messages`` / ``time_axis``.
    """
    all_events = _events_of(events)
    if isinstance(max_messages, bool) or not isinstance(max_messages, int) or max_messages < 1:
        raise ConfigError(f"max_messages is an int >= 1; got {max_messages!r}")
    if time_axis not in ("order", "time"):
        raise ConfigError(f"time_axis is 'order' or 'time'; got {time_axis!r}")
    lo_t = -math.inf if start is None else start
    hi_t = math.inf if end is None else end
    messages = [m for m in match_messages(all_events)
                if (key is None or key in _msg_keys(m.send.msg)) and lo_t <= m.send.time <= hi_t]
    lanes = list(nodes) if nodes is not None else None
    if lanes is not None:
        messages = [m for m in messages if m.src in lanes and m.dst in lanes]
    total = len(messages)
    messages = messages[:max_messages]
    if lanes is None:
        names = {m.src for m in messages} | {m.dst for m in messages}
        clients = sorted(x for x in names if x.startswith("client:"))
        lanes = clients + sorted((x for x in names if not x.startswith("client:")), key=_natural)
    # The window in time: what the messages span (or start/end when given).
    spans = [m.send.time for m in messages] + [m.end.time for m in messages if m.end is not None]
    t0 = start if start is not None else min(spans, default=0.0)
    t1 = end if end is not None else max(spans, default=t0)
    last = max([t1] + spans)  # arrows sent inside the window may land after it
    if end is None:  # no end: the whole trace, with the crashes and heals after the last message
        last = max([last] + [e.time for e in all_events if e.kind in _CONTEXT_KINDS])
    context = [e for e in all_events if e.kind in _CONTEXT_KINDS and t0 <= e.time <= last
               and (e.node == "net" or not lanes or e.node in lanes)]
    if not lanes:
        lanes = sorted({e.node for e in context if e.node != "net"}, key=_natural)
    colors = node_colors(lanes)
    col = {x: i for i, x in enumerate(lanes)}

    seqs = [m.send.seq for m in messages] + [m.end.seq for m in messages if m.end is not None]
    seqs += [e.seq for e in context]
    rows = _Rows(time_axis, seqs)
    latencies = sorted(rows.y(m.end) - rows.y(m.send) for m in messages
                       if m.fate == "deliver" and rows.y(m.end) > rows.y(m.send))
    typical = latencies[len(latencies) // 2] if latencies else (1.0 if time_axis == "order" else 1e-3)
    if time_axis == "order":
        y0, y1 = 0.0, float(max(len(rows.seqs) - 1, 1))
        pad = 0.8
    else:
        y0, y1 = t0, max(last, t0 + 1e-3)
        pad = 0.04 * (y1 - y0) + 0.3 * typical

    height = 0.26 * len(rows.seqs) + 2.2 if time_axis == "order" else 3.5 + 0.12 * len(messages)
    fig, ax = _figure_and_ax(ax, (max(5.5, 1.35 * len(lanes) + 1.8), min(14.0, max(4.5, height))))
    ax.set_xlim(-0.6, max(len(lanes), 1) - 0.4)
    ax.set_ylim(y1 + pad, y0 - pad)  # time flows down
    ax.set_xticks([])
    for name in lanes:
        # The lifeline's name above the plot, in the node's colour.
        lane = ax.text(col[name], 1.01, name.replace("client:", "client\n"),
                       transform=blended_transform_factory(ax.transData, ax.transAxes),
                       ha="center", va="bottom", fontsize=9, fontweight="bold", color=colors[name])
        lane.set_gid(f"lane:{name}")
    for side in ("right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["top"].set_color("#cccccc")
    if time_axis == "time":
        ax.yaxis.set_major_formatter(_time_fmt(y1 - y0))
        ax.set_ylabel("virtual time (s)")
    else:
        # Tick about ten rows with the virtual time at which their event happened.
        by_seq = {e.seq: e for e in all_events}
        step = max(1, len(rows.seqs) // 10)
        ticks = list(range(0, len(rows.seqs), step))
        ax.set_yticks(ticks)
        ax.set_yticklabels([f"{by_seq[rows.seqs[i]].time:.3f}" for i in ticks], fontsize=8)
        ax.set_ylabel("virtual time (s), one row per event")
        # Rows hide idle time: say where a long quiet stretch was cut out.
        times = [by_seq[q].time for q in rows.seqs]
        for i in range(len(times) - 1):
            gap = times[i + 1] - times[i]
            if gap >= 0.05 and gap > 0.1 * (times[-1] - times[0]):
                ax.axhspan(i + 0.25, i + 0.75, color="#f2f2f2", zorder=0, lw=0)
                ax.text(-0.55, i + 0.5, f"… {gap:.3f} s pass …", ha="left", va="center",
                        fontsize=7, color="#777777", style="italic", zorder=4)

    # Lifelines: solid while up, dashed while down (between a crash and a restart).
    top, bottom = y0 - pad, y1 + pad
    for name in lanes:
        x = col[name]
        downs: list[tuple[float, float]] = []
        down_at = None
        for e in all_events:
            if e.node != name:
                continue
            if e.kind == "crash" and down_at is None:
                down_at = rows.y(e) if t0 <= e.time <= last else (top if e.time < t0 else bottom)
            elif e.kind in ("restart", "join") and down_at is not None:
                up_at = rows.y(e) if t0 <= e.time <= last else (top if e.time < t0 else bottom)
                downs.append((down_at, up_at))
                down_at = None
        if down_at is not None:
            downs.append((down_at, bottom))
        cursor = top
        for a, b in downs + [(bottom, bottom)]:
            a, b = max(a, top), min(b, bottom)
            if a > cursor:
                ax.plot([x, x], [cursor, a], color=colors[name], lw=1.4, alpha=0.55, zorder=1)
            if b > a:
                ax.plot([x, x], [a, b], color=colors[name], lw=1.0, ls=(0, (2, 3)), alpha=0.5,
                        zorder=1)
            cursor = max(cursor, b)

    for e in context:
        y = rows.y(e)
        if e.kind in ("partition", "heal"):
            color = "#7b3294" if e.kind == "partition" else "#1b7837"
            line = ax.axhline(y, color=color, ls="--", lw=1.2, zorder=1)
            line.set_gid(e.kind)
            ax.text(len(lanes) - 0.42, y, f"partition {e.detail}" if e.kind == "partition" else "heal",
                    ha="right", va="bottom", fontsize=7.5, color=color,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85))
        elif e.node in col:
            x = col[e.node]
            color = "#d62728" if e.kind in ("crash", "wipe", "leave") else "#1b7837"
            (bar,) = ax.plot([x - 0.22, x + 0.22], [y, y], color=color, lw=4,
                             solid_capstyle="butt", zorder=5)
            bar.set_gid(f"{e.kind}:{e.node}")
            ax.text(x + 0.26, y, e.kind, ha="left", va="center", fontsize=7.5, color=color,
                    fontweight="bold", zorder=5)

    label_all = len(messages) <= 60
    drop_pts = []
    for m in messages:
        if m.src not in col or m.dst not in col:
            continue
        xs, xd = col[m.src], col[m.dst]
        ys = rows.y(m.send)
        if m.fate == "deliver":
            ye, xe = rows.y(m.end), xd
        elif m.fate == "drop":
            ye = max(rows.y(m.end), ys + 0.6 * typical)
            xe = xs + 0.6 * (xd - xs)
            drop_pts.append((xe, ye))
        else:
            ye, xe = bottom, xs + (xd - xs) * 0.8
        style = (0, (1, 2)) if m.duplicate else ("--" if m.fate == "in-flight" else "-")
        arrow = FancyArrowPatch((xs, ys), (xe, ye), arrowstyle="-|>" if m.fate != "drop" else "-",
                                mutation_scale=9, color=colors[m.src], lw=1.2, linestyle=style,
                                shrinkA=0, shrinkB=0, zorder=3)
        arrow.set_gid(f"msg:{m.fate}:{m.kind}")
        ax.add_patch(arrow)
        if label_all:
            # Near the sending end: arrows from one sender fan out, so labels separate.
            f = 0.3 if abs(xe - xs) > 1.5 else 0.5
            label = ax.text(xs + (xe - xs) * f, ys + (ye - ys) * f, m.kind, ha="center",
                            va="center", fontsize=6.5, color="#222222", zorder=4,
                            bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.85))
            label.set_gid(f"label:{m.kind}")
    if drop_pts:
        sc = ax.scatter([p[0] for p in drop_pts], [p[1] for p in drop_pts], marker="x", s=45,
                        color="black", linewidths=1.8, zorder=6)
        sc.set_gid("drops")

    about = f"about {key!r} " if key is not None else ""
    title = (f"{len(messages)} messages {about}sent between T={t0:.3f} s and {t1:.3f} s:\n"
             f"each arrow runs from send to delivery")
    if drop_pts:
        title += f", {len(drop_pts)} dropped (x)"
    if total > len(messages):
        title += f"\n(the first {len(messages)} of {total}: narrow the window to see the rest)"
    elif not label_all:
        title += "\n(narrow the window to see the message types)"
    ax.set_title(title, fontsize=10, pad=30)
    return fig


# --------------------------------------------------------------------------------------------
# Gossip
# --------------------------------------------------------------------------------------------


def draw_convergence(rounds_informed: Sequence[int], *, n: Optional[int] = None, ax=None) -> Figure:
    """Nodes informed after each gossip round (index 0 = before the first round), with the
    number of nodes ``n`` (default: the largest count) as a dashed line (gid ``all``) and the
    push-gossip estimate ``log2 n + ln n`` as a vertical line (gid ``theory``); the curve has
    gid ``informed``. Raises :class:`ConfigError` for an empty or negative series or ``n < 1``.
    """
    ys = list(rounds_informed)
    if not ys or any(isinstance(y, bool) or not isinstance(y, (int, float)) or y < 0 for y in ys):
        raise ConfigError(f"rounds_informed is a non-empty list of counts >= 0; got {ys!r}")
    n = int(max(ys)) if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n (the number of nodes) is an int >= 1; got {n!r}")
    theory = math.log2(n) + math.log(n)
    fig, ax = _figure_and_ax(ax, (6.0, 3.8))
    xs = list(range(len(ys)))
    (line,) = ax.plot(xs, ys, marker="o", ms=4, color=PALETTE[0], lw=2, label="informed nodes")
    line.set_gid("informed")
    all_line = ax.axhline(n, color="#555555", ls=":", lw=1.2, label=f"all n = {n}")
    all_line.set_gid("all")
    th = ax.axvline(theory, color=PALETTE[1], ls="--", lw=1.5,
                    label=f"log₂n + ln n = {theory:.1f}")
    th.set_gid("theory")
    done = next((i for i, y in enumerate(ys) if y >= n), None)
    if done is not None:
        ax.annotate(f"all informed\nafter {done} rounds", xy=(done, n), xytext=(0, -34),
                    textcoords="offset points", ha="center", fontsize=8,
                    arrowprops=dict(arrowstyle="->", color="#333333", lw=0.8))
        title = f"Gossip: all {n} nodes informed after {done} rounds (theory ≈ {theory:.1f})"
    else:
        title = f"Gossip: {int(ys[-1])} of {n} nodes informed after {len(ys) - 1} rounds (theory ≈ {theory:.1f})"
    ax.set_xlabel("gossip round")
    ax.set_ylabel("nodes informed")
    ax.set_ylim(0, n * 1.12)
    ax.set_xlim(-0.3, max(len(ys) - 1, theory) + 0.8)
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="center left", bbox_to_anchor=(0.01, 0.62), frameon=False, fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig
