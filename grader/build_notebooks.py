"""Write the solution notebooks (``solutions/<lab>/<name>.ipynb``) from readable cell files.

The committed ``.ipynb`` files are what nbgrader uses; this script is how they are written, so
that a lab is edited as plain text (``dynamo_lab/labs/<lab>/<name>.cells``, in the lab's folder)
and reviewed as a diff.
A ``.cells`` file is a list of cells, each opened by a header line:

``%% markdown``
    text (no nbgrader metadata: students may annotate it);
``%% code``
    an ordinary code cell (demos, predictions);
``%% setup id=NAME``
    a locked code cell (read-only for students; restored if edited);
``%% answer id=NAME``
    the student's cell: ``### BEGIN SOLUTION`` / ``### END SOLUTION`` regions are replaced by a
    stub in the release;
``%% test id=NAME points=P``
    an autograded test cell (locked); ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``
    regions are removed from the release and put back when grading.

Usage: ``python -m grader.build_notebooks [--check]`` (``--check`` exits 1 if a committed
notebook differs from what the cell files give).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = ROOT / "solutions"

_HEADER = re.compile(r"^%% (markdown|code|setup|answer|test)((?: +[a-z]+=[^ ]+)*) *$")
_KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


class CellFileError(ValueError):
    """A ``.cells`` file that cannot be turned into a notebook."""


def parse_cells(text: str, where: str = "<cells>") -> list[dict[str, Any]]:
    """The cells of a ``.cells`` text: ``[{"kind", "attrs", "source"}]``. Raises
    :class:`CellFileError` for text before the first header, an unknown header, a missing
    ``id`` or ``points``, or a repeated id."""
    cells: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("%% "):
            m = _HEADER.match(line)
            if m is None:
                raise CellFileError(f"{where}:{lineno}: bad cell header {line!r}")
            attrs = dict(a.split("=", 1) for a in m.group(2).split())
            cells.append({"kind": m.group(1), "attrs": attrs, "lines": [], "line": lineno})
        elif cells:
            cells[-1]["lines"].append(line)
        elif line.strip():
            raise CellFileError(f"{where}:{lineno}: text before the first '%% ' cell header")
    seen: set[str] = set()
    for cell in cells:
        lines = cell.pop("lines")
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        cell["source"] = "\n".join(lines)
        kind, attrs = cell["kind"], cell["attrs"]
        if kind in ("setup", "answer", "test"):
            gid = attrs.get("id")
            if not gid or not re.fullmatch(r"[A-Za-z0-9_]+", gid):
                raise CellFileError(f"{where}:{cell['line']}: a {kind} cell needs id=NAME "
                                    f"(letters, digits, _)")
            if gid in seen:
                raise CellFileError(f"{where}:{cell['line']}: id {gid} is used twice")
            seen.add(gid)
        if kind == "test" and not attrs.get("points", "").isdigit():
            raise CellFileError(f"{where}:{cell['line']}: a test cell needs points=N")
    return cells


def to_notebook(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The nbformat 4.5 notebook (a plain dict) for parsed cells, with nbgrader metadata and
    deterministic cell ids."""
    out = []
    for index, cell in enumerate(cells):
        kind, attrs = cell["kind"], cell["attrs"]
        nb_cell: dict[str, Any] = {
            "cell_type": "markdown" if kind == "markdown" else "code",
            "id": attrs.get("id", f"{'md' if kind == 'markdown' else 'code'}-{index:02d}"),
            "metadata": {},
            "source": cell["source"],
        }
        if kind != "markdown":
            nb_cell["execution_count"] = None
            nb_cell["outputs"] = []
        if kind in ("setup", "answer", "test"):
            meta = {"grade": kind == "test", "grade_id": attrs["id"], "locked": kind != "answer",
                    "schema_version": 3, "solution": kind == "answer", "task": False}
            if kind == "test":
                meta["points"] = int(attrs["points"])
            nb_cell["metadata"]["nbgrader"] = meta
        out.append(nb_cell)
    return {
        "cells": out,
        "metadata": {"kernelspec": dict(_KERNEL),
                     "language_info": {"name": "python", "pygments_lexer": "ipython3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def dumps(nb: dict[str, Any]) -> str:
    """The notebook as nbformat writes it (sorted keys, indent 1, trailing newline)."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def sources() -> list[tuple[Path, Path]]:
    """``(cells file, solution notebook)`` for every lab of the registry, in course order."""
    from dynamo_lab.labs import labs
    return [(lab.cells_file, SOLUTIONS_DIR / lab.id / f"{lab.notebook}.ipynb") for lab in labs()]


def build(check: bool = False) -> list[Path]:
    """Write every solution notebook (or, with ``check``, only compare). Returns the notebooks
    that were out of date."""
    stale = []
    for cells_path, nb_path in sources():
        text = dumps(to_notebook(parse_cells(cells_path.read_text(encoding="utf-8"),
                                             str(cells_path.relative_to(ROOT)))))
        current = nb_path.read_text(encoding="utf-8") if nb_path.exists() else None
        if current != text:
            stale.append(nb_path)
            if not check:
                nb_path.parent.mkdir(parents=True, exist_ok=True)
                nb_path.write_text(text, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.build_notebooks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only report notebooks that differ from their cell files")
    args = parser.parse_args(argv)
    stale = build(check=args.check)
    for path in stale:
        print(("out of date: " if args.check else "wrote ") + str(path.relative_to(ROOT)))
    if not stale:
        print("solution notebooks are up to date")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
