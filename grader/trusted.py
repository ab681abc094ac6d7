"""Autograding in which the grader drives and the student's code answers.

:class:`TrustedGrade` takes the place of nbgrader's ``Execute`` in ``autograde``: the submitted
notebook is never run in a kernel. Its answer cells (the cells a student writes) run in a
:class:`~grader.sandbox.Sandbox`, a fresh one for each graded test cell; the test cell's
``grading.check_*`` calls (the instructor's source, restored by nbgrader from the gradebook)
run here, in the grader's own process, with proxies for the student's names. A check that
passes leaves the test cell without error; one that fails leaves its report as the cell's error
output, which is what nbgrader's ``SaveAutoGrades`` scores (and what the feedback page shows).
So nothing the notebook's code does to itself, to IPython or to a kernel can change a grade,
and a blank notebook scores 0.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path
from typing import Any, Optional

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Float, Integer, Unicode

from .preludes import prelude
from .sandbox import Limits, Sandbox, SandboxError, SandboxTimeout, default_hide
from .seeds import check_seed

PASSED = "passed: checked by the grader against the reference"
#: Text of every report that names an answer cell left out because it never finished.
CELL_TIMEOUT_MARK = "was stopped and left out"


class TrustedCheck:
    """One ``grading.check_x(name, ..., seed=..)`` call of a test cell."""

    def __init__(self, func: str, names: list[str], kwargs: dict[str, Any]):
        self.func, self.names, self.kwargs = func, names, kwargs

    def __repr__(self) -> str:
        args = self.names + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"grading.{self.func}({', '.join(args)})"


def trusted_checks(source: str) -> list[TrustedCheck]:
    """The ``grading.check_*`` calls in a test cell's source, in order. Their positional
    arguments must be plain names (the student's parts) and their keywords literals; anything
    else is the instructor's mistake and raises ``ValueError``."""
    from dynamo_lab import grading
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
    tree = ast.parse("\n".join(lines))
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "grading"
                and node.func.attr.startswith("check_")):
            continue
        func = node.func.attr
        if func not in grading.__all__:
            raise ValueError(f"grading.{func} is not a check")
        if not all(isinstance(a, ast.Name) for a in node.args):
            raise ValueError(f"grading.{func}: pass the student's parts by name")
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        out.append(((node.lineno, node.col_offset),
                    TrustedCheck(func, [a.id for a in node.args], kwargs)))
    return [check for _, check in sorted(out, key=lambda item: item[0])]


def answer_cells(nb) -> list[dict]:
    """The cells a student writes (nbgrader solution cells with code), as sandbox cells."""
    out = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            out.append({"id": meta.get("grade_id") or f"cell{len(out)}", "source": cell.source})
    return out


def grade_test_cell(lab: str, checks: list[TrustedCheck], cells: list[dict], *,
                    hide: list[str], limits: Limits, timeout_s: float,
                    skipped: list[dict] = (), tried: Optional[dict] = None,
                    label: str = "", course_seed: Optional[int] = None) -> tuple[bool, str]:
    """Run one test cell's checks against the student's cells in a fresh sandbox. Returns
    ``(passed, report)``. ``skipped``: errors of cells left out (they ran past their limit);
    ``tried`` (a dict) gathers what the student's code tried (see :meth:`Sandbox.tried`);
    ``course_seed``: the checks' seeds are derived from it (:mod:`grader.seeds`)."""
    from dynamo_lab import grading
    if not checks:
        return False, ("this test cell has no grading.check_* call, so the grader cannot "
                       "score it (an instructor's error: add one)")
    with Sandbox(prelude(lab), cells, hide=hide, limits=limits, call_timeout_s=timeout_s,
                 label=label) as sb:
        sb.errors = list(skipped) + sb.errors
        try:
            for check in checks:
                missing = [n for n in check.names if n not in sb.names]
                if missing:
                    return False, _missing(missing, sb)
                kwargs = dict(check.kwargs)
                if course_seed is not None:
                    kwargs["seed"] = check_seed(course_seed, check.func, kwargs.get("seed"))
                try:
                    getattr(grading, check.func)(*[sb.proxy(n) for n in check.names], **kwargs)
                except grading.GradingFailure as failure:
                    return False, str(failure) + _cell_errors(sb)
        finally:
            if tried is not None:
                for kind, examples in sb.tried().items():
                    seen = tried.setdefault(kind, [])
                    seen += [e for e in examples if e not in seen][:5 - len(seen)]
    return True, PASSED


