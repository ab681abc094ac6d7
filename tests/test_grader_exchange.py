"""The JupyterHub round trip through nbgrader's exchange: release, fetch, submit, collect,
autograde, feedback, release feedback, fetch feedback. Students on a hub get their feedback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest

LAB2 = fx.LAB2
pytestmark = pytest.mark.slow


def student(cmd: str, who: str, cwd: Path, exchange: Path) -> None:
    """One nbgrader command as a student would type it in their hub terminal."""
    subprocess.run([sys.executable, "-m", "nbgrader", cmd, LAB2, "--course", "dynamo-lab",
                    f"--Exchange.root={exchange}", f"--CourseDirectory.student_id={who}"],
                   cwd=cwd, check=True, capture_output=True, timeout=300)


def test_a_student_on_a_hub_fetches_submits_and_gets_feedback(tmp_path):
    from grader.course import Course
    exchange, alice = tmp_path / "exchange", tmp_path / "alice"
    exchange.mkdir(mode=0o777)
    alice.mkdir()
    with fx.isolated_jupyter_env(tmp_path / "home"):
        course = Course(tmp_path / "course", exchange_dir=exchange)
        course.prepare([LAB2])
        api = course.api()
        assert api.release_assignment(LAB2)["success"]

        student("fetch_assignment", "alice", alice, exchange)
        fetched = alice / LAB2 / f"{fx.NOTEBOOK[LAB2]}.ipynb"
        fx.write(fx.answered(LAB2), fetched)                  # she does the lab
        student("submit", "alice", alice, exchange)

        assert api.collect(LAB2)["success"]
        submitted = course.dir / "submitted" / "alice" / LAB2
        assert (submitted / "submission_secret.txt").is_file()
        summary = course.autograde(course.dir / "submitted", labs=[LAB2], workers=1,
                                   progress=False)
        assert [(r["student"], r["score"]) for r in summary.rows] == [("alice", fx.POINTS[fx.LAB2])]
        assert (submitted / "submission_secret.txt").is_file(), "autograde lost the secret"
        run = course.feedback([LAB2])
        assert run.problems == []
        released = api.release_feedback(LAB2)
        assert released["success"], released

        student("fetch_feedback", "alice", alice, exchange)
    pages = sorted((alice / LAB2 / "feedback").glob("*/*.html"))
    assert len(pages) == 1, "alice got no feedback page"
    assert "checked by the grader" in pages[0].read_text(encoding="utf-8")
