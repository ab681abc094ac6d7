"""A class of hostile submissions, graded in one run: each gets the grade its own code earns,
whatever it does to itself, to the grader, to the files or to the machine, and nothing of it
survives the run.

The student's code runs in the grading sandbox (grader.sandbox): never in a kernel beside the
checks, without the reference, the checkout, the course folder or the network.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest

ROOT = Path(__file__).resolve().parents[1]
LAB2 = fx.LAB2
FULL = fx.POINTS[LAB2]
pytestmark = pytest.mark.slow

CHECKS = ["check_increment", "check_merge", "check_compare_ordered", "check_compare_concurrent",
          "check_reconcile_drops_dominated", "check_reconcile_keeps_siblings",
          "check_d1_d5_story", "check_clocks_in_cluster", "check_merge_carts"]


def blank_with(code: str) -> dict:
    """The unmodified release (it scores 0) with ``code`` as its first answer."""
    nb = fx.load("labs", LAB2)
    return fx.set_source(nb, "increment", code)


def correct_with(code: str) -> dict:
    """A correct submission (it scores full marks) with ``code`` after the merge_carts answer."""
    nb = fx.answered(LAB2)
    for cell in nb["cells"]:
        if fx._gid(cell) == "merge_carts":
            cell["source"] = fx._src(cell) + "\n\n" + code
    return nb


def hostile(course: Path) -> dict[str, tuple[dict, float]]:
    """student -> (notebook, the score it must get)."""
    return {
        "victim": (fx.answered(LAB2), FULL),
        "patches-kernel": (blank_with(f'''
import builtins, sys, types
try:
    ip = get_ipython()
    ip.showtraceback = lambda *a, **k: None
    ip.input_transformers_post.append(lambda lines: ["pass"])
except NameError:
    pass
fake = types.ModuleType("dynamo_lab.grading")
for name in {CHECKS!r}:
    setattr(fake, name, lambda *a, **k: None)
sys.modules["dynamo_lab.grading"] = sys.modules["dynamo_lab"] = fake
builtins.AssertionError = type("AssertionError", (Exception,), {{}})
'''), 0),
        "reference-from-source": (blank_with(f'''
import importlib.util
spec = importlib.util.spec_from_file_location("vc", "{ROOT}/dynamo_lab/vclock.py")
vc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vc)
exec(open("{ROOT}/dynamo_lab/grading/__init__.py").read())

def increment(clock, node):
    return vc.VectorClock(clock).increment(node).counters()
'''), 0),
        "reads-classmates": (blank_with(f'''
import glob, json
for path in glob.glob("{course}/**/victim/**/*.ipynb", recursive=True):
    for cell in json.load(open(path))["cells"]:
        if cell["metadata"].get("nbgrader", {{}}).get("solution"):
            exec("".join(cell["source"]))
'''), 0),
        "writes-gradebook": (blank_with(f'''
import os, shutil, sqlite3
try:
    db = sqlite3.connect("{course}/gradebook.db")
    db.execute("UPDATE grade SET manual_score = 99")
    db.commit()
except Exception:
    pass
for path in ("{ROOT}/pwned.txt", "{course}/pwned.txt"):
    try:
        open(path, "w").write("pwned")
    except OSError:
        pass
for path in ("{ROOT}/grader/trusted.py", "{course}/gradebook.db"):
    try:
        os.remove(path)
    except OSError:
        pass
'''), 0),
        "memory-bomb": (correct_with("_hog = bytearray(6 * 1024 ** 3)\n"), FULL),
        "output-bomb": (correct_with("print('x' * 100_000_000)\n"), FULL),
        "escapes": (correct_with('''
import os, subprocess
subprocess.Popen(["sleep", "3600"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "3601"])
    os._exit(0)
'''), FULL),
        "hangs-top-level": (fx.hangs_at_top_level(), 17),
        "poisons-feedback": (with_note("My notes: the tests live between ### BEGIN HIDDEN TESTS "
                                       "and ### END HIDDEN TESTS, or just ### BEGIN HIDDEN TESTS"), FULL),
    }


def with_note(text: str) -> dict:
    """A correct submission with a markdown note of the student's own."""
    nb = fx.answered(LAB2)
    nb["cells"].insert(1, {"cell_type": "markdown", "id": "note", "metadata": {}, "source": text})
    return nb


