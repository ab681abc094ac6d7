"""Lab 4's picture: where two replicas' Merkle trees differ, and what finding it cost.

Only the nodes the top-down comparison visited are coloured (red: differ, green: agree, so the
walk stops there); the title compares the hashes exchanged with a full sync.
"""

from __future__ import annotations

from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..errors import ConfigError
from ..merkle import MerkleTree, full_sync_cost, merkle_diff
from .common import figure_and_ax

__all__ = ["draw_merkle_diff"]

_DIFF_COLOR = "#d62728"
_SAME_COLOR = "#2ca02c"
_SKIP_COLOR = "#d9d9d9"



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

    fig, ax = figure_and_ax(ax, (max(6.0, min(11.0, 0.2 * (1 << shown) + 4)), 0.8 * shown + 2.4))
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
