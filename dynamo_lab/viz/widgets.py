"""ipywidgets for the labs, built on the pure drawing functions of :mod:`dynamo_lab.viz`.

Every widget is a small class:

* ``.widget`` is the ipywidgets container to display (showing the object itself works too);
* its controls are attributes (``vnodes_slider``, ``step_slider``, ...), and its state is plain
  attributes (``ring``, ``moved``, ``versions``, ``window``, ...), so a test or a notebook
  can drive it without a browser: set ``vnodes_slider.value = 16`` and read ``ring``;
* each change redraws: the picture goes into an ``ipywidgets.Output`` as a PNG (its
  ``outputs`` are set directly, so this works with no kernel at all, in JupyterLab and in a
  headless nbclient run). ``figure`` is the last matplotlib Figure, ``png`` its bytes and
  ``renders`` counts the redraws;
* an exception raised while drawing (typically by a student's ring) is shown in the output in
  place of the picture and kept in ``error``; the widget keeps working.
"""

from __future__ import annotations

import abc
import base64
import html
from typing import Any, Callable, Iterable, Optional, Sequence

import ipywidgets as W
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..merkle import MerkleTree, merkle_diff
from ..ring import Ring
from ..vclock import VectorClock
from ..versions import Versioned
from .common import VizFigure, figure_png
from .merkle import draw_merkle_diff
from .messages import CONTEXT_KINDS, draw_spacetime, events_of, match_messages, message_keys
from .ring import _ownership, coordinators, draw_load, draw_ring
from .versions import draw_version_dag, kept_versions, version_dag

__all__ = ["RingWidget", "VersionDagWidget", "SpaceTimeWidget", "MerkleDiffWidget"]


class _FigureWidget(abc.ABC):
    """Controls + an Output holding the current drawing."""

    widget: W.Widget

    def __init__(self) -> None:
        self.out = W.Output()
        self.figure: Optional[Figure] = None
        self.png: bytes = b""
        self.renders = 0
        self.error: Optional[str] = None

    @abc.abstractmethod
    def _draw(self) -> Figure:
        """The drawing for the current state (each widget says what it draws)."""

    def render(self) -> None:
        """Redraw now from the current state (the controls call this on every change)."""
        try:
            fig = self._draw()
            png = figure_png(fig)
        except Exception as exc:  # a student's code may raise anything: show it, keep going
            self.error = f"{type(exc).__name__}: {exc}"
            self.out.outputs = ({"output_type": "stream", "name": "stderr",
                                 "text": f"could not draw: {self.error}\n"},)
            return
        self.error = None
        self.figure, self.png = fig, png
        self.renders += 1
        self.out.outputs = ({"output_type": "display_data",
                             "data": {"image/png": base64.b64encode(png).decode("ascii"),
                                      "text/plain": f"<{type(self).__name__} drawing>"},
                             "metadata": {}},)

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


# --------------------------------------------------------------------------------------------
# Lab 1: the ring
# --------------------------------------------------------------------------------------------


def _default_ring_factory(nodes: Sequence[str], vnodes: int) -> Ring:
    return Ring(list(nodes), vnodes=vnodes)


def _next_name(nodes: Iterable[str]) -> str:
    taken = set(nodes)
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if c not in taken:
            return c
    i = 26
    while f"N{i}" in taken:
        i += 1
    return f"N{i}"


