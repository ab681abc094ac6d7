"""The lab notebooks: they run, they are what nbgrader makes, and they keep the labs' rules.

* every solution notebook executes headless (nbclient) with no error, widgets included;
* ``solutions/`` is what the labs' ``.cells`` files build, and ``labs/`` is exactly what nbgrader
  generates from ``solutions/`` (a drift test);
* the release holds no solution and no hidden test; every test cell is named after the
  invariant it checks; every answer cell states its contract in a docstring; each lab follows
  the arc explain -> predict -> implement -> see it -> break it -> measure.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import time
from pathlib import Path

import pytest

from dynamo_lab.grading import INVARIANTS
from dynamo_lab.labs import labs

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "grader_fixtures", ROOT / "tests" / "fixtures" / "submissions" / "grader_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

LABS = {one.id: f"lab{one.number}" for one in labs()}


def _cells(kind: str, lab: str) -> list[dict]:
    return fx.load(kind, lab)["cells"]


def _nbg(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _src(cell: dict) -> str:
    return fx._src(cell)


@pytest.mark.slow
@pytest.mark.parametrize("lab", sorted(LABS))
def test_solution_notebook_runs_headless_without_errors(lab, tmp_path):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.reads(json.dumps(fx.load("solutions", lab)), as_version=4)
    with fx.isolated_jupyter_env(tmp_path / "home"):
        import os
        os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(tmp_path / "hypothesis")
        try:
            t0 = time.monotonic()
            NotebookClient(nb, timeout=180, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": str(tmp_path)}}).execute()
            seconds = time.monotonic() - t0
        finally:
            os.environ.pop("HYPOTHESIS_STORAGE_DIRECTORY", None)
    errors = [(c.get("id"), o["ename"], o["evalue"][:300]) for c in nb.cells
              for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    widgets = [o for c in nb.cells for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert widgets and images
    assert seconds < 120


def test_solution_notebooks_are_built_from_their_cell_files():
    from grader.build_notebooks import build
    assert build(check=True) == [], "run: python -m grader build"


@pytest.mark.slow
def test_labs_are_exactly_what_nbgrader_generates_from_solutions(tmp_path):
    from grader.course import Course
    with fx.isolated_jupyter_env(tmp_path / "home"):
        written = Course(tmp_path / "course").release(out_dir=tmp_path / "release")
    assert sorted(p.relative_to(tmp_path / "release") for p in written) == \
        sorted(p.relative_to(ROOT / "labs") for p in (ROOT / "labs").glob("*/*.ipynb"))
    for path in written:
        committed = ROOT / "labs" / path.relative_to(tmp_path / "release")
        assert committed.read_bytes() == path.read_bytes(), \
            f"{committed} drifted from solutions/: run python -m grader release"


@pytest.mark.parametrize("lab", sorted(LABS))
def test_the_release_holds_no_solution_and_no_hidden_test(lab):
    text = json.dumps(fx.load("labs", lab))
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    from grader.config import hidden_test_lines
    assert [line for line in hidden_test_lines() if line in text] == []
    stubs = [c for c in _cells("labs", lab) if _nbg(c).get("solution")]
    assert stubs and all("raise NotImplementedError()" in _src(c) for c in stubs)


@pytest.mark.parametrize("lab", sorted(LABS))
def test_every_test_cell_is_named_after_the_invariant_it_checks(lab):
    tests = [c for c in _cells("solutions", lab) if _nbg(c).get("grade")]
    names = [_nbg(c)["grade_id"].replace("_", "-") for c in tests]
    mine = sorted(k for k, (owner, _) in INVARIANTS.items() if owner == LABS[lab])
    assert sorted(names) == mine
    for cell, name in zip(tests, names):
        points = _nbg(cell)["points"]
        header = _src(cell).splitlines()[0]
        assert header == f"# Test: {name} ({points} point{'s' if points != 1 else ''})"
        assert "grading.check_" in _src(cell).split("### BEGIN HIDDEN TESTS")[1]


@pytest.mark.parametrize("lab", sorted(LABS))
def test_every_answer_cell_states_its_whole_contract_in_a_docstring(lab):
    answers = [c for c in _cells("labs", lab) if _nbg(c).get("solution")]
    assert answers
    for cell in answers:
        tree = ast.parse(_src(cell))
        defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert defs, _nbg(cell)["grade_id"]
        for node in defs:
            doc = ast.get_docstring(node)
            assert doc and len(doc) > 80, f"{node.name} needs a docstring that is its contract"


@pytest.mark.parametrize("lab", sorted(LABS))
def test_each_lab_follows_the_arc(lab):
    headings = [line.lower() for c in _cells("solutions", lab) if c["cell_type"] == "markdown"
                for line in _src(c).splitlines() if line.startswith("## ")]
    arc = ["explain", "predict", "implement", "see it", "break it", "what you found"]
    positions = [next((i for i, h in enumerate(headings) if word in h), None) for word in arc]
    assert None not in positions, headings
    assert positions == sorted(positions), headings
    assert any("measure" in h for h in headings), "the lab measures against a published result"
    # A prediction cell comes before the first answer cell, and its values are read back.
    cells = _cells("solutions", lab)
    first_answer = next(i for i, c in enumerate(cells) if _nbg(c).get("solution"))
    predictions = [i for i, c in enumerate(cells) if re.search(r"^predicted_\w+ = None", _src(c), re.M)]
    assert predictions and predictions[0] < first_answer
    found = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                 and "## " in _src(c) and "what you found" in _src(c).lower())
    asked = {m for i in predictions for m in re.findall(r"^(predicted_\w+) = None", _src(cells[i]), re.M)}
    read_back = {m for c in cells[found:] for m in re.findall(r"predicted_\w+", _src(c))}
    assert asked and asked <= read_back, f"predictions never compared: {sorted(asked - read_back)}"
    # The lab ends with the student's full self-check, before submitting.
    assert "grading.self_check(" in _src(cells[-1])
