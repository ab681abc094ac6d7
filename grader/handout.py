"""The student handout: the repository a student clones.

``python -m grader handout DIR`` writes it from this checkout's tracked files: the
``dynamo_lab`` package (without the labs' ``.cells`` files, which hold the solutions and the
hidden tests, nor the labs' own tests), the released notebooks of ``labs/``, the student's docs,
and a ``Makefile`` whose ``make lab`` opens JupyterLab without nbgrader's instructor tools.
Nothing of ``solutions/``, ``grader/``, ``tests/`` or ``bench/`` goes in. Every file written is
then searched for the text of each hidden test and of each solution region; one found stops
the handout (:class:`LeakError`), and the folder is removed.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterable

from .config import BEGIN_HIDDEN, END_HIDDEN

ROOT = Path(__file__).resolve().parent.parent

#: Tracked files that go into the handout (glob patterns over paths from the checkout's root).
INCLUDE = ("dynamo_lab/*", "labs/*", "docs/students.md", "docs/architecture.md",
           "environment.yml", ".gitignore", ".binder/*", "LICENSE*")
#: ... except these: the instructor's source of each lab, and its tests.
EXCLUDE = ("dynamo_lab/labs/*/*.cells", "dynamo_lab/labs/*/test_*.py")
#: The smallest line of a hidden test or a solution that counts as a leak when found verbatim
#: (shorter lines, such as ``return out`` or ``pass``, are everyone's code).
MIN_LEAK_CHARS = 24

MAKEFILE = """\
# dynamo-lab, the student's copy.
#   make lab   create .venv, install, open JupyterLab on labs/
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab clean

$(STAMP): pyproject.toml
\t@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "dynamo-lab needs Python 3.10 or newer (found " + sys.version.split()[0] + ")")'
\t$(PYTHON) -m venv $(VENV)
\t$(PY) -m pip install --quiet --upgrade pip
\t$(PY) -m pip install --quiet -e .
\t@touch $(STAMP)

# JupyterLab refuses to run as root unless told; containers (Binder, Docker) often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

{jupyter}

clean:
\trm -rf $(VENV) *.egg-info .ipynb_checkpoints
"""


def _students_make_lab(root: Path) -> str:
    """The course Makefile's ``make lab`` (the student's Jupyter configuration: nbgrader's
    instructor tools hidden, sliders on the keyboard), with the variables it uses."""
    text = (root / "Makefile").read_text(encoding="utf-8")
    found = re.search(r"^# Jupyter configuration.*?^lab: [^\n]*\n(?:\t[^\n]*\n)+", text,
                      re.M | re.S)
    if found is None:
        raise RuntimeError("Makefile: no 'make lab' with its Jupyter configuration to copy")
    return found.group(0).rstrip()


README = """\
# dynamo-lab

```
make lab     # creates .venv, installs everything, opens JupyterLab on the labs
```

A fresh machine needs only Python 3.10+, git and make. Each folder of `labs/` is one lab:
open its notebook, read, predict, implement the parts marked `YOUR CODE HERE`, and run the
checks. How the labs work, how they are graded and what to hand in: `docs/students.md`. How the
reference cluster your code plugs into is built: `docs/architecture.md`.
"""


class LeakError(RuntimeError):
    """A hidden test's or a solution's text was found in the handout."""


def tracked_files(root: Path = ROOT) -> list[str]:
    """The checkout's tracked files (``git ls-files``), as paths from its root."""
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True,
                         check=True).stdout.decode("utf-8")
    return sorted(p for p in out.split("\0") if p)


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(path, pat) for pat in patterns)


def handout_files(root: Path = ROOT) -> list[str]:
    """What goes into the handout as it is (before the files written for it)."""
    return [p for p in tracked_files(root)
            if _matches(p, INCLUDE) and not _matches(p, EXCLUDE) and (root / p).is_file()]


def secret_lines(root: Path = ROOT) -> set[str]:
    """The lines of every hidden test and every solution region of every lab's cells file
    (stripped, at least :data:`MIN_LEAK_CHARS` long) that the reference implementation itself
    does not contain (``return list(self._entries)`` is everyone's): text no handout file may
    contain."""
    from dynamo_lab.labs import labs
    public: set[str] = set()
    for rel in tracked_files(root):
        if fnmatch.fnmatch(rel, "dynamo_lab/*.py") and not rel.startswith("dynamo_lab/labs/"):
            public |= {ln.strip() for ln in (root / rel).read_text(encoding="utf-8").splitlines()}
    secret: set[str] = set()
    regions = [(BEGIN_HIDDEN, END_HIDDEN), ("### BEGIN SOLUTION", "### END SOLUTION")]
    for lab in labs():
        inside = None
        for line in lab.cells_file.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if inside is None:
                inside = next((end for begin, end in regions if text.startswith(begin)), None)
            elif text.startswith(inside):
                inside = None
            elif len(text) >= MIN_LEAK_CHARS and text not in public:
                secret.add(text)
    return secret


def _pyproject(text: str) -> str:
    """The package's pyproject, shipping ``dynamo_lab`` only (the grader stays behind)."""
    new, n = re.subn(r'include = \[[^\]]*\]', 'include = ["dynamo_lab*"]', text)
    if n != 1:
        raise RuntimeError("pyproject.toml: no [tool.setuptools.packages.find] include list to "
                           "narrow to dynamo_lab")
    return new


def leaks(out: Path, secret: set[str]) -> list[str]:
    """``path: line`` for every secret line found in a file under ``out``."""
    found = []
    for path in sorted(p for p in out.rglob("*") if p.is_file() and ".git" not in p.parts):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(out)}: {s}" for s in sorted(secret) if s in text]
    return found


def write_handout(out: Path, root: Path = ROOT, *, git: bool = True) -> list[Path]:
    """Write the handout into ``out`` (which must not exist, or be empty). Returns the files
    written. Raises :class:`LeakError` (and removes ``out``) if solution or hidden-test text
    got in; ``FileExistsError`` for a folder that holds anything."""
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: give a new folder for the handout")
    if out == root or root in out.parents:
        raise ValueError(f"write the handout outside the checkout ({root}), not into {out}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for rel in handout_files(root):
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dst)
        written.append(dst)
    extra = {
        "pyproject.toml": _pyproject((root / "pyproject.toml").read_text(encoding="utf-8")),
        "Makefile": MAKEFILE.replace("{jupyter}", _students_make_lab(root)),
        "README.md": README,
    }
    for rel, text in extra.items():
        (out / rel).write_text(text, encoding="utf-8")
        written.append(out / rel)
    found = leaks(out, secret_lines(root))
    if found:
        shutil.rmtree(out)
        raise LeakError("the handout would give away hidden tests or solutions; nothing was "
                        "written. Found:\n  " + "\n  ".join(found[:20]))
    if git:
        _commit(out)
    return sorted(written)


def _commit(out: Path) -> None:
    """Make the folder a git repository with one commit, ready to push for students."""
    env_args = ["-c", "user.name=dynamo-lab", "-c", "user.email=dynamo-lab@localhost"]
    subprocess.run(["git", "-C", str(out), "init", "-q"], check=True)
    subprocess.run(["git", "-C", str(out), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(out), *env_args, "commit", "-q", "-m",
                    "dynamo-lab: the labs"], check=True)
