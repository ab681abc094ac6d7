"""Lab 1's pictures: the consistent-hashing ring, the load per node, and load spread vs vnodes.

A drawing reads any ring-like object (a student's ring too) through :func:`ring_tokens`. What
the ring computes is what is drawn: its own ``preference_list`` and ``ownership`` when it has
them. Where it has not, the answer comes from the reference :class:`~dynamo_lab.Ring` built over
the same tokens, so the walk round the ring is written once, in :mod:`dynamo_lab.ring`.

Gids a test or a grader may look for are listed in each function's docstring.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional, Sequence

from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch
from matplotlib.path import Path as MplPath

from ..errors import ConfigError
from ..hashing import RING_SIZE, key_hash
from ..ring import Ring
from .common import CLIENT_COLOR, PALETTE, figure_and_ax, natural_key, node_colors

__all__ = ["ring_tokens", "coordinators", "draw_ring", "draw_load", "draw_load_spread"]

_KEY_COLOR = "#6b6b6b"
_MOVED_COLOR = "#ffc400"


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


def _ring_node_list(ring: Any, pairs: Optional[list[tuple[int, str]]] = None) -> list[str]:
    nodes = getattr(ring, "nodes", None)
    if callable(nodes):
        nodes = nodes()
    if nodes is None:
        if pairs is None:
            raise ConfigError(f"{type(ring).__name__} has no .nodes; give it a list of node ids")
        nodes = {node for _, node in pairs}
    return sorted((str(x) for x in nodes), key=natural_key)


def _reference(pairs: list[tuple[int, str]]) -> Ring:
    """The reference ring over these tokens: what answers for a ring that cannot answer itself."""
    token_map: dict[str, set[int]] = {}
    for token, node in pairs:
        token_map.setdefault(node, set()).add(token)
    return Ring.from_tokens(token_map)


def coordinators(ring: Any, keys: Iterable[str]) -> dict[str, str]:
    """``{key: coordinator}``: the ring's own ``coordinator(key)`` when it has one, otherwise
    the reference :class:`~dynamo_lab.Ring`'s over the tokens :func:`ring_tokens` reads."""
    if callable(getattr(ring, "coordinator", None)):
        return {k: ring.coordinator(k) for k in keys}
    ref = _reference(ring_tokens(ring))
    return {k: ref.coordinator(k) for k in keys}


def _preference_nodes(ring: Any, pairs: list[tuple[int, str]], key: str, n: int) -> list[str]:
    """The ring's own preference list (a student's ring shows what it computes), or the
    reference ring's over the same tokens when the ring has no ``preference_list``."""
    if callable(getattr(ring, "preference_list", None)):
        return list(ring.preference_list(key, n))
    ref = _reference(pairs)
    return ref.preference_list(key, min(n, len(ref))) if len(ref) else []


def _ownership_from_tokens(pairs: list[tuple[int, str]], nodes: Sequence[str]) -> dict[str, float]:
    """The share of the key space each of ``nodes`` coordinates (0 for a node with no token)."""
    own = {x: 0.0 for x in nodes}
    own.update(_reference(pairs).ownership())
    return dict(sorted(own.items()))


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
    return {k: own[k] for k in sorted(own, key=natural_key)}


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
    it has one (so a student's ring shows what it computes), otherwise the reference
    :class:`~dynamo_lab.Ring`'s over the same tokens. Raises :class:`ConfigError` for an unreadable ring or a bad ``n``,
    :class:`~dynamo_lab.errors.InvalidKey` for a bad key.
    """
    pairs = ring_tokens(ring)
    nodes = _ring_node_list(ring, pairs)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n (replicas in the preference list) must be an int >= 1; got {n!r}")
    colors = node_colors(nodes)
    fig, ax = figure_and_ax(ax, (6.4, 6.4))
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
        for i, node in enumerate(pref, start=1):
            # The nearest token of this node clockwise from the key not already used (a list
            # that repeats a node gets a second arc to the same colour: easy to spot).
            target = min((t for t, x in pairs if x == node and t not in used),
                         key=lambda t: (t - h) % RING_SIZE, default=None)
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
    fig, ax = figure_and_ax(ax, (max(4.0, 0.7 * len(nodes) + 2.0), 3.6))
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
    fig, ax = figure_and_ax(ax, (5.6, 3.8))
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
