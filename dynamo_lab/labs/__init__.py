"""The labs, one folder each, and the registry everything loops over.

A lab is the folder ``dynamo_lab/labs/<id>/`` (``<id>`` as under ``labs/`` and
``solutions/``)::

    __init__.py      LAB: its spec (title, notebook, invariants, own-code rules)
    checks.py        its grading checks and adapters (``__all__``: what ``grading`` exports)
    <notebook>.cells the notebook's source: text, solutions and hidden tests (instructors only)
    test_<id>.py     its tests (collected by ``make test``)
    ...              its own data, widgets and scenarios

The parts and their points are the test cells of the ``.cells`` file (``%% test id=.. points=..``);
nothing else states a total. (The student's handout has no ``.cells`` files: there they are
read from the released notebook in ``labs/``, which carries the same points.) Adding a lab is adding a folder and its line in :data:`LAB_IDS`.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
RELEASES = HERE.parent.parent / "labs"

#: Every lab, in course order: one line per lab.
LAB_IDS = (
    "lab1_consistent_hashing",
    "lab2_vector_clocks",
    "lab3_quorums",
    "lab4_anti_entropy",
    "lab5_gossip",
    "lab7_bayou",
)


@dataclass(frozen=True, eq=False)
class OwnCode:
    """What a lab's parts must not use of the reference (they would get no marks).

    ``modules``: modules a part may not import; ``objects``: public name -> ``"module:attr"``
    of classes and functions a part may not name, call, subclass or capture; ``watched``:
    ``"module:Class"`` -> the methods that count as a use when a part reaches them while it
    runs (everything else of the reference goes through one of them)."""
    modules: tuple[str, ...] = ()
    objects: dict[str, str] = field(default_factory=dict)
    watched: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Lab:
    """One lab's spec: everything the grader, the build and the tests need to know of it."""
    id: str
    number: int
    title: str
    notebook: str                          # the notebook's file name, without .ipynb
    invariants: dict[str, str]             # name -> the promise in one sentence
    own_code: OwnCode
    #: Run in the grading sandbox before the student's answer cells: every name the answer
    #: cells may use from the lab's setup cells, standard library only (the key hash is
    #: always there). ``tests/test_sandbox.py`` checks it against the reference.
    sandbox_prelude: str = ""
    #: Named tuples the lab's parts take and return, which its prelude defines too: they cross
    #: the grading sandbox as themselves (``grader.sandbox``), not as handles.
    records: tuple[type, ...] = ()

    @property
    def folder(self) -> Path:
        return HERE / self.id

    @property
    def cells_file(self) -> Path:
        return self.folder / f"{self.notebook}.cells"

    @property
    def checks(self) -> ModuleType:
        return importlib.import_module(f"{__name__}.{self.id}.checks")

    @property
    def release(self) -> Path:
        """The student's notebook (``labs/<id>/<notebook>.ipynb``)."""
        return RELEASES / self.id / f"{self.notebook}.ipynb"

    @property
    def parts(self) -> dict[str, int]:
        """Test cell id -> points, in notebook order (from the cells file, or where there is
        none, the student's handout, from the released notebook)."""
        if self.cells_file.is_file():
            text = self.cells_file.read_text(encoding="utf-8")
            return {m.group(1): int(m.group(2)) for m in re.finditer(
                r"^%% test id=(\S+) points=(\d+)", text, re.M)}
        cells = json.loads(self.release.read_text(encoding="utf-8"))["cells"]
        graded = [c["metadata"]["nbgrader"] for c in cells
                  if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
        return {g["grade_id"]: int(g["points"]) for g in graded}

    @property
    def points(self) -> int:
        return sum(self.parts.values())


@functools.lru_cache(maxsize=None)
def labs() -> tuple[Lab, ...]:
    """Every lab's spec, in course order."""
    return tuple(importlib.import_module(f"{__name__}.{lab_id}").LAB for lab_id in LAB_IDS)


def lab(lab_id: str) -> Lab:
    """The spec of one lab, by id (``lab1_consistent_hashing``) or short name (``lab1``)."""
    for one in labs():
        if lab_id in (one.id, f"lab{one.number}"):
            return one
    raise KeyError(f"no lab {lab_id!r}; the labs are {', '.join(LAB_IDS)}")


@functools.lru_cache(maxsize=None)
def invariants() -> dict[str, tuple[Lab, str]]:
    """Every invariant of every lab: name -> (its lab, the promise)."""
    out: dict[str, tuple[Lab, str]] = {}
    for one in labs():
        for name, promise in one.invariants.items():
            if name in out:
                raise ValueError(f"invariant {name} is named by {out[name][0].id} and {one.id}")
            out[name] = (one, promise)
    return out