class RingWidget(_FigureWidget):
    """The ring of Lab 1: tokens coloured by node, keys, the preference list of a chosen key,
    and the load per node beside it. ``RingWidget(cluster)`` (a SimCluster or a TcpCluster)
    draws that cluster's ring: its members, vnodes, N and ring factory.

    Controls: ``vnodes_slider`` (tokens per node; rebuilds the ring), ``key_box`` (a combobox:
    pick one of ``keys`` or type any key), ``new_node`` + ``add_button``, ``remove_picker`` +
    ``remove_button``. After an add or a remove, the keys whose coordinator changed are
    starred on the ring and counted in ``status``.

    State: ``nodes`` (list), ``ring`` (what ``ring_factory(nodes, vnodes)`` returned),
    ``keys``, ``n``, ``moved`` (``{key: (old coordinator, new coordinator)}`` for the last
    add/remove, empty after any other change), ``last_change`` (``("add" | "remove", node)`` or
    None). :meth:`add_node` / :meth:`remove_node` do what the buttons do.

    ``ring_factory(nodes, vnodes)`` lets a lab plug in the student's ring (default:
    :class:`~dynamo_lab.Ring`); it must return an object :func:`~dynamo_lab.viz.ring_tokens`
    can read. It is called afresh for every change, so it needs no ``add_node``. Raises
    :class:`ConfigError` for an empty or repeated node list, ``vnodes < 1`` or ``n < 1``.
    """

    def __init__(self, nodes: Any = ("A", "B", "C", "D"), vnodes: int = 8,
                 keys: Optional[Iterable[str]] = None, n: int = 3,
                 ring_factory: Optional[Callable[[Sequence[str], int], Any]] = None):
        super().__init__()
        if callable(getattr(nodes, "ring", None)) and hasattr(nodes, "config"):
            # a SimCluster or a TcpCluster: its members, its vnodes and N, its ring factory
            cluster = nodes
            nodes, vnodes, n = list(cluster.nodes), cluster.config.vnodes, cluster.config.n
            parts = getattr(cluster, "parts", None)
            if ring_factory is None and parts is not None:
                from ..node.common import default_tokens
                ring_factory = lambda ns, v: parts.ring_factory(  # noqa: E731
                    {x: default_tokens(x, v) for x in ns})
        nodes = list(nodes)
        if not nodes or len(set(nodes)) != len(nodes) or not all(isinstance(x, str) and x for x in nodes):
            raise ConfigError(f"nodes must be distinct non-empty strings such as ('A', 'B'); got {nodes!r}")
        if isinstance(vnodes, bool) or not isinstance(vnodes, int) or vnodes < 1:
            raise ConfigError(f"vnodes must be an int >= 1; got {vnodes!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n (replicas) must be an int >= 1; got {n!r}")
        self.nodes = nodes
        self.keys = list(keys) if keys is not None else [f"cart:{i}" for i in range(100)]
        self.n = n
        self.ring_factory = ring_factory or _default_ring_factory
        self.moved: dict[str, tuple[str, str]] = {}
        self.last_change: Optional[tuple[str, str]] = None

        self.vnodes_slider = W.IntSlider(value=vnodes, min=1, max=max(64, vnodes), description="vnodes",
                                         continuous_update=False)
        first = self.keys[0] if self.keys else "cart:alice"
        self.key_box = W.Combobox(value=first, options=tuple(self.keys[:500]), description="key",
                                  ensure_option=False, continuous_update=False,
                                  placeholder="a key, e.g. cart:alice")
        self.new_node = W.Text(value=_next_name(nodes), description="new node",
                               layout=W.Layout(width="180px"))
        self.add_button = W.Button(description="add node", icon="plus", button_style="success")
        self.remove_picker = W.Dropdown(options=list(nodes), description="node",
                                        layout=W.Layout(width="160px"))
        self.remove_button = W.Button(description="remove node", icon="minus", button_style="warning")
        self.status = W.HTML()
        self.vnodes_slider.observe(self._on_vnodes, names="value")
        self.key_box.observe(lambda _c: self.render(), names="value")
        self.add_button.on_click(lambda _b: self.add_node())
        self.remove_button.on_click(lambda _b: self.remove_node())
        self.widget = W.VBox([
            W.HBox([self.vnodes_slider, self.key_box]),
            W.HBox([self.new_node, self.add_button, self.remove_picker, self.remove_button]),
            self.status, self.out])
        self.ring = self._build(self.nodes)
        self._say(self._summary())
        self.render()

    # -- state ---------------------------------------------------------------------------

    @property
    def vnodes(self) -> int:
        return self.vnodes_slider.value

    @property
    def key(self) -> Optional[str]:
        """The key whose preference list is drawn (None when the box is empty)."""
        return self.key_box.value or None

    def _build(self, nodes: Sequence[str]) -> Any:
        return self.ring_factory(list(nodes), self.vnodes)

    def _coordinators(self, ring: Any) -> dict[str, str]:
        return coordinators(ring, self.keys)

    def _say(self, text: str, error: bool = False) -> None:
        color = "#b00020" if error else "#333333"
        self.status.value = f"<span style='color:{color}'>{text}</span>"

    def _summary(self) -> str:
        return (f"{len(self.nodes)} nodes × {self.vnodes} tokens, {len(self.keys)} keys; "
                f"N = {min(self.n, len(self.nodes))} replicas")

    def _on_vnodes(self, _change: Any) -> None:
        try:
            self.ring = self._build(self.nodes)
        except Exception as exc:
            self._say(f"the ring factory failed: {html.escape(str(exc))}", error=True)
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.moved, self.last_change = {}, None
        self._say(self._summary())
        self.render()

    def _change(self, nodes: list[str], kind: str, node: str) -> bool:
        try:
            new_ring = self._build(nodes)
            before, after = self._coordinators(self.ring), self._coordinators(new_ring)
        except Exception as exc:
            self._say(f"could not {kind} {html.escape(node)}: {html.escape(str(exc))}", error=True)
            self.error = f"{type(exc).__name__}: {exc}"
            return False
        self.moved = {k: (before[k], after[k]) for k in self.keys if before[k] != after[k]}
        self.previous_ring = self.ring
        self.nodes, self.ring, self.last_change = nodes, new_ring, (kind, node)
        self.remove_picker.options = list(nodes)
        self.new_node.value = _next_name(nodes)
        share = len(self.moved) / len(self.keys) if self.keys else 0.0
        # The keys that move are the ones the node gains (or had): its share of the ring,
        # which with few tokens per node is far from the 1/(n+1) of the average node.
        owned = _ownership(new_ring if kind == "add" else self.previous_ring).get(node, 0.0)
        fair = 1 / (len(nodes) if kind == "add" else len(nodes) + 1)
        if kind == "add":
            to_new = sum(1 for _old, new in self.moved.values() if new == node)
            text = (f"<b>added {html.escape(node)}</b>: {len(self.moved)} of {len(self.keys)} keys "
                    f"({share:.0%}) changed coordinator, {to_new} of them to {html.escape(node)}, "
                    f"which now owns {owned:.0%} of the ring")
        else:
            text = (f"<b>removed {html.escape(node)}</b>: {len(self.moved)} of {len(self.keys)} keys "
                    f"({share:.0%}) changed coordinator: the keys {html.escape(node)} had. It owned "
                    f"{owned:.0%} of the ring")
        text += (f"; the average node owns 1/{round(1 / fair)} = {fair:.0%}, which is what a "
                 f"{'join' if kind == 'add' else 'leave'} moves on average")
        if abs(owned - fair) > fair / 4:
            text += (f". With {self.vnodes} token{'s' if self.vnodes != 1 else ''} per node the "
                     f"shares are uneven (the bar chart): raise vnodes and try again to see both "
                     f"come close to {fair:.0%}")
        self._say(text + " — starred ★ on the ring")
        self.render()
        return True

    def add_node(self, name: Optional[str] = None) -> bool:
        """Add a node (default: the name in ``new_node``); the keys that move are starred.
        Returns False, with the reason in ``status``, if the name is empty or taken or the
        ring factory fails."""
        name = (self.new_node.value if name is None else name).strip()
        if not name or name in self.nodes:
            self._say(f"pick a new node name (not one of {', '.join(self.nodes)})", error=True)
            return False
        return self._change(self.nodes + [name], "add", name)

    def remove_node(self, name: Optional[str] = None) -> bool:
        """Remove a node (default: the one chosen in ``remove_picker``). Returns False, with
        the reason in ``status``, for an unknown node, the last node, or a failing factory."""
        name = self.remove_picker.value if name is None else name
        if name not in self.nodes:
            self._say(f"{html.escape(str(name))} is not in the ring", error=True)
            return False
        if len(self.nodes) == 1:
            self._say("a ring needs at least one node", error=True)
            return False
        return self._change([x for x in self.nodes if x != name], "remove", name)

    def _draw(self) -> Figure:
        fig = VizFigure(figsize=(12.5, 5.6), dpi=100)
        grid = fig.add_gridspec(1, 2, width_ratios=[1.5, 1.0], wspace=0.45)
        ring_ax, load_ax = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
        draw_ring(self.ring, keys=self.keys, highlight_key=self.key, n=min(self.n, len(self.nodes)),
                    moved=list(self.moved), ax=ring_ax)
        draw_load(self.ring, ax=load_ax)
        return fig


