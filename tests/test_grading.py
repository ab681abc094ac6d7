"""dynamo_lab.grading: the checks the labs' hidden tests call.

A correct part written another way passes every check; a wrong part fails the check of the
promise it breaks, with the smallest failing input and the seed; a part that uses the reference
fails every check; a part that never returns fails within its time budget.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right

import pytest

import dynamo_lab as dl
from dynamo_lab import grading
from dynamo_lab.errors import ConfigError
from dynamo_lab.grading import REFERENCE_USED_MARK, TIMEOUT_MARK, GradingFailure, ReferenceUsed
from dynamo_lab.grading.own_code import reference_uses
from dynamo_lab.hashing import key_hash

FEW = {"examples": 30}


from dynamo_lab.labs.lab1_consistent_hashing.test_checks import DictRing  # noqa: E402
from dynamo_lab.labs.lab2_vector_clocks.test_checks import (CLOCKS, c_compare,  # noqa: E402
                                                            c_increment, c_reconcile)


# -- wrong parts fail the check of the promise they break ----------------------------------------

def off_by_one_successor(tokens, h):
    if not tokens:
        raise ValueError("no tokens")
    return bisect_right(tokens, h) % len(tokens)


class RepeatingRing(DictRing):
    def preference_list(self, key, n):
        return list(itertools.islice(self._walk(key), n))


def min_merge(a, b):
    return {n: min(a.get(n, 0), b.get(n, 0)) for n in {*a, *b} if min(a.get(n, 0), b.get(n, 0))}


def equal_is_before(a, b):
    if all(b.get(n, 0) >= c for n, c in a.items()):
        return "before"
    return c_compare(a, b)


def keeps_dominated(versions):
    out = []
    for v in versions:
        if not any(v.clock == k.clock for k in out):
            out.append(v)
    return out


WRONG = [
    ("check_successor_index", off_by_one_successor, "successor-is-first-token-at-or-after-hash",
     "h equals a token"),
    ("check_preference_list_distinct", RepeatingRing, "preference-list-has-n-distinct-physical-nodes",
     "appear(s) more than once"),
    ("check_merge", min_merge, "merge-is-the-pointwise-maximum", "smallest failing input: a={}"),
    ("check_compare_ordered", equal_is_before, "compare-orders-equal-and-descending-clocks",
     "equal counters"),
    ("check_reconcile_drops_dominated", keeps_dominated, "reconcile-drops-every-dominated-version",
     "is kept, but"),
]


@pytest.mark.parametrize("check, part, invariant, hint", WRONG, ids=[w[2] for w in WRONG])
def test_a_wrong_part_fails_with_the_promise_the_smallest_input_and_the_seed(check, part, invariant, hint):
    with pytest.raises(GradingFailure) as info:
        getattr(grading, check)(part, seed=77, examples=60)
    text = str(info.value)
    assert text.startswith(f"{invariant}: ")
    assert "smallest failing input:" in text and "expected:" in text and "got:" in text
    assert hint in text
    assert f"seed 77: replay with grading.{check}(<your " in text
    assert not isinstance(info.value, ReferenceUsed)


def test_a_failure_is_reported_identically_on_every_run():
    messages = set()
    for _ in range(2):
        with pytest.raises(GradingFailure) as info:
            grading.check_coordinator(type("OffByOne", (DictRing,), {
                "coordinator": lambda self, key: self.tokens()[off_by_one_successor(
                    [t for t, _ in self.tokens()], key_hash(key))][1]}), seed=5, examples=60)
        messages.add(str(info.value))
    assert len(messages) == 1


def test_the_d1_d5_check_names_the_step_that_differs():
    with pytest.raises(GradingFailure) as info:
        grading.check_d1_d5_story(c_increment, min_merge, c_compare, c_reconcile)
    text = str(info.value)
    assert text.startswith("d1-d5-story-with-your-clocks")
    assert "at step: D3: bob writes through Sy; its clock" in text
    assert "expected: {'Sx': 2, 'Sy': 1}" in text
    assert "seed 1: replay with grading.check_d1_d5_story(<your increment, merge, compare, reconcile>, seed=1)" in text


# -- the reference is not the student's code -----------------------------------------------------

class SubclassRing(dl.Ring):
    def tokens(self):
        return list(super().tokens)


def _helper_compare(a, b):
    return dl.VectorClock(a).compare(dl.VectorClock(b))


def compare_through_a_helper(a, b):
    return _helper_compare(a, b)


def _make_closure():
    impl = dl.reconcile

    def reconcile(versions):
        return impl(versions)
    return reconcile


class SneakyRing(DictRing):
    def preference_list(self, key, n):
        ring = getattr(__import__("dynamo_lab"), "".join(["Ri", "ng"]))(sorted(self.members), self.v)
        return ring.preference_list(key, n)


@pytest.mark.parametrize("check, part, where", [
    ("check_coordinator", SubclassRing, "inherits from dynamo_lab.Ring"),
    ("check_compare_ordered", compare_through_a_helper, "_helper_compare uses dynamo_lab.VectorClock"),
    ("check_reconcile_keeps_siblings", _make_closure(), "captures dynamo_lab.reconcile"),
    ("check_preference_list_order", SneakyRing, "called dynamo_lab.Ring"),
], ids=["subclass", "helper", "closure", "runtime"])
def test_a_part_that_uses_the_reference_is_flagged_and_gets_no_marks(check, part, where):
    with pytest.raises(ReferenceUsed) as info:
        getattr(grading, check)(part, **FEW)
    assert REFERENCE_USED_MARK in str(info.value)
    assert where in str(info.value)


def test_using_key_hash_and_the_lab_helpers_is_not_using_the_reference():
    assert reference_uses(DictRing) == []
    assert reference_uses(c_reconcile) == []


# -- time budget, unfinished work, adapters -------------------------------------------------------

def loops_forever(clock, node):
    while True:
        pass


def test_a_part_that_never_returns_fails_within_its_budget_naming_the_input():
    with pytest.raises(GradingFailure) as info:
        grading.check_increment(loops_forever, budget_s=0.5)
    text = str(info.value)
    assert TIMEOUT_MARK in text and "0.5 s" in text
    assert "smallest failing input: clock=" in text


def test_a_part_not_written_yet_says_so():
    def increment(clock, node):
        raise NotImplementedError()
    with pytest.raises(GradingFailure, match="not implemented yet"):
        grading.check_increment(increment)


def test_the_ring_factory_refuses_a_cluster_with_other_vnodes():
    factory = grading.student_ring_factory(DictRing, vnodes=4)
    with pytest.raises(ConfigError, match="vnodes"):
        factory({"A": tuple(sorted(key_hash(f"A#{i}") for i in range(8)))})


def test_the_ring_adapter_names_a_preference_list_that_repeats_a_node():
    from dynamo_lab.node.common import default_tokens
    members = {x: default_tokens(x, 8) for x in "ABCDE"}
    adapter = grading.student_ring_factory(RepeatingRing, vnodes=8)(members)
    with pytest.raises(ConfigError, match="distinct nodes"):
        for i in range(50):
            adapter.preference_list(f"k{i}", 3)
    loose = grading.student_ring_factory(RepeatingRing, vnodes=8, strict=False)(members)
    assert any(len(set(loose.preference_list(f"k{i}", 3))) < 3 for i in range(50))


def test_without_the_same_coordinator_guard_the_papers_rule_loses_a_write():
    def race(guard):
        parts = dl.Parts(versioning=grading.student_versioning(*CLOCKS, guard_same_coordinator=guard))
        cluster = dl.SimCluster(nodes=3, seed=5, parts=parts)
        base = cluster.client("a").put("cart", ["book"], via="A")
        ops = [cluster.client(c).submit_put("cart", ["book", item], context=base.context, via="A")
               for c, item in (("a", "pen"), ("b", "mug"))]
        cluster.wait(*ops)
        return cluster.client("c").get("cart").values, cluster.check()
    values, violations = race(True)
    assert sorted(values) == [["book", "mug"], ["book", "pen"]] and violations == []
    values, violations = race(False)
    assert len(values) == 1
    assert any(v.check == "acknowledged-write-survives" for v in violations)
