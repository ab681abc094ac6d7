"""Where things are, and the nbgrader configuration of the course.

nbgrader's course directory layout, mapped onto this repository:

================  ==========================================================================
``source``        ``solutions/`` (instructor notebooks: solutions and hidden tests)
``release``       ``labs/`` for ``python -m grader release`` (what students get, committed);
                  a private ``<course>/release`` for grading runs, so grading never rewrites
                  ``labs/``
``submitted``     ``<course>/submitted/<student>/<lab>/`` (filled by ``autograde``)
``autograded``    ``<course>/autograded/...``; ``feedback`` likewise; ``gradebook.db``
================  ==========================================================================

The course directory defaults to ``grader/course`` (ignored by git) or ``$DYNAMO_LAB_COURSE_DIR``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = ROOT / "solutions"
LABS_DIR = ROOT / "labs"
DEFAULT_COURSE_DIR = ROOT / "grader" / "course"
COURSE_ID = "dynamo-lab"

DEFAULT_CELL_TIMEOUT_S = 120
DEFAULT_NOTEBOOK_TIMEOUT_S = 600

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"


def default_course_dir() -> Path:
    return Path(os.environ.get("DYNAMO_LAB_COURSE_DIR") or DEFAULT_COURSE_DIR).resolve()


def lab_ids(source_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """Every lab of the registry (:mod:`dynamo_lab.labs`) whose folder in ``source_dir`` holds
    a notebook, in course order."""
    from dynamo_lab.labs import labs
    return [lab.id for lab in labs() if any((source_dir / lab.id).glob("*.ipynb"))]


def lab_notebooks(lab: str, source_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """The notebook names (without ``.ipynb``) of one lab, sorted."""
    return sorted(p.stem for p in (source_dir / lab).glob("*.ipynb"))


def configure(c, course_dir: Path | str, *, release_dir: Optional[Path | str] = None,
              cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S, source_dir: Path | str = SOLUTIONS_DIR,
              exchange_dir: Optional[Path | str] = None):
    """Fill a traitlets ``Config`` ``c`` with this course's nbgrader settings; returns ``c``.

    * course directories as in the module docstring (``release_dir`` defaults to ``labs/``);
    * ``OverwriteCells.add_missing_cells``: a deleted test cell is put back (our own repair step
      runs first and also handles notebooks whose nbgrader metadata was stripped);
    * autograde runs :class:`grader.trusted.TrustedGrade` instead of executing the notebook:
      ``cell_timeout_s`` is the limit of one test cell's checks; the grader adds a hard
      wall-clock limit per notebook;
    * feedback: the hidden tests of test cells are cleared (a student's own text is left as it
      is), so no feedback shows hidden test source; every page is checked before any is
      released (:meth:`grader.course.Course.feedback`).
    """
    course_dir = Path(course_dir).resolve()
    c.CourseDirectory.root = str(course_dir)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.source_directory = str(Path(source_dir).resolve())
    c.CourseDirectory.release_directory = str(Path(release_dir or LABS_DIR).resolve())
    # A long busy timeout: parallel graders share one SQLite gradebook.
    c.CourseDirectory.db_url = f"sqlite:///{course_dir / 'gradebook.db'}?timeout=120"
    if exchange_dir is not None:              # nbgrader's exchange (JupyterHub): where else
        c.Exchange.root = str(Path(exchange_dir).resolve())   # nbgrader's default is used
    c.OverwriteCells.add_missing_cells = True
    # The notebook is never run in a kernel: the trusted checks grade its answer cells in a
    # sandbox (grader.trusted), in place of nbgrader's Execute.
    c.Autograde.autograde_preprocessors = [
        "grader.trusted.TrustedGrade",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    c.TrustedGrade.course_dir = str(course_dir)
    c.TrustedGrade.cell_timeout_s = float(cell_timeout_s)
    from .seeds import load_course_seed
    course_seed = load_course_seed(course_dir)
    c.TrustedGrade.course_seed = -1 if course_seed is None else course_seed
    from .late import load_policy
    policy = load_policy(course_dir)
    c.AssignLatePenalties.plugin_class = "grader.late.PerDayPenalty"
    c.PerDayPenalty.per_day = policy.per_day
    c.PerDayPenalty.max_fraction = policy.max
    c.GenerateFeedback.preprocessors = [
        "nbgrader.preprocessors.GetGrades",
        "grader.preprocessors.ClearHiddenTestsOfTestCells",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    ]
    return c


def make_config(course_dir: Path | str, **kwargs):
    from traitlets.config import Config
    return configure(Config(), course_dir, **kwargs)


def hidden_test_lines(source_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """Every non-blank line inside a hidden-test region of the solution notebooks: what no
    feedback file may contain."""
    import json
    lines: list[str] = []
    for nb_path in sorted(source_dir.glob("*/*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            inside = False
            for line in source.splitlines():
                if BEGIN_HIDDEN in line:
                    inside = True
                elif END_HIDDEN in line:
                    inside = False
                elif inside and line.strip():
                    lines.append(line.strip())
    return lines


_SAFE_ID = re.compile(r"[^\w.-]+")


def safe_id(text: str) -> str:
    """A student id nbgrader and file systems accept: letters (of any script), digits,
    ``_ . -``."""
    out = _SAFE_ID.sub("_", text.strip()).strip("._-")
    return out[:80]