# --------------------------------------------------------------------------------------------
# Lab 2: versions
# --------------------------------------------------------------------------------------------


def _parse_payload(label: str, payload: Any) -> tuple[list[tuple[Optional[str], Any]], str]:
    """(new versions as (label or None, Versioned | VectorClock), description) of one step."""
    if isinstance(payload, str):
        return [], payload
    if isinstance(payload, (Versioned, VectorClock)):
        return [(label, payload)], ""
    if isinstance(payload, dict):
        return [(str(k), v) for k, v in payload.items()], ""
    found: list[tuple[Optional[str], Any]] = []
    for item in payload:
        if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
            found.append((item[0], item[1]))
        else:
            found.append((None, item))
    for _lab, v in found:
        if not isinstance(v, (Versioned, VectorClock)):
            raise ConfigError(f"step {label!r}: versions are Versioned objects or (label, Versioned) "
                              f"pairs; got {v!r}")
    return found, ""


class VersionDagWidget(_FigureWidget):
    """Step through a scenario and watch the version DAG of one key grow.

    ``scenario``: a list of steps, each ``(label, payload)`` or ``(label, payload,
    description)``. ``payload`` is what appeared at that step: a list of
    :class:`~dynamo_lab.Versioned` (named ``v1, v2, ...`` in order of first appearance) or of
    ``(label, Versioned)`` pairs, a single Versioned (named by the step label), or a string
    (a step that only explains). The output of
    :func:`~dynamo_lab.labs.lab2_vector_clocks.story.paper_d1_d5` and of
    :func:`~dynamo_lab.labs.lab2_vector_clocks.story.paper_d1_d5_steps` are scenarios.

    Controls: ``step_slider`` (1..number of steps), ``prev_button``, ``next_button``. State:
    ``step`` (settable), ``versions`` (every ``(label, version)`` seen up to the step; a
    version seen again keeps its first label), ``kept`` (labels of the versions reconcile
    keeps). Raises :class:`ConfigError` for an empty or malformed scenario.
    """

    def __init__(self, scenario: Sequence[Any]):
        super().__init__()
        steps = list(scenario)
        if not steps:
            raise ConfigError("the scenario has no steps; give a list of (label, versions) steps")
        self.steps: list[tuple[str, list[tuple[str, Any]], str]] = []
        names: dict[Any, str] = {}   # version (by value) -> its label
        count = 0
        for i, step in enumerate(steps):
            if not isinstance(step, (tuple, list)) or len(step) not in (2, 3):
                raise ConfigError(f"step {i} must be (label, versions) or (label, versions, "
                                  f"description); got {step!r}")
            label, payload = str(step[0]), step[1]
            found, text = _parse_payload(label, payload)
            if len(step) == 3:
                text = str(step[2])
            new = []
            for lab, v in found:
                if v in names:
                    new.append((names[v], v))
                    continue
                if lab is None:
                    count += 1
                    lab = f"v{count}"
                if lab in names.values():
                    raise ConfigError(f"version label {lab!r} names two different versions")
                names[v] = lab
                new.append((lab, v))
            self.steps.append((label, new, text))
        self.step_slider = W.IntSlider(value=1, min=1, max=len(self.steps), description="step")
        self.prev_button = W.Button(description="previous", icon="arrow-left",
                                    layout=W.Layout(width="110px"))
        self.next_button = W.Button(description="next", icon="arrow-right",
                                    layout=W.Layout(width="110px"))
        self.caption = W.HTML()
        self.step_slider.observe(lambda _c: self._update(), names="value")
        self.prev_button.on_click(lambda _b: self._move(-1))
        self.next_button.on_click(lambda _b: self._move(+1))
        self.widget = W.VBox([W.HBox([self.prev_button, self.step_slider, self.next_button]),
                              self.caption, self.out])
        self._update()

    @property
    def step(self) -> int:
        return self.step_slider.value

    @step.setter
    def step(self, value: int) -> None:
        self.step_slider.value = value

    def _move(self, delta: int) -> None:
        self.step = min(max(self.step + delta, 1), len(self.steps))

    def _update(self) -> None:
        seen: dict[str, Any] = {}
        for _label, new, _text in self.steps[: self.step]:
            for lab, v in new:
                seen.setdefault(lab, v)
        self.versions: list[tuple[str, Any]] = list(seen.items())
        self.kept = kept_versions(version_dag(self.versions)) if self.versions else []
        label, _new, text = self.steps[self.step - 1]
        kept = ", ".join(self.kept) if self.kept else "nothing yet"
        self.caption.value = (f"<b>Step {self.step}/{len(self.steps)}: {html.escape(label)}</b>"
                              + (f" — {html.escape(text)}" if text else "")
                              + f"<br>reconcile keeps: <b>{html.escape(kept)}</b>")
        self.prev_button.disabled = self.step <= 1
        self.next_button.disabled = self.step >= len(self.steps)
        if self.versions:
            self.render()
        else:
            self.figure, self.png = None, b""
            self.out.outputs = ()

    def _draw(self) -> Figure:
        return draw_version_dag(self.versions)


