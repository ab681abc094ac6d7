"""Lab 7's pictures: the servers' write logs as the slides draw them, stepped through, and the
measurements beside Dynamo's.

* :class:`BayouLogWidget`: one table per server in the slides' notation (``CSN:TS:server``, the
  write, the version vector), committed rows in bold, tentative ones in grey italics, rows new
  since the previous frame marked; under each, the database its users see. A slider and
  buttons step frame by frame (:func:`.scenarios.lecture_frames`).
* :func:`draw_bookings`: Bayou's changed tentative results and Dynamo's double bookings
  against partition length; :func:`draw_sessions`: sessions until one write reaches every
  server, beside (n - 1) H(n - 1).
"""

from __future__ import annotations

import html
import json
from typing import Optional, Sequence

from ...viz.common import figure_and_ax
from .measure import Bookings, Convergence, one_write_expectation
from .scenarios import Frame

_CSS = ("font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; "
        "border-collapse: collapse; margin: 0 18px 10px 0; vertical-align: top")


def frame_html(frame: Frame, previous: Optional[Frame] = None) -> str:
    """One frame as HTML: a table per server (gid-like ``data-`` attributes on rows, so a test
    can find them: ``data-server``, ``data-label``, ``data-committed``, ``data-new``)."""
    parts = [f"<div><b style='font-size:15px'>{html.escape(frame.title)}</b></div>",
             "<div style='display:flex; flex-wrap:wrap; align-items:flex-start'>"]
    for name, table in frame.tables.items():
        before = set(previous.tables[name].labels()) if previous and name in previous.tables \
            else set()
        rows = list(table.rows)
        cells = []
        for i in range(max(len(rows), len(table.versions))):
            if i < len(rows):
                label, write, committed = rows[i]
                new = previous is not None and f"{label} {write}" not in before
                style = "font-weight:bold" if committed else "color:#555; font-style:italic"
                if new:
                    style += "; background:#fff3b0"
                row = (f"<td style='padding:1px 8px; {style}'>{html.escape(label)}</td>"
                       f"<td style='padding:1px 8px; {style}'>{html.escape(write)}</td>")
                attrs = (f" data-server='{name}' data-label='{html.escape(label)}'"
                         f" data-committed='{'yes' if committed else 'no'}'"
                         f" data-new='{'yes' if new else 'no'}'")
            else:
                row, attrs = "<td></td><td></td>", ""
            vv = (f"{table.versions[i][0]}: {table.versions[i][1]}" if i < len(table.versions)
                  else "")
            cells.append(f"<tr{attrs}>{row}<td style='padding:1px 8px; border-left:1px solid "
                         f"#999'>{html.escape(vv)}</td></tr>")
        db = json.dumps(frame.databases.get(name, {}), sort_keys=True)
        committed_db = json.dumps(frame.committed.get(name, {}), sort_keys=True)
        truncated = (f"<tr><td colspan=3 style='color:#555'>CSN 1..{table.osn} truncated</td>"
                     f"</tr>" if table.osn else "")
        parts.append(
            f"<table style='{_CSS}' data-table='{name}'>"
            f"<tr><th style='text-align:left; padding:1px 8px' colspan=2>{name}</th>"
            f"<th style='text-align:left; padding:1px 8px; border-left:1px solid #999'>"
            f"Versions</th></tr>{truncated}{''.join(cells)}"
            f"<tr><td colspan=3 style='padding-top:4px'>users see {html.escape(db)}</td></tr>"
            f"<tr><td colspan=3 style='color:#555'>committed {html.escape(committed_db)}</td>"
            f"</tr></table>")
    parts.append("</div>")
    return "".join(parts)


class BayouLogWidget:
    """Step through ``frames`` (:class:`~.scenarios.Frame`): ``step_slider``, ``prev_button``,
    ``next_button``; ``frame`` is the one shown and ``html`` its HTML; display ``.widget``."""

    def __init__(self, frames: Sequence[Frame]):
        import ipywidgets as W
        if not frames:
            raise ValueError("BayouLogWidget needs at least one frame")
        self.frames = list(frames)
        self.step_slider = W.IntSlider(value=0, min=0, max=len(self.frames) - 1,
                                       description="step", continuous_update=False)
        self.prev_button = W.Button(description="◀ previous")
        self.next_button = W.Button(description="next ▶")
        self.view = W.HTML()
        self.prev_button.on_click(lambda _: self._move(-1))
        self.next_button.on_click(lambda _: self._move(+1))
        self.step_slider.observe(lambda _: self.render(), names="value")
        self.widget = W.VBox([W.HBox([self.prev_button, self.step_slider, self.next_button]),
                              self.view])
        self.render()

    @property
    def frame(self) -> Frame:
        return self.frames[self.step_slider.value]

    @property
    def html(self) -> str:
        return self.view.value

    def _move(self, by: int) -> None:
        self.step_slider.value = min(max(self.step_slider.value + by, 0), len(self.frames) - 1)

    def render(self) -> None:
        i = self.step_slider.value
        self.view.value = frame_html(self.frames[i], self.frames[i - 1] if i else None)

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


def draw_bookings(rows: Sequence[Bookings], *, ax=None):
    """Against partition length: the share of Bayou bookings whose result as first shown
    later changed (gid ``bayou-changed``), and the share of Dynamo slots left double booked
    (gid ``dynamo-double``)."""
    fig, ax = figure_and_ax(ax, (6.5, 3.6))
    xs = [r.partition_s for r in rows]
    (a,) = ax.plot(xs, [r.changed_rate for r in rows], "o-", color="#0072B2",
                   label="Bayou: tentative result later changed (merge procedure ran)")
    a.set_gid("bayou-changed")
    (b,) = ax.plot(xs, [r.double_booked_rate for r in rows], "s--", color="#D55E00",
                   label="Dynamo: slot left with siblings (the application must merge)")
    b.set_gid("dynamo-double")
    ax.set_xlabel("partition length (s)")
    ax.set_ylabel("share")
    ax.set_ylim(0, max(0.05, max([r.changed_rate for r in rows] +
                                 [r.double_booked_rate for r in rows]) * 1.15))
    ax.set_title("Room bookings on both sides of a partition", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def draw_sessions(rows: Sequence[Convergence], *, ax=None):
    """Mean sessions (with one standard deviation) until one write reaches all n servers
    (gid ``measured``), beside (n - 1) H(n - 1) (gid ``formula``)."""
    fig, ax = figure_and_ax(ax, (6.0, 3.4))
    ns = [r.n for r in rows]
    bars = ax.errorbar(ns, [r.mean for r in rows], yerr=[r.spread for r in rows], fmt="o",
                       color="#0072B2", capsize=4, label="measured (mean, 1 sd)")
    bars.lines[0].set_gid("measured")
    fine = list(range(min(ns), max(ns) + 1))
    (f,) = ax.plot(fine, [one_write_expectation(n) for n in fine], "-", color="#D55E00",
                   label="(n-1) H(n-1)")
    f.set_gid("formula")
    ax.set_xlabel("servers n")
    ax.set_ylabel("random pairwise sessions")
    ax.set_title("Anti-entropy with random pairs: sessions until one write is everywhere",
                 fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
