"""Lab 4's pictures: the top-down diff stepped level by level, the cost curve, the depth
trade-off and the wipe story's keys missing over time.

:class:`DiffStepsWidget` takes two trees with the lab's interface (``node_hash(level,
index)``, ``leaf_entries(index)``, ``depth``): the student's, or ``RankShapedTree``; its
``step_slider`` is the round of the exchange: at round k the levels 0..k have been compared
(red: the hashes differ, green: they agree, so the walk stops below; grey: never compared),
and the last step shows the keys found in the differing leaves.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import ipywidgets as W
from matplotlib.figure import Figure

from ...viz.common import figure_and_ax
from ...viz.widgets import _FigureWidget
from .scenarios import diff_rounds

__all__ = ["DiffStepsWidget", "draw_cost_curve", "draw_depth_tradeoff",
           "draw_wipe_story"]

_DIFF, _SAME, _SKIP = "#d62728", "#2ca02c", "#d9d9d9"


class DiffStepsWidget(_FigureWidget):
    """Two replicas' trees compared top-down, one round (one level) per step of
    ``step_slider``. State: ``rounds`` (from :func:`~.scenarios.diff_rounds`), ``step``; ``caption`` says
    what the round sent and found. Levels below ``max_levels`` are summarised, not drawn."""

    def __init__(self, tree_a: Any, tree_b: Any, diff_level: Callable, *, max_levels: int = 7):
        super().__init__()
        self.tree_a, self.tree_b = tree_a, tree_b
        self.rounds = diff_rounds(tree_a, tree_b, diff_level)
        self.max_levels = max_levels
        self.step_slider = W.IntSlider(value=0, min=0, max=len(self.rounds) - 1,
                                       description="round", continuous_update=False)
        self.caption = W.HTML()
        self.step_slider.observe(lambda _c: self.render(), names="value")
        self.widget = W.VBox([self.step_slider, self.caption, self.out])
        self.render()

    @property
    def step(self) -> int:
        return self.step_slider.value

    def _caption(self) -> str:
        r = self.rounds[self.step]
        text = (f"round {self.step + 1}/{len(self.rounds)}: level {r['level']}, "
                f"{len(r['compared'])} hashes compared, {len(r['differing'])} differ; "
                f"{r['hashes']} hashes sent so far")
        if "keys" in r:
            shown = ", ".join(r["keys"][:8]) + (" ..." if len(r["keys"]) > 8 else "")
            text += f"; the leaves' entries give the keys: {shown or 'none'}"
        elif not r["differing"]:
            text += "; nothing differs here: the exchange is over"
        return text

    def _draw(self) -> Figure:
        self.caption.value = self._caption()
        shown = min(self.tree_a.depth, self.max_levels)
        fig, ax = figure_and_ax(None, (max(6.0, min(11.0, 0.15 * (1 << shown) + 4)),
                                       0.7 * shown + 2.0))
        ax.axis("off")
        for r in self.rounds[:self.step + 1]:
            level = r["level"]
            if level > shown:
                continue
            differ = set(r["differing"])
            for i in r["compared"]:
                x, y = (i + 0.5) / (1 << level), -level
                colour = _DIFF if i in differ else _SAME
                ax.scatter([x], [y], s=max(8, 160 / (1 << max(0, level - 3))), color=colour,
                           zorder=3, gid=f"merkle:{'differ' if i in differ else 'same'}")
                if level:
                    px = (i // 2 + 0.5) / (1 << (level - 1))
                    ax.plot([px, x], [y + 1, y], color="#555555", lw=0.8, zorder=2)
        for level in range(shown + 1):
            xs = [(i + 0.5) / (1 << level) for i in range(1 << level)]
            ax.scatter(xs, [-level] * len(xs), s=6, color=_SKIP, zorder=1)
        ax.set_ylim(-shown - 0.6, 0.6)
        ax.set_title(f"top-down diff, trees of depth {self.tree_a.depth}"
                     + (f" (levels below {shown} not drawn)" if self.tree_a.depth > shown else ""))
        return fig


def draw_cost_curve(rows: Sequence[Any], depth: int) -> Figure:
    """Hashes exchanged against differing leaves d (log-log), beside 2 d log2(L/d), 2D + 1 at
    d = 1, and a full sync (one digest per key); also the Merkle total with the leaves'
    entries."""
    fig, ax = figure_and_ax(None, (7.5, 4.5))
    ds = [r.d for r in rows]
    ax.loglog(ds, [r.hashes for r in rows], "o-", label="hashes exchanged (measured)",
              gid="curve:hashes")
    ax.loglog([r.d for r in rows if r.formula], [r.formula for r in rows if r.formula], "--",
              label="2 d log2(L/d)", gid="curve:formula")
    ax.loglog(ds, [r.merkle_total for r in rows], "s-", label="hashes + leaf entries",
              gid="curve:total")
    ax.axhline(rows[0].full_sync, color="#7f7f7f", ls=":", label="full sync (one digest a key)")
    ax.scatter([1], [2 * depth + 1], marker="x", color="black", zorder=4, label="2D + 1",
               gid="point:2D+1")
    ax.set_xlabel("differing leaves d")
    ax.set_ylabel("items sent")
    ax.legend(fontsize=8)
    return fig


def draw_depth_tradeoff(rows: Sequence[Any]) -> Figure:
    """Hashes and leaf entries exchanged against the tree's depth (10^5 keys, 10 differ)."""
    fig, ax = figure_and_ax(None, (7.0, 4.0))
    depths = [r.depth for r in rows]
    ax.semilogy(depths, [r.hashes for r in rows], "o-", label="hashes", gid="depth:hashes")
    ax.semilogy(depths, [r.entries for r in rows], "s-", label="leaf entries", gid="depth:entries")
    ax.semilogy(depths, [r.total for r in rows], "k--", label="total", gid="depth:total")
    ax.set_xlabel("tree depth D (2^D leaves)")
    ax.set_ylabel("items sent")
    ax.legend(fontsize=8)
    return fig


def draw_wipe_story(story: Any) -> Figure:
    """Keys the wiped node misses over virtual time since its restart."""
    fig, ax = figure_and_ax(None, (7.0, 3.6))
    ax.step([t for t, _ in story.missing], [m for _, m in story.missing], where="post",
            gid="wipe:missing")
    ax.set_xlabel("virtual seconds since the wiped node restarted")
    ax.set_ylabel("keys it misses")
    ax.set_title(f"{story.messages} anti-entropy messages, {story.bytes:,} bytes "
                 f"(copying its ranges: {story.copy_bytes:,} bytes)")
    return fig
