"""What Lab 7's functions take and return: a log entry and a commit notice, as plain records.

A write log is a list of :class:`Write` in log order; a session's reply is a list of
:class:`Write` and :class:`Commit`. Both are named tuples in the slides' order, ``CSN:TS:server``,
so ``Write(None, 7, "A", "w(X,3)")`` is the slides' ``∞:7:A w(X,3)``. The lab's setup cell
imports them; the grading sandbox runs this file's text as the lab's prelude (standard library
only), so the student's code finds them in both places.
"""

from typing import NamedTuple, Optional


class Write(NamedTuple):
    """One entry of a write log. ``csn``: its commit sequence number, None while tentative
    (``∞`` on the slides); ``stamp``: its accept-stamp; ``server``: the server that accepted it;
    ``op``: the write as the slides print it, e.g. ``"w(X,4)"`` or ``"D(Y)"``.
    ``(stamp, server)`` names a write everywhere."""
    csn: Optional[int]
    stamp: int
    server: str
    op: str = ""

    def label(self):
        """The slides' notation, e.g. ``∞:7:A w(X,3)``."""
        return f"{'∞' if self.csn is None else self.csn}:{self.stamp}:{self.server} {self.op}"


class Commit(NamedTuple):
    """A commit notice: the write ``(stamp, server)``, which the receiver already holds, has
    CSN ``csn``. A sender sends it instead of the whole write."""
    csn: int
    stamp: int
    server: str


if "__wire__" in globals():              # in the grading sandbox: records cross as themselves
    __wire__.update(Write=Write, Commit=Commit)  # noqa: F821 (defined by the sandbox)
