"""A notebook that never ends must not stall grading.

Here the student's increment never returns and ignores every signal. The grader's hard
wall-clock limit per notebook (here 20 s) kills the worker, its sandboxes and everything below
them, reports the submission, and a fresh worker grades the next one.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "grader_fixtures", ROOT / "tests" / "fixtures" / "submissions" / "grader_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

pytestmark = pytest.mark.slow


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_a_hanging_notebook_is_killed_reported_and_grading_goes_on(tmp_path):
    from grader.course import Course
    subs = tmp_path / "submissions"
    fx.write(fx.never_answers(), subs / "hangs" / fx.LAB2 / "vector_clocks.ipynb")
    fx.write(fx.answered(fx.LAB2), subs / "zz-after" / fx.LAB2 / "vector_clocks.ipynb")
    runtime = tmp_path / "home" / "runtime"
    with fx.isolated_jupyter_env(tmp_path / "home"):
        course = Course(tmp_path / "course", cell_timeout_s=60)
        t0 = time.monotonic()
        summary = course.autograde(subs, labs=[fx.LAB2], workers=1, timeout_s=20, progress=False)
        elapsed = time.monotonic() - t0
        pages = course.feedback([fx.LAB2]).pages
    rows = {r["student"]: r for r in summary.rows}
    assert rows["hangs"]["status"] == "timeout"
    assert rows["hangs"]["score"] == 0 and "timeout" in rows["hangs"]["flags"]
    assert rows["zz-after"]["status"] == "ok" and rows["zz-after"]["score"] == fx.POINTS[fx.LAB2]
    assert elapsed < 150
    # Nothing of the killed run survives: no kernel, no sandbox.
    time.sleep(0.5)
    assert _processes_mentioning(str(runtime)) == []
    assert _processes_mentioning(f"course={tmp_path / 'course'}") == []
    page = [p for p in pages if "hangs" in p.parts][0].read_text()
    assert "not graded" in page and "time limit" in page
