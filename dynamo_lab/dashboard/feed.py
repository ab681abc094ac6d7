"""What the dashboard shows, worked out from what a running cluster writes and answers.

Everything here is plain data in, plain data out (no sockets, no event loop), so each rule is
tested on its own (``tests/test_dashboard.py``):

* :class:`TraceTail` follows the nodes' trace files (``DATA_DIR/trace/*.jsonl``, one JSON line
  per send, delivery, drop, timer and note; the cluster's own events in ``_cluster.jsonl``) from
  where it last stopped, keeping a line cut in half for the next read;
* :class:`Strip` turns trace records into the space-time strip's items: a send, later its end
  (delivered or dropped, matched to the oldest unmatched equal send on that link, as
  :func:`dynamo_lab.sim.trace.merge_records` does) and the cluster's marks (crash, partition...);
* :func:`verdicts` says what the cluster believes of each node (up, suspected and by whom, down),
  from each node's ``/status`` and whether its process runs;
* :class:`Narrator` writes one line per notable event, from trace records and from changes in
  the verdicts, generations and hints.

A record is the dictionary :func:`dynamo_lab.sim.trace.record_line` writes:
``{"t", "kind", "node", "peer", "msg", "detail"}``, ``msg`` in the JSON codec's form (its
``"type"`` names the message class).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

#: What each message type is, on the strip: (category, short label). The page gives every
#: category a colour, a dash pattern and a legend entry.
CATEGORIES: dict[str, tuple[str, str]] = {
    "ClientGet": ("client", "get"), "ClientPut": ("client", "put"),
    "ClientDelete": ("client", "delete"), "ClientReply": ("client", "reply"),
    "Forward": ("forward", "forward"),
    "ReplicaPut": ("write", "put"), "ReplicaPutAck": ("write", "ack"),
    "ReplicaGet": ("read", "get"), "ReplicaGetReply": ("read", "reply"),
    "ReadRepair": ("repair", "repair"), "Reap": ("repair", "reap"),
    "HandoffPut": ("hint", "handoff"), "HandoffAck": ("hint", "handoff ack"),
    "Transfer": ("transfer", "transfer"), "TransferAck": ("transfer", "transfer ack"),
    "MerkleLevel": ("anti-entropy", "merkle"), "MerkleLeaves": ("anti-entropy", "leaves"),
    "SyncVersions": ("anti-entropy", "sync"),
    "Gossip": ("gossip", "gossip"),
}

#: Trace kinds that mark the whole cluster (drawn across the strip, narrated).
MARK_KINDS = ("crash", "restart", "partition", "heal", "join", "leave", "wipe", "drop-rate")


def message_keys(msg: Any) -> list[str]:
    """The keys an encoded message (the codec's JSON form) is about; empty for gossip and
    Merkle levels. The same rule as :func:`dynamo_lab.viz.messages.message_keys`, on JSON."""
    if not isinstance(msg, dict):
        return []
    keys: list[str] = []
    if isinstance(msg.get("key"), str):
        keys.append(msg["key"])
    req = msg.get("request")
    if isinstance(req, dict) and isinstance(req.get("key"), str):
        keys.append(req["key"])
    for name in ("items", "entries"):
        for item in msg.get(name) or ():
            if isinstance(item, list) and item and isinstance(item[0], str):
                keys.append(item[0])
    for name in ("wants", "keys"):
        keys.extend(x for x in msg.get(name) or () if isinstance(x, str))
    return keys


def describe(msg: Any) -> tuple[str, str]:
    """``(category, label)`` of an encoded message for the strip: ``("write", "put, hint for
    D")``. Unknown types are ``("other", type)``."""
    kind = msg.get("type", "?") if isinstance(msg, dict) else "?"
    category, label = CATEGORIES.get(kind, ("other", kind))
    if kind == "ReplicaPut" and msg.get("hint"):
        category, label = "hint", f"put, hint for {msg['hint']}"
    elif kind == "HandoffPut":
        label = f"handoff for {msg.get('intended', '?')}"
    elif kind == "ClientReply":
        label = "reply" if msg.get("ok") else f"reply: {msg.get('error_kind') or 'failed'}"
    return category, label


# -- following the trace files ------------------------------------------------------------------

class TraceTail:
    """New records of every ``*.jsonl`` file in ``folder``, each file read from where the last
    call stopped. ``start_back_bytes``: a file already there when first seen is read from that
    many bytes before its end (a dashboard opened on a cluster that has run for an hour does
    not parse the hour). A line cut in half (a node writing it now, or killed while writing) is
    kept until the rest arrives; a line that is not JSON is skipped."""

    def __init__(self, folder: Path | str, start_back_bytes: int = 256 * 1024):
        self.folder = Path(folder)
        self.start_back_bytes = start_back_bytes
        self._offset: dict[str, int] = {}
        self._partial: dict[str, bytes] = {}
        self.bytes_read = 0

    def read(self, limit_bytes: int = 4 * 1024 * 1024) -> list[dict]:
        """Records written since the last call, in time order (at most about ``limit_bytes``
        of new text per file per call; the rest comes next time)."""
        out: list[dict] = []
        try:
            paths = sorted(self.folder.glob("*.jsonl"))
        except OSError:
            return out
        for path in paths:
            name = path.name
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if name not in self._offset:
                self._offset[name] = max(0, size - self.start_back_bytes)
                self._partial[name] = b"" if self._offset[name] == 0 else b"\0"
            if size < self._offset[name]:           # truncated or replaced: start again
                self._offset[name], self._partial[name] = 0, b""
            if size == self._offset[name]:
                continue
            try:
                with open(path, "rb") as fh:
                    fh.seek(self._offset[name])
                    chunk = fh.read(min(size - self._offset[name], limit_bytes))
            except OSError:
                continue
            self._offset[name] += len(chunk)
            self.bytes_read += len(chunk)
            data = self._partial[name] + chunk
            lines = data.split(b"\n")
            self._partial[name] = lines.pop()
            if data.startswith(b"\0"):     # started mid-file: the first line is a fragment
                lines = lines[1:]
            for line in lines:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("t"), (int, float)):
                    out.append(rec)
        out.sort(key=lambda r: r["t"])
        return out


# -- the strip ----------------------------------------------------------------------------------

@dataclass
class Strip:
    """Trace records -> strip items, times in seconds since ``t0`` (the cluster's time 0).

    :meth:`feed` returns ``(sends, ends, marks)``: each send is ``{"i", "t", "s", "d", "c",
    "l", "keys"}`` (id, time, source, destination, category, label, keys); each end is
    ``{"i", "t", "x"}`` with ``x`` None for a delivery or the reason of a drop
    (``"partition"``, ``"lost"``); each mark is ``{"t", "kind", "node", "detail"}``. Sends
    never ended stay pending (at most ``max_pending`` per link: older ones are forgotten).
    """

    t0: float = 0.0
    max_pending: int = 2000
    _next: int = 0
    _pending: dict[tuple[str, str], list[tuple[str, int]]] = field(default_factory=dict)

    def feed(self, records: Iterable[dict]) -> tuple[list[dict], list[dict], list[dict]]:
        sends: list[dict] = []
        ends: list[dict] = []
        marks: list[dict] = []
        for r in records:
            kind = r.get("kind")
            t = round(float(r["t"]) - self.t0, 4)
            node, peer, msg = str(r.get("node", "")), str(r.get("peer", "")), r.get("msg")
            if kind == "send" and isinstance(msg, dict):
                self._next += 1
                category, label = describe(msg)
                sends.append({"i": self._next, "t": t, "s": node, "d": peer, "c": category,
                              "l": label, "keys": message_keys(msg)[:8]})
                queue = self._pending.setdefault((node, peer), [])
                queue.append((_fingerprint(msg), self._next))
                if len(queue) > self.max_pending:
                    del queue[: len(queue) - self.max_pending]
            elif kind in ("deliver", "drop") and isinstance(msg, dict):
                link = (peer, node) if kind == "deliver" else (node, peer)
                queue = self._pending.get(link, [])
                fp = _fingerprint(msg)
                hit = next((j for j, (f, _i) in enumerate(queue) if f == fp), None)
                if hit is not None:
                    _f, i = queue.pop(hit)
                    ends.append({"i": i, "t": t,
                                 "x": None if kind == "deliver" else (r.get("detail") or "lost")})
            elif kind in MARK_KINDS:
                marks.append({"t": t, "kind": kind, "node": node,
                              "detail": str(r.get("detail", ""))})
        return sends, ends, marks


def _fingerprint(msg: dict) -> str:
    return json.dumps(msg, sort_keys=True, separators=(",", ":"))


# -- what the cluster believes of each node -------------------------------------------------------

def verdicts(nodes: list[str], running: dict[str, bool],
             statuses: dict[str, Optional[dict]],
             previous: Optional[dict[str, dict]] = None) -> dict[str, dict]:
    """For each node: ``{"state", "by", "process"}``.

    ``state``: ``"up"`` (no answering node suspects it), ``"suspected"`` (some answering
    nodes do: ``by`` lists them) or ``"down"`` (its process is gone and every node that answers
    suspects it, or none answers). A node whose process is gone but that nobody suspects yet is
    still ``"up"`` in the cluster's eyes: that is the failure detector's delay, which the page
    shows as ``process: "killed"``. ``process``: ``"running"``, ``"killed"`` (no process) or
    ``"silent"`` (running but its ``/status`` did not answer).

    ``previous``: the verdicts of the last poll. A node that was up then and is down now is
    shown suspected (by all) for this one poll first: the failure detectors of all nodes can
    fire between two polls, and the page should still show the story in its order, suspected
    then down."""
    answering = [n for n in nodes if statuses.get(n) is not None]
    out: dict[str, dict] = {}
    for name in nodes:
        observers = [o for o in answering if o != name]
        by = sorted(o for o in observers
                    if (statuses[o].get("members", {}).get(name) or {}).get("suspected"))
        alive = running.get(name, False)
        process = "running" if alive and statuses.get(name) is not None else (
            "silent" if alive else "killed")
        if not alive and (not observers or len(by) == len(observers)):
            state = "down"
            if by and previous is not None and previous.get(name, {}).get("state") == "up":
                state = "suspected"
        elif by:
            state = "suspected"
        else:
            state = "up"
        out[name] = {"state": state, "by": by, "process": process}
    return out


def view_matrix(nodes: list[str], statuses: dict[str, Optional[dict]]) -> dict[str, dict]:
    """Each answering node's view of every node: ``{observer: {subject: mark}}`` with mark
    ``"up"``, ``"suspected"``, ``"leaving"``, ``"left"``, ``"unknown"`` (not in its view) or
    ``"cut"`` (suspected, and the observer's transport cuts the link to it)."""
    out: dict[str, dict] = {}
    for obs in nodes:
        st = statuses.get(obs)
        if st is None:
            continue
        blocked = {tuple(x) for x in (st.get("transport", {}).get("faults", {})
                                      .get("blocked") or ())}
        row = {}
        for subj in nodes:
            m = st.get("members", {}).get(subj)
            if subj == obs:
                row[subj] = "self"
            elif m is None:
                row[subj] = "unknown"
            elif m.get("status") in ("leaving", "left"):
                row[subj] = m["status"]
            elif m.get("suspected"):
                row[subj] = "cut" if (obs, subj) in blocked else "suspected"
            else:
                row[subj] = "up"
        out[obs] = row
    return out


def partition_groups(nodes: list[str], blocked: Iterable[Iterable[str]]) -> list[list[str]]:
    """The groups a set of cut links splits ``nodes`` into (nodes joined by a link open both
    ways are in one group); one group when nothing is cut."""
    cut = {tuple(x) for x in blocked}
    groups: list[list[str]] = []
    seen: set[str] = set()
    for n in nodes:
        if n in seen:
            continue
        group, todo = [], [n]
        seen.add(n)
        while todo:
            x = todo.pop()
            group.append(x)
            for y in nodes:
                if y not in seen and (x, y) not in cut and (y, x) not in cut:
                    seen.add(y)
                    todo.append(y)
        groups.append(sorted(group, key=nodes.index))
    return groups


# -- narration ----------------------------------------------------------------------------------

_READ_REPAIR = re.compile(r"^read repair of '(?P<key>.*)' on (?P<node>\S+)$")
_AE_REPAIRED = re.compile(r"^anti-entropy with (?P<peer>\S+) repaired '(?P<key>.*)'$")
_NO_ANSWER = re.compile(r"^(?P<kind>\w+) '(?P<key>.*)': no answer from (?P<rest>.*)$")
_RING = re.compile(r"^ring changed: \[(?P<nodes>.*)\]$")


@dataclass
class Narrator:
    """One line per notable event (``{"t", "text", "kind"}``), in the words a lecturer would
    use. Feed it trace records (:meth:`records`) and each new picture of the cluster
    (:meth:`picture`); it remembers what it said so that a state is announced once, not at
    every poll, and folds a line repeated within ``fold_s`` into one (``"... (x3)"``)."""

    t0: float = 0.0
    fold_s: float = 3.0
    lines: list[dict] = field(default_factory=list)
    _said: dict[str, tuple[float, int, dict]] = field(default_factory=dict)
    _verdicts: dict[str, dict] = field(default_factory=dict)
    _gens: dict[str, int] = field(default_factory=dict)
    _hints: dict[str, dict] = field(default_factory=dict)
    _ring: Optional[list[str]] = None

    def say(self, t: float, text: str, kind: str = "info") -> Optional[dict]:
        """Add a line (folded into the previous one when the same text came within
        ``fold_s``); returns the line added or updated."""
        last = self._said.get(text)
        if last is not None and t - last[0] <= self.fold_s:
            count = last[1] + 1
            line = last[2]
            line["text"] = f"{text} (x{count})"
            line["t"] = round(t, 3)
            self._said[text] = (t, count, line)
            return dict(line, update=True)
        line = {"t": round(t, 3), "text": text, "kind": kind, "n": len(self.lines) + 1}
        self.lines.append(line)
        del self.lines[:-500]
        self._said[text] = (t, 1, line)
        return line

    # -- from the trace -----------------------------------------------------------------------

    def records(self, records: Iterable[dict]) -> list[dict]:
        out = []
        for r in records:
            text, kind = self._record_text(r)
            if text:
                line = self.say(float(r["t"]) - self.t0, text, kind)
                if line is not None:
                    out.append(line)
        return out

    def _record_text(self, r: dict) -> tuple[str, str]:
        kind, node, peer = r.get("kind"), r.get("node", ""), r.get("peer", "")
        msg = r.get("msg") if isinstance(r.get("msg"), dict) else {}
        detail = str(r.get("detail") or "")
        mtype = msg.get("type")
        if kind == "crash":
            return (f"{node} killed with SIGKILL: its process is gone, its store stays on "
                    f"disk. The others notice only when its heartbeats stop", "fault")
        if kind == "restart":
            return f"{node} restarted over its store ({detail})", "recover"
        if kind == "partition":
            return f"network split: {detail}", "fault"
        if kind == "heal":
            return "network healed: every link restored", "recover"
        if kind == "wipe":
            return f"{node}'s disk wiped: its store and hints are gone", "fault"
        if kind == "join":
            return f"{node} joins the ring ({detail})", "info"
        if kind == "leave":
            return f"{node} leaves the ring for good: it hands its keys on first", "info"
        if kind == "drop-rate":
            return detail, "fault"
        if kind == "send" and mtype == "ReplicaPut" and msg.get("hint"):
            return (f"{peer} stands in for {msg['hint']} and keeps a hint "
                    f"({msg.get('key')!s}): sloppy quorum", "hint")
        if kind == "deliver" and mtype == "HandoffAck":
            return (f"hint for {msg.get('intended')} delivered ({msg.get('key')!s}): "
                    f"{node} deletes its copy", "recover")
        if kind == "send" and mtype == "Transfer":
            keys = [i[0] for i in msg.get("items") or () if isinstance(i, list) and i]
            return (f"{node} hands {len(keys)} key{'s' if len(keys) != 1 else ''} to {peer} "
                    f"(the ring changed): {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}",
                    "info")
        if kind == "send" and mtype == "ClientReply" and msg.get("op") == "get" and \
                len(msg.get("values") or ()) > 1:
            return (f"get {msg.get('key')} by {node}: {len(msg['values'])} concurrent siblings: "
                    f"neither write is lost; the client must merge them", "siblings")
        if kind == "send" and mtype == "ClientReply" and msg.get("ok") and \
                str(peer).startswith("client:"):
            replies = ", ".join(msg.get("replies") or ())
            if msg.get("op") == "get":
                values = msg.get("values") or []
                shown = json.dumps(values[0]) if values else "no value"
                return (f"get {msg.get('key')} = {shown[:60]}: {msg.get('coordinator')} "
                        f"coordinated, replies from {replies}", "info")
            return (f"{msg.get('op')} {msg.get('key')}: {msg.get('coordinator')} coordinated, "
                    f"acknowledged by {replies}", "info")
        if kind == "send" and mtype == "ClientReply" and not msg.get("ok") and \
                msg.get("error_kind") == "quorum":
            return (f"{msg.get('op')} {msg.get('key')} failed at {node}: quorum not reached "
                    f"({msg.get('got')} of {msg.get('needed')})", "fault")
        if kind == "note":
            m = _READ_REPAIR.match(detail)
            if m:
                return (f"read repair of {m['key']} on {m['node']}: {node} sends it the "
                        f"newer version", "repair")
            m = _AE_REPAIRED.match(detail)
            if m:
                return (f"anti-entropy: {node}'s Merkle tree differed from {m['peer']}'s; "
                        f"{m['key']} repaired", "repair")
            m = _NO_ANSWER.match(detail)
            if m:
                return f"{node}: {m['kind']} {m['key']}: no answer from {m['rest']}", "fault"
            m = _RING.match(detail)
            if m:
                ring = sorted(x.strip(" '\"") for x in m["nodes"].split(",") if x.strip())
                if self._ring is not None and ring != self._ring:
                    added = sorted(set(ring) - set(self._ring))
                    gone = sorted(set(self._ring) - set(ring))
                    self._ring = ring
                    change = ", ".join([f"{x} joined" for x in added] +
                                       [f"{x} left" for x in gone])
                    return f"ring changed ({change}): keys move to their new owners", "info"
                self._ring = ring
        return "", ""

    # -- from each poll -----------------------------------------------------------------------

    def picture(self, t: float, verdicts: dict[str, dict], statuses: dict[str, Optional[dict]]
                ) -> list[dict]:
        """Lines for what changed since the last picture: suspicions, a node considered
        down or back, a new generation, hints kept and drained."""
        out: list[dict] = []

        def add(text: str, kind: str) -> None:
            line = self.say(t, text, kind)
            if line is not None:
                out.append(line)

        first = not self._verdicts
        suspicions: list[tuple[str, list[str]]] = []
        for name, v in verdicts.items():
            old = self._verdicts.get(name)
            if first or old is None:
                continue
            if v["state"] == "down" and old["state"] != "down":
                add(f"every running node now considers {name} down", "fault")
            elif v["state"] == "suspected" and set(v["by"]) - set(old["by"]):
                suspicions.append((name, sorted(set(v["by"]) - set(old["by"]))))
            elif v["state"] == "up" and old["state"] != "up":
                add(f"{name} is seen up again by every node", "recover")
        if len(suspicions) == 1:
            name, new = suspicions[0]
            add(f"{_join(new)} suspect{'s' if len(new) == 1 else ''} {name}: no heartbeat "
                f"from it for a while", "fault")
        elif suspicions:        # a split: one line, not one per pair
            add("no heartbeats: " + "; ".join(f"{name} suspected by {', '.join(new)}"
                                             for name, new in suspicions), "fault")
        self._verdicts = {k: dict(v) for k, v in verdicts.items()}
        for name, st in statuses.items():
            if st is None:
                continue
            gen = st.get("generation")
            if isinstance(gen, int):
                if name in self._gens and gen > self._gens[name]:
                    add(f"{name} runs at generation {gen}: its gossip now overrides what the "
                        f"others remember of it", "recover")
                self._gens[name] = gen
            hints = {k: v for k, v in (st.get("hints") or {}).items() if v}
            old_h = self._hints.get(name)
            if old_h is not None and not first:
                if not hints and old_h:
                    add(f"{name} holds no more hints: every write it kept for others reached "
                        f"them", "recover")
            self._hints[name] = hints
        return out


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def stat_mtime(path: Path | str) -> float:
    """``path``'s modification time, or 0.0 if it is not there."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
