"""nbgrader preprocessors of this course."""

from __future__ import annotations

import re

from . import _bootstrap  # noqa: F401

from nbgrader.preprocessors import NbGraderPreprocessor

from .config import BEGIN_HIDDEN, END_HIDDEN

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def hidden_lines(source: str) -> list[str]:
    """The non-blank lines of a cell's hidden-test regions, markers included, stripped."""
    out, inside = [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN in line:
            inside = True
        if inside and line.strip():
            out.append(line.strip())
        if END_HIDDEN in line:
            inside = False
    return out


class ScrubHiddenTracebacks(NbGraderPreprocessor):
    """Remove hidden test source from the error outputs of test cells.

    IPython tracebacks quote the cell lines around the failure, which may be hidden test lines;
    ``ClearHiddenTests`` only clears the cell's source, not its outputs. Every traceback entry
    that quotes a hidden line is dropped; what is left (frames of visible code, the student's
    own code, and the final ``ename: evalue`` line) stays. The grading helpers put everything a
    student needs (the broken promise, the smallest failing input, expected and got, the seed)
    in the exception's message, so nothing useful is lost. Runs before ``ClearHiddenTests`` in
    ``GenerateFeedback``.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or BEGIN_HIDDEN not in cell.source:
            return cell, resources
        secret = [line for line in hidden_lines(cell.source) if len(line) >= 4]
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            kept = [entry for entry in out.get("traceback", [])
                    if not any(line in _ANSI.sub("", entry) for line in secret)]
            last = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"
            if not kept or out.get("ename", "") not in _ANSI.sub("", kept[-1]):
                kept.append(last)
            out["traceback"] = kept
        return cell, resources
