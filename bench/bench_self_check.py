"""How long a student's full self-check takes (``grading.self_check``: every check of a lab at
the strength of the hidden tests), per lab, on the reference solutions: the issue asks for
under 60 s per lab.

``python -m bench self_check``. Each lab's setup and answer cells (the solutions) run in a
fresh namespace, as in a student's kernel, then ``self_check`` on it; the table it prints is
kept quiet, its total and time are printed.
"""

from __future__ import annotations

import io
import time


def solved_namespace(lab) -> dict:
    """A notebook's globals after its setup cells and its answer cells (with the solutions)."""
    from grader.build_notebooks import parse_cells
    ns: dict = {"__name__": "__main__"}
    for cell in parse_cells(lab.cells_file.read_text(encoding="utf-8"), str(lab.cells_file)):
        if cell["kind"] in ("setup", "answer"):
            code = "\n".join(ln for ln in cell["source"].splitlines()
                             if not ln.lstrip().startswith("%")
                             and ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
            exec(compile(code, f"<{lab.id}:{cell['attrs']['id']}>", "exec"), ns)
    return ns


def main() -> None:
    from dynamo_lab.grading import self_check
    from dynamo_lab.labs import labs
    for lab in labs():
        ns = solved_namespace(lab)
        t0 = time.perf_counter()
        report = self_check(lab.id, namespace=ns, out=io.StringIO())
        seconds = time.perf_counter() - t0
        print(f"   {lab.id:28} self_check {report.score}/{report.points} in {seconds:5.1f} s "
              f"(limit 60 s)", flush=True)
