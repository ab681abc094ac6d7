"""Lab 3's picture: a message space-time (Lamport) diagram of a trace.

:func:`match_messages` pairs each send with the deliver or drop that ended it;
:func:`draw_spacetime` draws one lifeline per node, time flowing down, an arrow per message,
with crashes, restarts, partitions and heals marked.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch
from matplotlib.transforms import blended_transform_factory

from ..errors import ConfigError
from .common import figure_and_ax, natural_key, node_colors

__all__ = ["Message", "match_messages", "draw_spacetime", "events_of", "message_keys",
           "CONTEXT_KINDS"]


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


def events_of(obj: Any) -> list[Any]:
    """The trace events of a SimCluster, a TcpCluster made with ``trace=True`` (its nodes'
    trace files, merged), a Trace, or a list of events, in trace order."""
    if hasattr(obj, "sim") and hasattr(obj.sim, "trace"):
        obj = obj.sim.trace
    elif callable(getattr(obj, "trace", None)) and hasattr(obj, "tracing"):
        obj = obj.trace()
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
    events = events_of(events)
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


def message_keys(msg: Any) -> list[str]:
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


CONTEXT_KINDS = ("crash", "restart", "partition", "heal", "join", "leave", "wipe")


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
    all_events = events_of(events)
    if isinstance(max_messages, bool) or not isinstance(max_messages, int) or max_messages < 1:
        raise ConfigError(f"max_messages is an int >= 1; got {max_messages!r}")
    if time_axis not in ("order", "time"):
        raise ConfigError(f"time_axis is 'order' or 'time'; got {time_axis!r}")
    lo_t = -math.inf if start is None else start
    hi_t = math.inf if end is None else end
    messages = [m for m in match_messages(all_events)
                if (key is None or key in message_keys(m.send.msg)) and lo_t <= m.send.time <= hi_t]
    lanes = list(nodes) if nodes is not None else None
    if lanes is not None:
        messages = [m for m in messages if m.src in lanes and m.dst in lanes]
    total = len(messages)
    messages = messages[:max_messages]
    if lanes is None:
        names = {m.src for m in messages} | {m.dst for m in messages}
        clients = sorted(x for x in names if x.startswith("client:"))
        lanes = clients + sorted((x for x in names if not x.startswith("client:")), key=natural_key)
    # The window in time: what the messages span (or start/end when given).
    spans = [m.send.time for m in messages] + [m.end.time for m in messages if m.end is not None]
    t0 = start if start is not None else min(spans, default=0.0)
    t1 = end if end is not None else max(spans, default=t0)
    last = max([t1] + spans)  # arrows sent inside the window may land after it
    if end is None:  # no end: the whole trace, with the crashes and heals after the last message
        last = max([last] + [e.time for e in all_events if e.kind in CONTEXT_KINDS])
    context = [e for e in all_events if e.kind in CONTEXT_KINDS and t0 <= e.time <= last
               and (e.node == "net" or not lanes or e.node in lanes)]
    if not lanes:
        lanes = sorted({e.node for e in context if e.node != "net"}, key=natural_key)
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
    fig, ax = figure_and_ax(ax, (max(5.5, 1.35 * len(lanes) + 1.8), min(14.0, max(4.5, height))))
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
