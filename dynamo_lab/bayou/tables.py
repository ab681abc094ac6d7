"""A server's write log in the slides' notation (the Dynamo / Bayou lecture):

::

    P               Versions
    ∞:1:P   w(X,4)  P: 7
    ∞:7:P   w(Y,8)  A: 0
                    B: 0

One row per write, ``CSN:TS:server`` (``∞`` while tentative; committed rows are bold on the
slides) and the write; beside them, the version vector. :func:`table` reads it off a server,
:func:`render` writes it as text (tab-separated, as the slides' text is), :func:`parse` reads
that text back, slide markup included, so a test can compare a run with the slides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

INFINITY = "∞"


@dataclass(frozen=True)
class Table:
    """One server's log as the slides show it. ``rows``: (``CSN:TS:server``, write, committed)
    in log order; ``versions``: (server, highest stamp held) in the servers' order; ``osn``:
    how many committed writes were truncated before the first row (0 on the slides)."""
    server: str
    rows: tuple[tuple[str, str, bool], ...]
    versions: tuple[tuple[str, int], ...]
    osn: int = 0

    def labels(self) -> list[str]:
        """The rows as ``CSN:TS:server write``, e.g. ``1:1:P w(X,4)``."""
        return [f"{label} {write}" for label, write, _ in self.rows]


def table(server: Any) -> Table:
    """The table of a :class:`~dynamo_lab.bayou.server.Server` (or anything with ``id``,
    ``log``, ``vector``, ``servers`` and ``store.osn``)."""
    rows = tuple((w.label(), w.op.label(), w.csn is not None) for w in server.log)
    versions = tuple((s, server.vector.get(s, 0)) for s in server.servers)
    return Table(server.id, rows, versions, server.store.osn)


def render(t: Table, *, bold: bool = False) -> str:
    """The slides' text layout; ``bold`` marks committed rows ``<b>...</b>`` as the slides do."""
    lines = [f"{t.server}\t\tVersions"]
    if t.osn:
        lines.append(f"(CSN 1..{t.osn} truncated)")
    rows = list(t.rows)
    for i in range(max(len(rows), len(t.versions))):
        label, write, committed = rows[i] if i < len(rows) else ("", "", False)
        if bold and committed:
            label, write = f"<b>{label}</b>", f"<b>{write}</b>"
        version = f"{t.versions[i][0]}: {t.versions[i][1]}" if i < len(t.versions) else ""
        lines.append(f"{label}\t{write}\t{version}".rstrip("\t"))
    return "\n".join(lines)


_ROW = re.compile(r"^(?P<csn>∞|\d+):(?P<ts>\d+):(?P<srv>\w+)$")


def parse(text: str) -> Table:
    """Read one table in the slides' text form (what :func:`render` writes, or the lecture
    notes' own text: ``$\\infty$``, ``<b>`` for committed rows, ``W(...)`` or ``w(...)``)."""
    text = text.replace("$\\infty$", INFINITY).replace("\\infty", INFINITY)
    lines = [ln for ln in text.strip("\n").splitlines() if ln.strip()]
    head = lines[0].split()
    if len(head) != 2 or head[1] != "Versions":
        raise ValueError(f"a table starts with 'SERVER  Versions', not {lines[0]!r}")
    rows, versions, osn = [], [], 0
    for ln in lines[1:]:
        m = re.match(r"^\(CSN 1\.\.(\d+) truncated\)$", ln.strip())
        if m:
            osn = int(m.group(1))
            continue
        cells = [c.strip() for c in ln.split("\t")]
        cells += [""] * (3 - len(cells))
        label, write, version = cells[0], cells[1], cells[2]
        label = re.sub(r"</?b>", "", label).replace(" ", "")
        write = re.sub(r"</?b>", "", write).replace(" ", "")
        if label:
            if not _ROW.match(label):
                raise ValueError(f"{label!r} is not CSN:TS:server")
            if write[:2] == "W(":
                write = "w" + write[1:]      # the slides write w(...) and W(...) alike
            rows.append((label, write, not label.startswith(INFINITY)))
        if version:
            name, _, count = version.partition(":")
            versions.append((name.strip(), int(count)))
    return Table(head[0], tuple(rows), tuple(versions), osn)
