"""Lab 2's picture: the versions of one key as a DAG of vector clocks.

An arrow ``a -> b`` means ``b``'s clock descends ``a``'s directly; the versions ``reconcile``
keeps are the ones nothing descends, highlighted orange when they are concurrent siblings and
green when one version descends all others. The paper's D1..D5 example is one lab's story and
lives with it, in :mod:`dynamo_lab.labs.lab2_vector_clocks.story`.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import networkx as nx
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..errors import ConfigError
from ..vclock import VectorClock
from ..versions import Versioned
from .common import figure_and_ax, node_colors

__all__ = ["version_dag", "kept_versions", "draw_version_dag"]

_SIBLING_FACE, _SIBLING_EDGE = "#ffe3b3", "#e67e00"
_LATEST_FACE, _LATEST_EDGE = "#dcf3dc", "#2ca02c"



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


def kept_versions(dag: nx.DiGraph) -> list[str]:
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

    maximal = kept_versions(dag)
    distinct_max = {dag.nodes[x]["clock"] for x in maximal}
    siblings = len(distinct_max) > 1
    writers = sorted({n for x in order for n in dag.nodes[x]["clock"].nodes})
    colors = node_colors(writers)

    fig, ax = figure_and_ax(ax, (max(4.5, 2.6 * len(columns) + 0.8), max(2.8, 1.35 * tallest + 1.6)))
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