# --------------------------------------------------------------------------------------------
# Lab 3: space-time diagrams
# --------------------------------------------------------------------------------------------


class SpaceTimeWidget(_FigureWidget):
    """A space-time diagram of a trace with a time-window slider.

    ``cluster_or_events``: a SimCluster or a TcpCluster made with ``trace=True`` (its trace is
    read once, at construction), a Trace, or a list of trace events. ``key``: show only messages about that key (editable in
    ``key_box``; empty shows everything).

    Controls: ``window_slider`` (a FloatRangeSlider over the send times of the messages),
    ``key_box``. The default window holds the first 40 messages. State: ``window``
    (``(start, end)``, settable), ``key``, ``events``, ``messages`` (every matched message
    about the key, see :func:`~dynamo_lab.viz.match_messages`), ``shown`` (how many are sent
    inside the window). Raises :class:`ConfigError` if the events are not trace events.
    """

    DEFAULT_MESSAGES = 40

    def __init__(self, cluster_or_events: Any, key: Optional[str] = None):
        super().__init__()
        self.events = events_of(cluster_or_events)
        self._all_messages = match_messages(self.events)
        self.key_box = W.Text(value=key or "", description="key", continuous_update=False,
                              placeholder="empty: every message")
        self.window_slider = W.FloatRangeSlider(value=(0.0, 1.0), min=0.0, max=1.0, step=0.001,
                                                description="window (s)", readout_format=".3f",
                                                continuous_update=False,
                                                layout=W.Layout(width="95%"))
        self.info = W.HTML()
        self.key_box.observe(lambda _c: self._reset_window(), names="value")
        self.window_slider.observe(lambda _c: self._update(), names="value")
        self.widget = W.VBox([self.key_box, self.window_slider, self.info, self.out])
        self._reset_window()

    @property
    def key(self) -> Optional[str]:
        return self.key_box.value.strip() or None

    @property
    def window(self) -> tuple[float, float]:
        return tuple(self.window_slider.value)

    @window.setter
    def window(self, value: tuple[float, float]) -> None:
        self.window_slider.value = tuple(value)

    def _reset_window(self) -> None:
        key = self.key
        self.messages = [m for m in self._all_messages
                         if key is None or key in message_keys(m.send.msg)]
        times = [m.send.time for m in self.messages] or [e.time for e in self.events] or [0.0]
        lo, hi = min(times), max(times)
        if hi <= lo:
            hi = lo + 0.001
        end = times[min(len(times), self.DEFAULT_MESSAGES) - 1] if self.messages else hi
        step = max((hi - lo) / 2000, 1e-6)
        with self.window_slider.hold_trait_notifications():
            # Widen first so that the new value is never clipped by the old bounds.
            self.window_slider.min = min(self.window_slider.min, lo)
            self.window_slider.max = max(self.window_slider.max, hi)
            self.window_slider.step = step
            self.window_slider.value = (lo, max(end, lo + step))
            self.window_slider.min, self.window_slider.max = lo, hi
        self._update()

    def _update(self) -> None:
        start, end = self.window
        self.shown = sum(1 for m in self.messages if start <= m.send.time <= end)
        about = f" about {html.escape(repr(self.key))}" if self.key else ""
        self.info.value = (f"{self.shown} of {len(self.messages)} messages{about} are sent "
                           f"between T={start:.3f} s and T={end:.3f} s")
        self.render()

    def _draw(self) -> Figure:
        start, end = self.window
        # Only the events near the window (plus every crash/restart/partition, which decide
        # how lifelines look), so a long trace draws as fast as a short one.
        near = [e for e in self.events
                if start <= e.time <= end + 30.0 or e.kind in CONTEXT_KINDS]
        return draw_spacetime(near, key=self.key, start=start, end=end)


