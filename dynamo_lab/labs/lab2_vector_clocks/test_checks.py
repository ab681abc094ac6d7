"""Lab 2's checks pass correct clock functions written another way than the notebook's
solution. tests/test_grading.py uses them too."""

from __future__ import annotations

from collections import Counter

import dynamo_lab as dl
from dynamo_lab import grading
from dynamo_lab.grading import Version

FEW = {"examples": 30}


# -- clock functions written differently ---------------------------------------------------------

def c_increment(clock, node):
    return dict(Counter(clock) + Counter({node: 1}))


def c_merge(a, b):
    return {n: max(a.get(n, 0), b.get(n, 0)) for n in sorted({*a, *b})}


def c_compare(a, b):
    nodes = {*a, *b}
    ge = all(a.get(n, 0) >= b.get(n, 0) for n in nodes)
    le = all(a.get(n, 0) <= b.get(n, 0) for n in nodes)
    return {(True, True): dl.Order.EQUAL, (True, False): dl.Order.AFTER,
            (False, True): dl.Order.BEFORE, (False, False): dl.Order.CONCURRENT}[(ge, le)]


def c_reconcile(versions):
    out = []
    for v in reversed(versions):          # another order, and new (equal) Version objects
        dominated = any(c_compare(w.clock, v.clock) is dl.Order.AFTER for w in versions)
        duplicate = any(c_compare(k.clock, v.clock) is dl.Order.EQUAL for k in out)
        if not dominated and not duplicate:
            out.append(Version(v.value, dict(v.clock), v.deleted))
    return out


def c_merge_carts(siblings):
    return sorted(dict.fromkeys(item for cart in siblings for item in cart))


CLOCKS = (c_increment, c_merge, c_compare, c_reconcile)


def test_correct_clock_functions_written_another_way_pass_every_clock_check():
    grading.check_increment(c_increment, **FEW)
    grading.check_merge(c_merge, **FEW)
    grading.check_compare_ordered(c_compare, **FEW)
    grading.check_compare_concurrent(c_compare, **FEW)
    grading.check_reconcile_drops_dominated(c_reconcile, **FEW)
    grading.check_reconcile_keeps_siblings(c_reconcile, **FEW)
    grading.check_merge_carts(c_merge_carts, **FEW)
    grading.check_d1_d5_story(*CLOCKS)
    grading.check_clocks_in_cluster(*CLOCKS, seed=5)
