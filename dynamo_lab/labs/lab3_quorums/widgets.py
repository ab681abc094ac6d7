"""Lab 3's pictures: pure drawing functions for the measurements, and two widgets.

* :func:`draw_stale_reads`: measured stale-read rates, with their 95% intervals, beside the
  PBS closed form;
* :func:`draw_t_visibility`: the probability of a consistent read t ms after a write
  commits, per latency model, beside the paper's figures;
* :class:`PutStepsWidget`: a :class:`~dynamo_lab.viz.SpaceTimeWidget` stepped through the
  moments of one put (:func:`.scenarios.one_put_moments`);
* :class:`TradeOffWidget`: pick R, W and a latency model; see staleness and the p99.9
  latency of writes and reads.

Drawings follow :mod:`dynamo_lab.viz`'s rules (an optional ``ax``, a title that says what to
look at, gids on what a test may look for).
"""

from __future__ import annotations

import html
from typing import Any, Optional, Sequence

from ...viz.common import figure_and_ax
from .pbs import PAPER_T_VISIBILITY, Rate, TVisibility, closed_form, t_visibility


def draw_stale_reads(rows: Sequence[tuple[tuple[int, int, int], Rate]], *, k: int = 1, ax=None):
    """Each ``((N, R, W), measured Rate)``: the measured stale-read rate with its 95% interval
    (gid ``measured:N,R,W``) beside the closed form C(N-W, R)/C(N, R) ** k (gid
    ``formula:N,R,W``)."""
    fig, ax = figure_and_ax(ax, (6.5, 3.6))
    for i, ((n, r, w), rate) in enumerate(rows):
        lo, hi = rate.interval
        bar = ax.errorbar([i - 0.08], [rate.value], yerr=[[rate.value - lo], [hi - rate.value]],
                          fmt="o", color="#1f77b4", capsize=4,
                          label="measured (95% interval)" if i == 0 else None)
        bar.lines[0].set_gid(f"measured:{n},{r},{w}")
        (mark,) = ax.plot([i + 0.08], [closed_form(n, r, w, k)], "D", color="#d62728",
                          label="PBS closed form" if i == 0 else None)
        mark.set_gid(f"formula:{n},{r},{w}")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"N={n}, R={r}, W={w}\n({rate.trials} trials)" for (n, r, w), rate in rows],
                       fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("P(read misses the last write)" if k == 1 else f"P(read {k} versions stale)")
    ax.set_title("Right after a write reached exactly W replicas: stale reads, measured vs "
                 "C(N-W,R)/C(N,R)", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return fig


def draw_t_visibility(results: Sequence[TVisibility], *, paper=PAPER_T_VISIBILITY, ax=None):
    """For each measurement, P(consistent read) against t (ms) with its 95% band (gid
    ``curve:<preset>``), and the paper's figures as stars (gid ``paper:<preset>``)."""
    fig, ax = figure_and_ax(ax, (6.5, 3.8))
    colors = {"LNKD-SSD": "#1f77b4", "LNKD-DISK": "#ff7f0e"}
    for res in results:
        ts = sorted(res.consistent)
        color = colors.get(res.preset, "#2ca02c")
        ys = [res.consistent[t].value for t in ts]
        (line,) = ax.plot(ts, ys, "o-", color=color, ms=4,
                          label=f"{res.preset}, R={res.r}, W={res.w} (measured)")
        line.set_gid(f"curve:{res.preset}")
        ax.fill_between(ts, [res.consistent[t].interval[0] for t in ts],
                        [res.consistent[t].interval[1] for t in ts], color=color, alpha=0.15)
        if (res.r, res.w, res.n) == (1, 1, 3) and res.preset in paper:
            px = sorted(paper[res.preset])
            (stars,) = ax.plot(px, [paper[res.preset][t] for t in px], "*", color=color, ms=13,
                               markeredgecolor="black", label=f"{res.preset}: the paper")
            stars.set_gid(f"paper:{res.preset}")
    ax.set_xlabel("t: ms after the write committed")
    ax.set_ylabel("P(consistent read)")
    ax.set_ylim(0, 1.02)
    ax.set_title("t-visibility (N=3): how soon a read sees the last write", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def _figure_widget_base():
    from ...viz.widgets import _FigureWidget
    return _FigureWidget


class PutStepsWidget:
    """A space-time diagram of one key, stepped through named moments.

    ``cluster`` and ``key``: what to draw (a :class:`~dynamo_lab.viz.SpaceTimeWidget` of
    them); ``moments``: ``(label, time, caption)``, each time the end of the window shown at
    that step (:func:`.scenarios.one_put_moments`). Controls: ``step_slider``; state:
    ``step``, ``space`` (the SpaceTimeWidget), ``caption``."""

    def __init__(self, cluster: Any, key: str, moments: Sequence[tuple[str, float, str]]):
        import ipywidgets as W
        from ...viz.widgets import SpaceTimeWidget
        if not moments:
            raise ValueError("PutStepsWidget needs at least one moment to show")
        self.moments = list(moments)
        self.space = SpaceTimeWidget(cluster, key=key)
        self.step_slider = W.IntSlider(value=0, min=0, max=len(self.moments) - 1,
                                       description="step", continuous_update=False)
        self.caption = W.HTML()
        self.step_slider.observe(lambda _c: self._show(), names="value")
        self.widget = W.VBox([self.step_slider, self.caption, self.space.widget])
        self._show()

    @property
    def step(self) -> int:
        return self.step_slider.value

    def _show(self) -> None:
        label, t, text = self.moments[self.step]
        lo, hi = self.space.window_slider.min, self.space.window_slider.max
        self.space.window = (lo, min(max(t, lo + self.space.window_slider.step), hi))
        self.caption.value = (f"<b>{self.step + 1}/{len(self.moments)}: {html.escape(label)}</b>"
                              f" &mdash; {html.escape(text)}")

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


class TradeOffWidget(_figure_widget_base()):
    """R and W against staleness and latency (N=3): pick them and a latency model; the widget
    measures t-visibility on a cluster using ``parts`` (``trials`` trials, seeded) and draws it,
    with the p99.9 latency of writes and reads. Results are kept, so going back is instant.

    Controls: ``r_slider``, ``w_slider``, ``preset_box``. State: ``result`` (the current
    :class:`~.pbs.TVisibility`)."""

    def __init__(self, parts=None, trials: int = 300, seed: int = 3,
                 ts_ms: Sequence[float] = (0, 1, 2, 5, 10, 20)):
        import ipywidgets as W
        super().__init__()
        self.parts, self.trials, self.seed, self.ts_ms = parts, trials, seed, tuple(ts_ms)
        self.cache: dict[tuple, TVisibility] = {}
        self.r_slider = W.IntSlider(value=1, min=1, max=3, description="R", continuous_update=False)
        self.w_slider = W.IntSlider(value=1, min=1, max=3, description="W", continuous_update=False)
        self.preset_box = W.Dropdown(options=["LNKD-DISK", "LNKD-SSD"], value="LNKD-DISK",
                                     description="latencies")
        self.info = W.HTML()
        for control in (self.r_slider, self.w_slider, self.preset_box):
            control.observe(lambda _c: self.render(), names="value")
        self.widget = W.VBox([W.HBox([self.r_slider, self.w_slider, self.preset_box]),
                              self.info, self.out])
        self.result: Optional[TVisibility] = None
        self.render()

    def _measure(self) -> TVisibility:
        key = (self.preset_box.value, self.r_slider.value, self.w_slider.value)
        if key not in self.cache:
            self.cache[key] = t_visibility(key[0], self.ts_ms, self.trials, self.seed,
                                           self.parts, n=3, r=key[1], w=key[2])
        return self.cache[key]

    def _draw(self):
        res = self.result = self._measure()
        r, w = res.r, res.w
        self.info.value = (
            f"N=3, R={r}, W={w} ({'R + W > N' if r + w > 3 else 'R + W <= N'}), {res.preset}, "
            f"{self.trials} trials: p99.9 write latency <b>{res.percentile('write', 0.999):.2f} ms"
            f"</b>, p99.9 read latency <b>{res.percentile('read', 0.999):.2f} ms</b>; consistent "
            f"at t=0: <b>{res.consistent[min(res.consistent)]}</b>")
        return draw_t_visibility([res])