# --------------------------------------------------------------------------------------------
# Lab 4: Merkle trees
# --------------------------------------------------------------------------------------------


class MerkleDiffWidget(_FigureWidget):
    """Two replicas' Merkle trees compared, with a slider for how many levels to draw.

    Controls: ``depth_slider`` (levels below the root to draw, up to the trees' depth and at
    most 8). State: ``max_depth``, ``diff`` (the :class:`~dynamo_lab.MerkleDiff`). Raises
    :class:`ConfigError` if the trees are not MerkleTrees of the same shape.
    """

    def __init__(self, tree_a: MerkleTree, tree_b: MerkleTree):
        super().__init__()
        if not isinstance(tree_a, MerkleTree) or not isinstance(tree_b, MerkleTree):
            raise ConfigError("MerkleDiffWidget takes two MerkleTrees (dl.MerkleTree.build(...))")
        self.tree_a, self.tree_b = tree_a, tree_b
        self.diff = merkle_diff(tree_a, tree_b)
        top = min(tree_a.depth, 8)
        self.depth_slider = W.IntSlider(value=min(5, top), min=0, max=top,
                                        description="levels", continuous_update=False)
        self.info = W.HTML(
            f"{len(self.diff.keys)} keys differ; found with {self.diff.hashes_exchanged} hashes in "
            f"{self.diff.rounds} rounds, then {self.diff.entries_exchanged} key digests from "
            f"{self.diff.leaves_compared} leaves (trees of depth {tree_a.depth})")
        self.depth_slider.observe(lambda _c: self.render(), names="value")
        self.widget = W.VBox([self.depth_slider, self.info, self.out])
        self.render()

    @property
    def max_depth(self) -> int:
        return self.depth_slider.value

    def _draw(self) -> Figure:
        return draw_merkle_diff(self.tree_a, self.tree_b, max_depth=self.max_depth)