def runnable_cells(lab: str, cells: list[dict], *, hide: list[str], limits: Limits,
                   label: str = "") -> tuple[list[dict], list[dict]]:
    """Run the student's cells once; leave out those that ran past their time limit (else
    every test cell's sandbox would wait for them again), even those that ignore the limit's
    signal and had to be killed. Returns ``(cells, their errors)``."""
    slow: list[dict] = []
    while True:
        try:
            with Sandbox(prelude(lab), cells, hide=hide, limits=limits, label=label) as sb:
                slow += [e for e in sb.errors if e["type"] == "CellTimeout"]
            break
        except SandboxTimeout as exc:
            if exc.cell is None:
                raise
            slow.append({"cell": exc.cell, "type": "CellTimeout", "where": "",
                         "message": "the cell never finished and ignored the time limit; "
                                    "it was stopped"})
            cells = [c for c in cells if c["id"] != exc.cell]
    gone = {e["cell"] for e in slow}
    return [c for c in cells if c["id"] not in gone], slow


def _missing(names: list[str], sb: Sandbox) -> str:
    listed = ", ".join(f"`{n}`" for n in names)
    return (f"{listed} {'is' if len(names) == 1 else 'are'} not defined by your answer cells: "
            f"define {'it' if len(names) == 1 else 'them'} there (with the name the cell's "
            f"docstring gives)" + _cell_errors(sb))


def _cell_errors(sb: Sandbox) -> str:
    from dynamo_lab.grading import REFERENCE_USED_MARK
    lines = []
    for e in sb.errors:
        text = f"{e['cell']}: {e['type']}: {e['message']}{e.get('where', '')}"
        if e["type"] in ("ModuleNotFoundError", "ImportError") and "dynamo_lab" in e["message"]:
            text += (f" (your code {REFERENCE_USED_MARK}, which is not there when it is "
                     f"graded: the lab's parts must be your own code)")
        elif e["type"] == "CellTimeout":
            text += f" (it did not finish within its time limit, so it {CELL_TIMEOUT_MARK})"
        lines.append(text)
    return ("\n  your cells that raised when run: " + "; ".join(lines)) if lines else ""


def error_output(text: str) -> dict:
    from nbformat.v4 import new_output
    return new_output("error", ename="GradingFailure", evalue=text, traceback=[text])


class TrustedGrade(NbGraderPreprocessor):
    """nbgrader preprocessor: grade every test cell by the trusted checks (see the module)."""

    course_dir = Unicode("", help="the course folder (hidden from the student's code)").tag(config=True)
    cell_timeout_s = Float(120.0, help="wall-clock limit of one test cell's checks").tag(config=True)
    memory_mb = Float(1024, help="address space of one sandbox").tag(config=True)
    course_seed = Integer(-1, help="the course seed (grader.seeds); -1: the cells' own seeds").tag(config=True)

    def preprocess(self, nb, resources):
        lab = resources["nbgrader"]["assignment"]
        hide = default_hide(self.course_dir or None)
        limits = Limits(memory_mb=int(self.memory_mb))
        label = f"course={self.course_dir}" if self.course_dir else ""
        cells, skipped = runnable_cells(lab, answer_cells(nb), hide=hide, limits=limits,
                                        label=label)
        tried: dict[str, list[str]] = {}
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.execution_count = None
            cell.outputs = []
            if not cell.metadata.get("nbgrader", {}).get("grade"):
                continue
            t0 = time.monotonic()
            try:
                passed, text = grade_test_cell(lab, trusted_checks(cell.source), cells,
                                               hide=hide, limits=limits, skipped=skipped,
                                               timeout_s=self.cell_timeout_s, tried=tried,
                                               label=label,
                                               course_seed=None if self.course_seed < 0
                                               else self.course_seed)
            except SandboxError as exc:
                passed, text = False, f"your code could not be graded: {exc}"
            except Exception as exc:  # the grader's own bug: no points, and say so plainly
                passed, text = False, f"grading error ({type(exc).__name__}: {exc}); tell your instructor"
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "?")
            self.log.info("%s %s %s in %.1f s", lab, grade_id, "passed" if passed else "failed",
                          time.monotonic() - t0)
            if passed:
                from nbformat.v4 import new_output
                cell.outputs = [new_output("stream", name="stdout", text=PASSED + "\n")]
            else:
                cell.outputs = [error_output(text)]
        self._record_tried(resources, tried)
        return nb, resources

    def _record_tried(self, resources, tried: dict) -> None:
        """``logs/<lab>/<student>.tried.json`` in the course folder: what the grader flags."""
        if not self.course_dir:
            return
        nbg = resources["nbgrader"]
        path = Path(self.course_dir) / "logs" / nbg["assignment"] / f"{nbg['student']}.tried.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(tried, indent=1, sort_keys=True), encoding="utf-8")
