"""A student's full self-check before submitting: every check of a lab, at the strength of
the hidden tests, with the course's public seeds, and a score table with the lab's points.

In the notebook (its last cell)::

    report = grading.self_check("lab1")

Each lab's ``checks.SELF_CHECK`` says what the hidden part of each test cell runs (the check,
the notebook names it is given, its arguments); the points are the lab's (``lab.parts``). The
public seeds are the ones the test cells name, which the feedback's replay lines print too;
grading may draw other examples (a course seed), so a full score here is a strong sign, not a
promise. Only observable behaviour is checked, as when grading: the student's functions and
classes are called here, in their own kernel.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TextIO

from .failures import DEFAULT_BUDGET_S, TIMEOUT_MARK, GradingFailure

#: What a whole self-check may take when a part never returns: later checks get what is left
#: (at least MIN_BUDGET_S each), and a part that ran out is not called again.
TOTAL_S = 60.0
MIN_BUDGET_S = 5.0


@dataclass
class Row:
    """One test cell: its points, what the check said, how long it took."""
    test: str                   # the test cell id
    invariant: str
    points: int
    score: int
    result: str                 # "passed", "failed", "not run", "error"
    report: str = ""            # the check's whole report when it did not pass
    seconds: float = 0.0


@dataclass
class SelfCheckReport:
    """What :func:`self_check` found; ``str()`` is the table it printed."""
    lab: str
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> int:
        return sum(r.score for r in self.rows)

    @property
    def points(self) -> int:
        return sum(r.points for r in self.rows)

    def __repr__(self) -> str:
        return f"<self-check of {self.lab}: {self.score}/{self.points} in {self.seconds:.1f} s>"

    def __str__(self) -> str:
        return "\n".join(_table_lines(self))


def _find_lab(lab: Any, namespace: dict):
    from ..labs import lab as lab_by_id, labs
    if lab is not None:
        return lab_by_id(getattr(lab, "id", lab))
    # The lab whose parts this notebook defines: most of its names present.
    scored = []
    for one in labs():
        names = {n for _f, args, _kw in getattr(one.checks, "SELF_CHECK", {}).values() for n in args}
        scored.append((sum(1 for n in names if n in namespace) / max(1, len(names)), one))
    best = max(s for s, _ in scored)
    found = [one for s, one in scored if s == best]
    if best == 0 or len(found) > 1:
        raise ValueError("say which lab to check: grading.self_check('lab1') (the labs are "
                         + ", ".join(one.id for one in labs()) + ")")
    return found[0]


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 90 else line[:87] + "..."


def _table_lines(report: SelfCheckReport, rows: Optional[list[Row]] = None) -> list[str]:
    rows = report.rows if rows is None else rows
    width = max([len(r.invariant) for r in report.rows] + [len("test")])
    lines = [f"{'test':{width}}  points  result"]
    lines += [_row_line(r, width) for r in rows]
    return lines + [f"{'total':{width}}  {report.score:>2}/{report.points:<3}  "
                    f"({report.seconds:.1f} s)"]


def _row_line(row: Row, width: int) -> str:
    headline = row.report.strip()
    if headline.startswith(f"{row.invariant}: "):     # the table names the invariant already
        headline = headline[len(row.invariant) + 2:]
    what = row.result if row.result == "passed" else f"{row.result}: {_first_line(headline)}"
    return f"{row.invariant:{width}}  {row.score:>2}/{row.points:<3}  {what}  ({row.seconds:.1f} s)"


def self_check(lab: Any = None, *, namespace: Optional[dict] = None,
               out: Optional[TextIO] = None, budget_s: float = DEFAULT_BUDGET_S,
               total_s: float = TOTAL_S) -> SelfCheckReport:
    """Run every check of ``lab`` on the notebook's parts and print a score table.

    ``lab``: its id (``"lab1_consistent_hashing"``), short name (``"lab1"``) or ``None`` (the
    lab whose parts the notebook defines). ``namespace``: where the parts are (default: the
    caller's globals, the notebook's). ``out``: where to print (default stdout), a row as each
    check finishes, then the reports of the checks that did not pass. ``budget_s``: each
    check's time budget, as in grading; a part that never returns uses it once (its later
    checks are skipped), and past ``total_s`` the remaining checks get what is left.

    Returns a :class:`SelfCheckReport`. A part the notebook does not define yet scores 0 as
    "not run"; a check that finds a broken promise scores 0 with its report, as grading would.
    Raises ``ValueError`` when ``lab`` is not given and the notebook's parts do not say.
    """
    ns = namespace if namespace is not None else sys._getframe(1).f_globals
    spec = _find_lab(lab, ns)
    out = out if out is not None else sys.stdout
    table = getattr(spec.checks, "SELF_CHECK", {})
    report = SelfCheckReport(spec.id)
    rows = [Row(test, test.replace("_", "-"), points, 0, "not run")
            for test, points in spec.parts.items()]
    report.rows = rows
    width = max(len(r.invariant) for r in rows)
    print(f"Self-check of lab {spec.number} ({spec.title}): every check at the strength of the "
          f"hidden tests, with the public seeds the test cells name.", file=out)
    print(f"{'test':{width}}  points  result", file=out, flush=True)
    started = time.monotonic()
    stuck: dict[str, str] = {}          # a part that ran out of time -> the check it was in
    for row in rows:
        t0 = time.monotonic()
        left = max(min(budget_s, MIN_BUDGET_S), min(budget_s, total_s - (t0 - started)))
        _run(row, table.get(row.test), spec.checks, ns, left, stuck)
        row.seconds = time.monotonic() - t0
        print(_row_line(row, width), file=out, flush=True)
    report.seconds = time.monotonic() - started
    print(_table_lines(report)[-1], file=out)
    failed = [r for r in rows if r.result != "passed"]
    if failed:
        print("\nWhat did not pass (the full report of each check):", file=out)
        for r in failed:
            print(f"\n[{r.invariant}, {r.points} point{'s' if r.points != 1 else ''}]\n{r.report}",
                  file=out)
    else:
        print("\nEvery check passes with these seeds. Grading may draw other examples; a correct "
              "part passes them all.", file=out)
    out.flush()
    return report


def _run(row: Row, entry: Optional[tuple], checks: Any, ns: dict, budget_s: float,
         stuck: dict[str, str]) -> None:
    if entry is None:
        row.result, row.report = "error", f"no check is known for test {row.test}"
        return
    func, names, kwargs = entry
    hung = [n for n in names if n in stuck]
    if hung:
        row.report = (f"skipped: {hung[0]} did not finish in {stuck[hung[0]]} above; make it "
                      f"finish, then run the self-check again")
        return
    missing = [n for n in names if n not in ns]
    if missing:
        row.report = (f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not defined "
                      f"in this notebook yet: run the cell that defines "
                      f"{'it' if len(missing) == 1 else 'them'}")
        return
    check: Callable = getattr(checks, func)
    try:
        check(*[ns[n] for n in names], budget_s=budget_s, **kwargs)
    except GradingFailure as failure:
        row.result, row.report = "failed", str(failure)
        if TIMEOUT_MARK in row.report:
            stuck.update((n, row.invariant) for n in names if n not in stuck)
    except Exception as exc:   # the check could not even start on this part
        row.result = "error"
        row.report = f"the check stopped: {type(exc).__name__}: {exc}"
    else:
        row.result, row.score = "passed", row.points
