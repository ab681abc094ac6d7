"""The student handout: everything a student needs, nothing of the solutions or hidden tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grader import handout
from grader.config import BEGIN_HIDDEN
from grader.handout import LeakError, secret_lines, write_handout


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("handout") / "dynamo-lab"
    write_handout(out)
    return out


def test_the_handout_has_the_package_the_labs_and_the_students_docs_only(made):
    files = {p.relative_to(made).as_posix() for p in made.rglob("*")
             if p.is_file() and ".git" not in p.parts}
    assert {"Makefile", "README.md", "pyproject.toml", "docs/students.md",
            "labs/lab1_consistent_hashing/consistent_hashing.ipynb",
            "dynamo_lab/grading/harness.py", "dynamo_lab/labs/lab2_vector_clocks/checks.py"} <= files
    top = {f.split("/")[0] for f in files}
    assert not top & {"solutions", "grader", "tests", "bench", ".ci"}
    assert not [f for f in files if f.endswith(".cells") or "docs/instructors" in f]
    assert 'include = ["dynamo_lab*"]' in (made / "pyproject.toml").read_text()
    assert subprocess.run(["git", "-C", str(made), "log", "--oneline"], capture_output=True,
                          text=True, check=True).stdout.count("\n") == 1


def test_no_hidden_test_and_no_solution_text_is_in_the_handout(made):
    secret = secret_lines()
    assert len(secret) > 50                          # the labs' solutions and hidden tests
    for path in made.rglob("*"):
        if path.is_file() and ".git" not in path.parts and path.suffix in (".py", ".ipynb", ".md"):
            text = path.read_text(encoding="utf-8")
            assert BEGIN_HIDDEN not in text, path
            assert not [s for s in secret if s in text], path


def test_the_handout_runs_the_labs_checks_without_the_instructors_files(made):
    code = ("import dynamo_lab\n"
            f"assert dynamo_lab.__file__.startswith({str(made)!r}), dynamo_lab.__file__\n"
            "from dynamo_lab import grading\n"
            "from dynamo_lab.labs import labs\n"
            "print([l.points for l in labs()], callable(grading.check_coordinator))")
    out = subprocess.run([sys.executable, "-c", code], cwd=made, capture_output=True, text=True,
                         env={"PYTHONPATH": str(made), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    from dynamo_lab.labs import labs
    assert out.stdout.strip() == f"{[one.points for one in labs()]} True"


def test_the_students_make_lab_is_the_courses_without_instructor_tools(made):
    text = (made / "Makefile").read_text()
    lab = text[text.index("\nlab:"):]
    assert "JUPYTER_CONFIG_PATH=$(JUPYTER_STUDENT):$(JUPYTER_COURSE)" in lab
    assert "instructor:" not in text
    dry = subprocess.run(["make", "-n", "lab"], cwd=made, capture_output=True, text=True)
    assert dry.returncode == 0 and "jupyter lab" in dry.stdout, dry.stderr
    student = made / "dynamo_lab" / "jupyter" / "student"
    assert "formgrader" in (student / "jupyter_server_config.json").read_text()


def test_a_leak_stops_the_handout_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(handout, "EXCLUDE", ())     # the cells files would go in
    with pytest.raises(LeakError, match="hidden tests or solutions"):
        write_handout(tmp_path / "leaky", git=False)
    assert not (tmp_path / "leaky").exists()


def test_the_handout_goes_to_a_new_folder(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        write_handout(tmp_path / "full", git=False)
    assert (tmp_path / "full" / "x").read_text() == "mine"
