"""The registry of labs: one folder per lab, points read from its cells file, own-code rules per
lab, and reference code the node runs for a student's part never counted as the student's."""

from __future__ import annotations

import random

import pytest

from dynamo_lab import grading
from dynamo_lab.grading.failures import STATE
from dynamo_lab.grading.harness import student_scope
from dynamo_lab.grading.own_code import (StudentServices, reference_uses, rules_of, student_part,
                                         tripwire)
from dynamo_lab.labs import LAB_IDS, lab, labs
from dynamo_lab.node import Node, NodeServices, Parts
from dynamo_lab.storage import MemoryStore
from dynamo_lab.vclock import VectorClock
from dynamo_lab.versions import Versioned
from grader.build_notebooks import parse_cells
from grader.config import SOLUTIONS_DIR, lab_ids


def test_every_lab_is_one_folder_with_its_spec_checks_and_cells():
    assert [one.id for one in labs()] == list(LAB_IDS)
    for one in labs():
        assert one.folder.name == one.id and one.cells_file.is_file()
        assert (SOLUTIONS_DIR / one.id / f"{one.notebook}.ipynb").is_file()
        assert one.checks.__all__ and all(hasattr(grading, n) for n in one.checks.__all__)
        assert lab(f"lab{one.number}") is one
        assert list(one.folder.glob("test_*.py")), f"{one.id} has no tests of its own"


def test_points_are_the_test_cells_of_the_cells_file_and_every_test_names_an_invariant():
    for one in labs():
        cells = parse_cells(one.cells_file.read_text(encoding="utf-8"), str(one.cells_file))
        tests = {c["attrs"]["id"]: int(c["attrs"]["points"]) for c in cells if c["kind"] == "test"}
        assert one.parts == tests and one.points == sum(tests.values()) > 0
        assert {t.replace("_", "-") for t in tests} == set(one.invariants), one.id


def test_the_grader_loops_over_the_registry():
    assert lab_ids() == list(LAB_IDS)
    with pytest.raises(KeyError, match="the labs are"):
        lab("lab99")


def test_own_code_rules_are_per_lab():
    class UsesClock:
        def increment(self, c, n):
            return VectorClock(c).increment(n).counters()

    ring_lab, clock_lab = lab("lab1"), lab("lab2")
    found = reference_uses(UsesClock, clock_lab)
    assert len(found) == 1 and found[0].endswith("UsesClock.increment uses dynamo_lab.VectorClock")
    assert reference_uses(UsesClock, ring_lab) == []      # Lab 1's parts may not use the ring
    assert reference_uses(UsesClock) != []                 # every lab's rules at once
    assert (VectorClock, "descends") not in rules_of(ring_lab).watched
    assert (VectorClock, "descends") in rules_of(clock_lab).watched


def test_what_the_node_does_for_a_students_part_is_not_the_student_using_the_reference():
    """A student's part (here a replica-like part) stores a version through its services; the
    services reconcile with the reference's clocks. Under Lab 2's tripwire that is not counted;
    the same reference call made by the student's own code is."""
    node = Node("A", MemoryStore(), random.Random(1), members=["A"])
    node.start(0.0)
    services = StudentServices(node.services)
    book, pen = Versioned(["book"], VectorClock({"A": 1})), Versioned(["pen"], VectorClock({"A": 2}))
    STATE.reference_calls.clear()
    with tripwire(lab("lab2")):
        with student_scope():
            services.merge_local("cart", [book])
            services.merge_local("cart", [pen])
        assert STATE.reference_calls == []
        with student_scope():
            VectorClock({"A": 1}).descends(VectorClock({}))
        assert "dynamo_lab.VectorClock.descends" in STATE.reference_calls
    STATE.reference_calls.clear()
    assert [x.value for x in node.services.versions("cart")] == [["pen"]]


def test_a_student_part_is_built_with_student_services():
    built = []

    class Part:
        def __init__(self, services):
            built.append(services)

    Node("A", MemoryStore(), random.Random(1), members=["A"], parts=Parts(replica=student_part(Part)))
    assert len(built) == 1 and isinstance(built[0], StudentServices)
    assert isinstance(object.__getattribute__(built[0], "_services"), NodeServices)