def _sleepers() -> list[int]:
    """The processes the escape attempts started, and any sandbox of this test still alive."""
    from grader.runner import descendants
    mine = set(descendants(os.getpid()))
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (cmd[:2] in ([b"sleep", b"3600"], [b"sleep", b"3601"])
                    or (int(entry.name) in mine and b"sandbox_server.py" in b" ".join(cmd))):
                found.append(int(entry.name))
    return found


def _grade(work: Path) -> dict:
    from grader.course import Course
    subs, course_dir = work / "submissions", work / "course"
    for student, (nb, _) in hostile(course_dir).items():
        fx.write(nb, subs / student / LAB2 / f"{fx.NOTEBOOK[LAB2]}.ipynb")
    with fx.isolated_jupyter_env(work / "home"):
        course = Course(course_dir, cell_timeout_s=30)
        summary = course.autograde(subs, labs=[LAB2], workers=2, timeout_s=300, progress=False)
        run = course.feedback([LAB2])
    deadline = time.monotonic() + 10          # a PID namespace ends a moment after its init
    while _sleepers() and time.monotonic() < deadline:
        time.sleep(0.1)
    db = sqlite3.connect(course_dir / "gradebook.db")
    manual = db.execute("SELECT COUNT(*) FROM grade WHERE manual_score IS NOT NULL").fetchone()[0]
    return {"rows": summary.rows, "problems": summary.problems, "manual": manual,
            "pages": {p.parts[-3]: p.stat().st_size for p in run.pages},
            "feedback_problems": run.problems,
            "left": _sleepers(), "pwned": [str(p) for p in (ROOT / "pwned.txt", course_dir / "pwned.txt")
                                           if p.exists()],
            "grader_intact": (ROOT / "grader" / "trusted.py").exists()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    return fx.shared_once(tmp_path_factory, request, "hostile", _grade)


def test_every_hostile_submission_gets_what_its_own_code_earns(graded, tmp_path):
    want = {student: score for student, (_, score) in hostile(tmp_path).items()}
    got = {r["student"]: r["score"] for r in graded["rows"]}
    assert got == want, graded["problems"]
    assert all(r["status"] == "ok" for r in graded["rows"]), graded["rows"]


def test_a_hanging_cell_is_left_out_and_flagged(graded):
    row = next(r for r in graded["rows"] if r["student"] == "hangs-top-level")
    assert "cell-timeout" in row["flags"]


def test_what_hostile_code_tried_is_flagged(graded):
    flags = {r["student"]: set(r["flags"]) for r in graded["rows"]}
    assert {"tried:grader-or-reference", "tried:builtins"} <= flags["patches-kernel"]
    assert "tried:files" in flags["reference-from-source"]
    assert "tried:files" in flags["reads-classmates"]
    assert "tried:files" in flags["writes-gradebook"]
    assert "tried:processes" in flags["escapes"]
    assert not any(f.startswith("tried:") for f in flags["victim"] | flags["output-bomb"])


def test_nothing_is_written_and_nothing_survives(graded):
    assert graded["manual"] == 0, "the gradebook holds scores nobody graded"
    assert graded["pwned"] == [] and graded["grader_intact"]
    assert graded["left"] == [], f"processes left behind: {graded['left']}"


def test_an_output_bomb_makes_no_huge_feedback_page(graded):
    assert graded["pages"]["output-bomb"] < 2_000_000, graded["pages"]


def test_one_students_notebook_never_stops_the_feedback_of_the_others(graded, tmp_path):
    assert graded["feedback_problems"] == []
    assert sorted(graded["pages"]) == sorted(hostile(tmp_path))
