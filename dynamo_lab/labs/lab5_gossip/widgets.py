"""Lab 5's pictures: pure drawing functions (an optional ``ax``, a title that says what to look
at, gids on what a test may look for).

* :func:`draw_who_knows`: after each gossip round, which nodes know of a join (one row per
  node), beside :func:`dynamo_lab.viz.draw_convergence`'s count;
* :func:`draw_rounds`: measured rounds until all n know a rumour, push and push-pull, beside
  Pittel's log2 n + ln n and the bound the lab holds them to (+2);
* :func:`draw_zero_hop`: the view's size and gossip bytes per round as n grows;
* :func:`draw_detectors`: false suspicions per hour against detection time, one curve per
  detector, one point per setting;
* :class:`JoinRoundsWidget`: the join's grid, stepped round by round with a slider.
"""

from __future__ import annotations

import math
from typing import Sequence

import ipywidgets as W

from ...viz.common import PALETTE, figure_and_ax
from ...viz.widgets import _FigureWidget
from .rumours import Rounds, pittel


def draw_who_knows(spread, *, upto=None, ax=None):
    """``spread``: a :class:`~.scenarios.JoinSpread`. A grid: one row per node, one column per
    gossip round, filled once the node has the newcomer in its ring (gid ``knows``);
    ``upto``: show the rounds up to that one only (the later columns blank)."""
    fig, ax = figure_and_ax(ax, (6.5, 4.2))
    nodes = spread.nodes
    last = len(spread.knows) - 1 if upto is None else max(0, min(upto, len(spread.knows) - 1))
    grid = [[(1.0 if n in knows else 0.0) if r <= last else 0.15
             for r, knows in enumerate(spread.knows)] for n in nodes]
    img = ax.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=1.3, interpolation="nearest")
    img.set_gid("knows")
    ax.set_yticks(range(len(nodes)))
    ax.set_yticklabels(nodes, fontsize=7)
    ax.set_xticks(range(len(spread.knows)))
    ax.set_xlabel("gossip round after the join")
    ax.set_ylabel("node")
    ax.set_title(f"Who has {spread.newcomer} in its ring, round by round "
                 f"({spread.counts[last]} of {len(nodes)} after {last} rounds)", fontsize=10)
    return fig


class JoinRoundsWidget(_FigureWidget):
    """:func:`draw_who_knows` with a slider over the rounds (``round_slider``); ``shown``:
    how many nodes know after the round on the slider."""

    def __init__(self, spread):
        super().__init__()
        self.spread = spread
        self.round_slider = W.IntSlider(value=0, min=0, max=len(spread.knows) - 1,
                                        description="round", continuous_update=False)
        self.info = W.HTML()
        self.round_slider.observe(lambda _c: self.render(), names="value")
        self.widget = W.VBox([self.round_slider, self.info, self.out])
        self.render()

    @property
    def shown(self) -> int:
        return self.spread.counts[self.round_slider.value]

    def _draw(self):
        r = self.round_slider.value
        self.info.value = (f"after round {r}: {self.shown} of {len(self.spread.nodes)} nodes "
                           f"have {self.spread.newcomer} in their ring")
        return draw_who_knows(self.spread, upto=r)


def draw_rounds(push: Sequence[Rounds], push_pull: Sequence[Rounds] = (), *, ax=None):
    """Mean rounds (min-max as error bars) against n, log scale; Pittel's log2 n + ln n
    (gid ``pittel``) and the lab's bound, +2 (gid ``bound``); gids ``push`` and
    ``push-pull`` on the measured series."""
    fig, ax = figure_and_ax(ax, (6.5, 4.0))
    ns = sorted({r.n for r in push} | {r.n for r in push_pull})
    xs = [10 ** (math.log10(ns[0]) + i * (math.log10(ns[-1]) - math.log10(ns[0])) / 100)
          for i in range(101)]
    (p,) = ax.plot(xs, [pittel(x) for x in xs], "--", color="#555555", label="log₂n + ln n (Pittel)")
    p.set_gid("pittel")
    (b,) = ax.plot(xs, [pittel(x) + 2 for x in xs], ":", color="#d62728", label="+ 2 (the bound)")
    b.set_gid("bound")
    for i, (series, name) in enumerate(((push, "push"), (push_pull, "push-pull"))):
        if not series:
            continue
        means = [r.mean for r in series]
        lo = [r.mean - r.spread[0] for r in series]
        hi = [r.spread[1] - r.mean for r in series]
        bars = ax.errorbar([r.n for r in series], means, yerr=[lo, hi], fmt="o-", capsize=3,
                           color=PALETTE[i], label=f"{name}, measured (min-max)")
        bars.lines[0].set_gid(name)
    ax.set_xscale("log")
    ax.set_xlabel("nodes n")
    ax.set_ylabel("rounds until all know")
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Gossip rounds until everyone knows: measured vs log₂n + ln n", fontsize=10)
    return fig


def draw_zero_hop(rows, *, ax=None):
    """``rows``: :class:`~.scenarios.ZeroHop` per n. Gossip bytes per round (gid ``bytes``)
    against n, log-log, with a slope-2 guide (gid ``n2``)."""
    fig, ax = figure_and_ax(ax, (6.0, 3.6))
    ns = [r.n for r in rows]
    (m,) = ax.plot(ns, [r.bytes_per_round for r in rows], "o-", color=PALETTE[0],
                   label="gossip bytes per round (measured)")
    m.set_gid("bytes")
    first = rows[0]
    (g,) = ax.plot(ns, [first.bytes_per_round * (n / first.n) ** 2 for n in ns], ":",
                   color="#555555", label="∝ n² (2n messages of n entries)")
    g.set_gid("n2")
    for r in rows:
        ax.annotate(f"view: {r.view_entries} entries, {r.view_bytes / 1024:.0f} KB",
                    (r.n, r.bytes_per_round), textcoords="offset points", xytext=(6, -12),
                    fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nodes n")
    ax.set_ylabel("bytes per gossip round")
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.set_title("The zero-hop view: every node gossips every member's tokens", fontsize=10)
    return fig


def draw_detectors(rows, *, ax=None, title: str = ""):
    """``rows``: :class:`~.detection.Row` (name, setting, false suspicions per hour, detection
    time). One curve per detector (gids ``timeout`` and ``phi``), each point labelled with its
    setting."""
    fig, ax = figure_and_ax(ax, (6.0, 3.8))
    for i, name in enumerate(("timeout", "phi")):
        pts = [r for r in rows if r.name == name and math.isfinite(r.detection_s)]
        if not pts:
            continue
        (line,) = ax.plot([r.detection_s for r in pts], [r.per_hour + 0.1 for r in pts], "o-",
                          color=PALETTE[i], label=f"{name} (label: {'seconds' if name == 'timeout' else 'threshold'})")
        line.set_gid(name)
        for r in pts:
            ax.annotate(f"{r.setting:g}", (r.detection_s, r.per_hour + 0.1), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
    ax.set_yscale("log")
    ax.set_xlabel("time to suspect the crashed node (s)")
    ax.set_ylabel("false suspicions per hour (+0.1)")
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(title or "Failure detectors: quicker detection costs false suspicions",
                 fontsize=10)
    return fig
