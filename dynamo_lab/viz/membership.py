"""Lab 5's picture: how many nodes a rumour has reached after each gossip round, against the
push-gossip estimate ``log2 n + ln n`` (Pittel 1987)."""

from __future__ import annotations

import math
from typing import Optional, Sequence

from matplotlib.figure import Figure

from ..errors import ConfigError
from .common import PALETTE, figure_and_ax

__all__ = ["draw_convergence"]


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
    fig, ax = figure_and_ax(ax, (6.0, 3.8))
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
