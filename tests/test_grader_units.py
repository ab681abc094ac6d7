"""The grader's parts that need no notebook run: finding submissions (folders, Canvas and Moodle
zips), repairing damaged notebooks, scrubbing hidden tests from tracebacks, killing a process
tree, the nbgrader configuration and the notebook builder."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader import build_notebooks, config
from grader.runner import descendants, kill_tree
from grader.submissions import (SubmissionError, detect_lab, find_submissions, load_labs, repair,
                                stage)

ROOT = Path(__file__).resolve().parents[1]
from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest

LAB1, LAB2 = fx.LAB1, fx.LAB2


@pytest.fixture(scope="module")
def labs():
    return load_labs()


def _ids(nb):
    return [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb["cells"]]


def _write(path: Path, nb: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


# -- finding submissions --------------------------------------------------------------------------

def test_folder_layouts_are_all_understood(tmp_path, labs):
    release1, release2 = fx.load("labs", LAB1), fx.load("labs", LAB2)
    _write(tmp_path / "in" / "ada" / LAB1 / "consistent_hashing.ipynb", release1)     # nbgrader layout
    _write(tmp_path / "in" / "bob" / "my work (final).ipynb", release2)               # renamed: by cell ids
    _write(tmp_path / "in" / "cy_consistent_hashing.ipynb", release1)                 # flat file
    _write(tmp_path / "in" / "notes.ipynb", {"cells": [], "metadata": {}, "nbformat": 4,
                                             "nbformat_minor": 5})
    subs, problems = find_submissions(tmp_path / "in", labs, tmp_path / "work")
    assert sorted((s.student, s.lab) for s in subs) == [("ada", LAB1), ("bob", LAB2), ("cy", LAB1)]
    assert len(problems) == 1 and "notes.ipynb" in problems[0]


def test_a_canvas_export_with_resubmissions_keeps_the_latest(tmp_path, labs):
    nb = json.dumps(fx.load("labs", LAB1))
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("lovelaceada_1234_991_consistent_hashing.ipynb", nb)
        zf.writestr("lovelaceada_LATE_1234_992_consistent_hashing-1.ipynb", nb)
        zf.writestr("turingalan_77_993_vector_clocks.ipynb", json.dumps(fx.load("labs", LAB2)))
    subs, problems = find_submissions(archive, labs, tmp_path / "work")
    got = {(s.student, s.lab): s for s in subs}
    assert sorted(got) == [("lovelaceada_1234", LAB1), ("turingalan_77", LAB2)]
    assert got[("lovelaceada_1234", LAB1)].origin.endswith("consistent_hashing-1.ipynb")
    assert "several-submissions" in got[("lovelaceada_1234", LAB1)].flags
    assert any("several notebooks" in p for p in problems)


def test_a_moodle_export_names_students_by_folder(tmp_path, labs):
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Grace Hopper_4242_assignsubmission_file_/vector_clocks.ipynb",
                    json.dumps(fx.load("labs", LAB2)))
    subs, _ = find_submissions(archive, labs, tmp_path / "work")
    assert [(s.student, s.lab) for s in subs] == [("Grace_Hopper_4242", LAB2)]


def test_an_archive_that_escapes_its_folder_is_refused(tmp_path, labs):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../outside.ipynb", "{}")
    with pytest.raises(SubmissionError, match="unsafe path"):
        find_submissions(archive, labs, tmp_path / "work")
    assert not (tmp_path / "outside.ipynb").exists()


def test_the_lab_is_found_from_answer_signatures_when_metadata_and_name_are_gone(labs):
    nb = fx.stripped_metadata()
    assert detect_lab(Path("whatever.ipynb"), nb, labs) == LAB1


# -- repairing notebooks --------------------------------------------------------------------------

def test_a_deleted_test_cell_is_put_back_where_it_was(labs):
    release = labs[LAB2].release
    nb = fx.delete_cell(fx.answered(LAB2, slim=False), "merge_is_the_pointwise_maximum")
    fixed, flags = repair(nb, release)
    assert flags == ["restored-cell:merge_is_the_pointwise_maximum"]
    ids = [i for i in _ids(fixed) if i]
    assert ids == [i for i in _ids(release) if i]


def test_stripped_metadata_is_recovered_from_the_release(labs):
    release = labs[LAB1].release
    fixed, flags = repair(fx.stripped_metadata(), release)
    assert "metadata-restored" in flags
    assert "restored-cell:ownership_is_each_nodes_share_of_the_ring" in flags
    assert [i for i in _ids(fixed) if i] == [i for i in _ids(release) if i]
    answer = next(c for c in fixed["cells"] if _ids({"cells": [c]})[0] == "successor_index")
    assert "bisect_left" in fx._src(answer)          # the student's code, not the stub


def test_an_edited_test_cell_is_flagged_but_a_solution_notebook_is_not(labs):
    release = labs[LAB2].release
    _, flags = repair(fx.deleted_and_edited(), release)
    assert "edited-cell:increment_bumps_only_the_coordinator" in flags
    _, flags = repair(fx.load("solutions", LAB2), release)
    assert flags == []


def test_an_unreadable_notebook_is_graded_as_the_release(tmp_path, labs):
    bad = tmp_path / "in" / "dora" / "vector_clocks.ipynb"
    bad.parent.mkdir(parents=True)
    bad.write_text("{ not json")
    subs, _ = find_submissions(tmp_path / "in", labs, tmp_path / "work")
    assert [(s.student, s.lab) for s in subs] == [("dora", LAB2)]
    staged = stage(subs[0], labs[LAB2], tmp_path / "submitted")
    assert "unreadable-notebook" in subs[0].flags
    assert json.loads(staged.read_text())["cells"] == labs[LAB2].release["cells"]


# -- feedback never shows hidden tests -----------------------------------------------------------

def test_hidden_tests_are_cleared_from_test_cells_and_a_students_note_is_left_alone():
    from nbformat.v4 import new_code_cell, new_markdown_cell
    from grader.preprocessors import ClearHiddenTestsOfTestCells
    test = new_code_cell("assert f(1) == 2, 'f(1) is 2'\n### BEGIN HIDDEN TESTS\n"
                         "grading.check_secret(f, seed=99, examples=5)\n### END HIDDEN TESTS")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1,
                                 "grade_id": "t", "schema_version": 3}
    note = new_markdown_cell("I read that tests sit between ### BEGIN HIDDEN TESTS and ...")
    pre = ClearHiddenTestsOfTestCells()
    test, _ = pre.preprocess_cell(test, {}, 0)
    note, _ = pre.preprocess_cell(note, {}, 1)
    assert "check_secret" not in test.source and "f(1) is 2" in test.source
    assert "BEGIN HIDDEN TESTS" in note.source


def test_nbgrader_is_configured_against_the_known_traps(tmp_path):
    c = config.make_config(tmp_path, cell_timeout_s=42)
    assert "grader.preprocessors.ClearHiddenTestsOfTestCells" in c.GenerateFeedback.preprocessors
    assert c.OverwriteCells.add_missing_cells is True
    assert c.TrustedGrade.cell_timeout_s == 42
    # The notebook is never executed in a kernel: the trusted checks grade it.
    assert c.Autograde.autograde_preprocessors[0] == "grader.trusted.TrustedGrade"
    assert not any("Execute" in p for p in c.Autograde.autograde_preprocessors)
    assert c.CourseDirectory.source_directory == str(config.SOLUTIONS_DIR)
    assert c.CourseDirectory.release_directory == str(config.LABS_DIR)
    assert c.CourseDirectory.root == str(tmp_path.resolve())


def test_safe_ids_are_safe():
    assert config.safe_id("Grace Hopper/../../etc") == "Grace_Hopper_.._.._etc"
    assert "/" not in config.safe_id("../x") and not config.safe_id("../x").startswith(".")


# -- killing a process tree -----------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_kill_tree_kills_a_process_and_the_children_it_started(tmp_path):
    script = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
              "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)'], start_new_session=True)\n"
              "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 10
    while not descendants(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    kids = descendants(parent.pid)
    assert kids
    kill_tree(parent.pid)
    parent.wait(timeout=10)
    time.sleep(0.2)
    for pid in kids:
        try:
            os.kill(pid, 0)
            alive = Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()
        except ProcessLookupError:
            alive = False
        assert not alive, f"child {pid} survived"


# -- the notebook builder -------------------------------------------------------------------------

def test_the_builder_refuses_malformed_cell_files():
    with pytest.raises(build_notebooks.CellFileError, match="needs points"):
        build_notebooks.parse_cells("%% test id=t\nassert True\n")
    with pytest.raises(build_notebooks.CellFileError, match="used twice"):
        build_notebooks.parse_cells("%% answer id=a\nx = 1\n%% answer id=a\ny = 2\n")
    with pytest.raises(build_notebooks.CellFileError, match="before the first"):
        build_notebooks.parse_cells("stray\n%% code\nx = 1\n")


def test_the_builder_gives_nbgrader_metadata_and_stable_ids():
    cells = build_notebooks.parse_cells("%% markdown\n# T\n%% answer id=f\ndef f():\n    pass\n"
                                        "%% test id=t points=2\nassert f() is None\n")
    nb = build_notebooks.to_notebook(cells)
    assert [c["id"] for c in nb["cells"]] == ["md-00", "f", "t"]
    assert nb["cells"][1]["metadata"]["nbgrader"]["solution"] is True
    assert nb["cells"][2]["metadata"]["nbgrader"] == {
        "grade": True, "grade_id": "t", "locked": True, "points": 2, "schema_version": 3,
        "solution": False, "task": False}
    assert build_notebooks.dumps(nb) == build_notebooks.dumps(copy.deepcopy(nb))
