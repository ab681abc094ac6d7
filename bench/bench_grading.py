"""Courseware figures: how long the solution notebooks take headless, and how long autograding
takes for one submission and for a class.

``python -m bench grading``. The class size defaults to 0 (skipped, to keep the bench short);
``DYNAMO_LAB_BENCH_SUBMISSIONS=50 python -m bench grading`` grades 50 submissions (whole
solution notebooks, the two labs alternating) with ``DYNAMO_LAB_BENCH_WORKERS`` workers
(default: CPUs, at most 4). Everything runs in a temporary folder with its own HOME.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _isolated_env(home: Path) -> dict:
    import matplotlib
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / ".ipython"),
        "MPLCONFIGDIR": matplotlib.get_configdir(), "JUPYTER_PLATFORM_DIRS": "1",
        "HYPOTHESIS_STORAGE_DIRECTORY": str(home / "hypothesis"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    os.environ.update(env)
    return env


def _headless(nb_path: Path, workdir: Path) -> tuple[float, int]:
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(nb_path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    errors = sum(o["output_type"] == "error" for c in nb.cells for o in c.get("outputs", []))
    return time.perf_counter() - t0, errors


def _autograde(tmp: Path, students: int, workers: int) -> tuple[float, list]:
    from grader.config import lab_ids, lab_notebooks
    from grader.course import Course
    subs = tmp / f"subs-{students}"
    labs = lab_ids()
    for i in range(students):
        lab = labs[i % len(labs)]
        name = lab_notebooks(lab)[0]
        dest = subs / f"student{i:03d}" / lab
        dest.mkdir(parents=True)
        shutil.copy(ROOT / "solutions" / lab / f"{name}.ipynb", dest)
    course = Course(tmp / f"course-{students}")
    course.prepare(labs)                      # the gradebook, once per course (not per run)
    t0 = time.perf_counter()
    summary = course.autograde(subs, workers=workers, timeout_s=600, progress=False)
    return time.perf_counter() - t0, summary.rows


def main() -> None:
    students = int(os.environ.get("DYNAMO_LAB_BENCH_SUBMISSIONS", "0"))
    workers = int(os.environ.get("DYNAMO_LAB_BENCH_WORKERS", str(max(1, min(4, os.cpu_count() or 1)))))
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="dynamo-lab-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            _isolated_env(tmp / "home")
            for nb_path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
                seconds, errors = _headless(nb_path, tmp)
                print(f"headless run of {nb_path.parent.name}/{nb_path.name}: {seconds:5.1f} s"
                      f"{'' if not errors else f'  ({errors} errors!)'}")
            seconds, rows = _autograde(tmp, 1, 1)
            print(f"autograde 1 submission ({rows[0]['lab']}), 1 worker: {seconds:5.1f} s end to end "
                  f"(notebook {rows[0]['seconds']:.1f} s, score {rows[0]['score']:g}/{rows[0]['max']:g})"
                  f" | issue 12's target: <= 8 s")
            if students:
                seconds, rows = _autograde(tmp, students, workers)
                ok = sum(r["status"] == "ok" and r["score"] == r["max"] for r in rows)
                per = sorted(r["seconds"] for r in rows)
                print(f"autograde {students} submissions, {workers} workers, {os.cpu_count()} CPUs: "
                      f"{seconds:5.1f} s end to end, {seconds / students:.1f} s per submission; "
                      f"per notebook median {per[len(per) // 2]:.1f} s, max {per[-1]:.1f} s; "
                      f"{ok}/{students} full marks")
            else:
                print("(set DYNAMO_LAB_BENCH_SUBMISSIONS=50 to time a class of 50)")
        finally:
            os.environ.clear()
            os.environ.update(saved)


if __name__ == "__main__":
    main()
