"""Lab 7's runs: the lecture's example frame by frame, and the two ways to break Bayou.

* :func:`lecture_frames`: every server's table and database after each step of the lecture's
  example (:mod:`dynamo_lab.bayou.lecture`), what :class:`~.widgets.BayouLogWidget` steps
  through;
* :func:`out_of_order_receiver`: a sender that sends newest first, so its receiver takes a
  server's writes out of stamp order: the version vector then claims a write the log lacks,
  and no later session ever delivers it;
* :func:`commit_against_causality`: a primary that commits by server name instead of log
  order: a write is committed before a write it depends on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...bayou import BayouCluster, Parts, Put, Delete, Table
from ...bayou import lecture
from ...faults import FaultConfig


@dataclass(frozen=True)
class Frame:
    """One moment of a run: its title, each server's table (the slides' notation), what each
    server's users see (its database) and the committed part of it."""
    title: str
    tables: dict[str, Table]
    databases: dict[str, dict]
    committed: dict[str, dict]


def frame(title: str, cluster: BayouCluster) -> Frame:
    up = cluster.up()
    return Frame(title, {n: cluster.table(n) for n in up},
                 {n: dict(sorted(cluster.server(n).db.items())) for n in up},
                 {n: dict(sorted(cluster.server(n).committed_database().items())) for n in up})


def lecture_frames(parts: Optional[Parts] = None) -> list[Frame]:
    """The lecture's example with ``parts`` (None: the reference): one frame per slide."""
    c = lecture.cluster(parts=parts)
    return [frame(step.title, c) for step, _ in lecture.steps(c)]


@dataclass
class Broken:
    """What a broken run shows: its frames, and the promises the checker found broken."""
    frames: list[Frame]
    violations: list[str]
    cluster: BayouCluster


def _three(parts: Parts) -> BayouCluster:
    # The checker records every broken promise and the run goes on, so that what follows shows.
    return BayouCluster(("P", "A", "B"), primary="P", seed=0, parts=parts,
                        stop_on_violation=False,
                        faults=FaultConfig(latency="constant", latency_ms=1.0))


def _violations(c: BayouCluster) -> list[str]:
    c.converged()                       # records why not, when not
    return [str(v) for v in c.checker.violations]


def out_of_order_receiver(writes_to_send) -> Broken:
    """A writes at clock 7 and 12; B receives them from A through ``writes_to_send``; then
    more sessions, and P commits. With a sender that sends newest first, B takes A's 12 before
    A's 7: B's vector says it holds A's writes up to 12, so nobody ever sends it 7 again."""
    c = _three(Parts(writes_to_send=writes_to_send))
    frames = []
    for clock, op in ((7, Put("X", 3)), (12, Put("Y", 4))):
        c.run_until(clock + 0.2)
        c.write("A", op)
    frames.append(frame("A accepts w(X,3) at 7 and w(Y,4) at 12", c))
    c.receive("B", "A")
    frames.append(frame("B receives from A", c))
    for a, b in (("P", "A"), ("P", "B"), ("A", "B")):
        c.session(a, b)
    c.commit()
    for a, b in (("P", "A"), ("P", "B"), ("A", "B")):
        c.session(a, b)
    frames.append(frame("more sessions, a commit, more sessions", c))
    return Broken(frames, _violations(c), c)


def commit_against_causality(commit) -> Broken:
    """B accepts w(X,1) at 2; A receives it and then accepts D(X) at 3, after it (D(X)
    depends on w(X,1): it deletes what A saw). P commits through ``commit``. A primary that
    commits by server name puts A's D(X) first: the committed order runs the delete before
    the write it deleted, and X survives everywhere."""
    c = _three(Parts(commit=commit))
    c.run_until(2.2)
    c.write("B", Put("X", 1))
    c.receive("A", "B")
    c.run_until(3.2)
    c.write("A", Delete("X"))
    frames = [frame("B writes X=1; A sees it, then deletes X", c)]
    c.session("P", "A")
    c.session("P", "B")
    c.commit()
    for a, b in (("P", "A"), ("P", "B")):
        c.session(a, b)
    frames.append(frame("P gets both and commits", c))
    return Broken(frames, _violations(c), c)
