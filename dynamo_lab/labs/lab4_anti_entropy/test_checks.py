"""Lab 4's checks pass correct parts written another way than the notebook's solution, the
adapters leave the reference cluster exactly as it was (same trace), each classic mistake the
lab names loses the points of the promises it breaks, and only those, and the measurements
give the published figures (2D + 1 exactly, 2d log2(L/d) within 10%)."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from dynamo_lab.grading import GradingFailure
from dynamo_lab.hashing import RING_SIZE, key_hash
from dynamo_lab.labs.lab4_anti_entropy import LAB as SPEC
from dynamo_lab.labs.lab4_anti_entropy import checks, scenarios
from dynamo_lab.node import Parts

FEW = {"examples": 40}


# -- correct parts written differently ------------------------------------------------------------

def _h(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CTree:
    """Sparse and lazy: only non-empty subtrees are stored; changed leaves are marked dirty and
    their paths recomputed on the next read."""

    def __init__(self, start, end, depth):
        self.lo, self.d = start, depth
        self.span = (end - start) % RING_SIZE or RING_SIZE
        self.keys = {}              # key -> (leaf, digest)
        self.nodes = {}             # (level, index) -> hash, non-empty subtrees only
        self.dirty = set()
        self.empty = [_h(b"[]")]
        for _ in range(depth):
            self.empty.append(_h(bytes.fromhex(self.empty[-1]) * 2))

    @property
    def depth(self):
        return self.d

    def update(self, key, digest):
        leaf = ((key_hash(key) - self.lo - 1) % RING_SIZE) * 2 ** self.d // self.span
        self.keys[key] = (leaf, digest)
        self.dirty.add(leaf)

    def remove(self, key):
        found = self.keys.pop(key, None)
        if found:
            self.dirty.add(found[0])

    def leaf_entries(self, index):
        return {k: dg for k, (leaf, dg) in self.keys.items() if leaf == index}

    def node_hash(self, level, index):
        while self.dirty:
            leaf = self.dirty.pop()
            entries = self.leaf_entries(leaf)
            if entries:
                body = json.dumps(sorted([k, v] for k, v in entries.items()), separators=(",", ":"))
                self.nodes[(self.d, leaf)] = _h(body.encode())
            else:
                self.nodes.pop((self.d, leaf), None)
            i = leaf
            for lv in range(self.d - 1, -1, -1):
                i >>= 1
                kids = [self.nodes.get((lv + 1, c)) for c in (2 * i, 2 * i + 1)]
                if kids == [None, None]:
                    self.nodes.pop((lv, i), None)
                else:
                    e = self.empty[self.d - lv - 1]
                    self.nodes[(lv, i)] = _h(bytes.fromhex(kids[0] or e) + bytes.fromhex(kids[1] or e))
        return self.nodes.get((level, index), self.empty[self.d - level])


def c_diff_level(tree, level, remote_hashes):
    out, reply = [], {}
    for i in sorted(remote_hashes, reverse=True):
        if remote_hashes[i] == tree.node_hash(level, i):
            continue
        out.insert(0, i)
        if level < tree.depth:
            reply.update({c: tree.node_hash(level + 1, c) for c in (2 * i + 1, 2 * i)})
        else:
            reply = {**tree.leaf_entries(i), **reply}
    return out, reply


def c_differing_keys(mine, theirs):
    return sorted({k for k, v in mine.items() if theirs.get(k) != v}
                  | {k for k, v in theirs.items() if mine.get(k) != v})


def c_merkle_diff(a, b):
    def walk(level, nodes, hashes, rounds):
        differ = [i for i in nodes if a.node_hash(level, i) != b.node_hash(level, i)]
        if not differ:
            return [], hashes, rounds
        if level == a.depth:
            keys = []
            for leaf in differ:
                keys += c_differing_keys(a.leaf_entries(leaf), b.leaf_entries(leaf))
            return sorted(keys), hashes, rounds
        kids = [c for i in differ for c in (2 * i, 2 * i + 1)]
        return walk(level + 1, kids, hashes + len(kids), rounds + 1)
    keys, hashes, rounds = walk(0, [0], 1, 1)
    return {"rounds": rounds, "hashes": hashes, "keys": tuple(keys)}


def c_repair_key(mine, theirs, siblings):
    return sorted(siblings, reverse=True), sorted(theirs) != sorted(siblings)


DIFFERENT = {"MerkleTree": CTree, "diff_level": c_diff_level, "differing_keys": c_differing_keys,
             "merkle_diff": c_merkle_diff, "repair_key": c_repair_key}


def _run_all(names: dict, examples: int = 30) -> dict[str, str]:
    failed = {}
    for test, (func, args, kwargs) in checks.SELF_CHECK.items():
        kwargs = dict(kwargs)
        if "examples" in kwargs:
            kwargs["examples"] = examples
        try:
            getattr(checks, func)(*[names[a] for a in args], **kwargs)
        except GradingFailure as failure:
            failed[test] = str(failure)
    return failed


def test_correct_parts_written_another_way_pass_every_check():
    assert _run_all(DIFFERENT) == {}


def test_the_self_check_table_is_the_cells_files():
    assert list(checks.SELF_CHECK) == list(SPEC.parts)
    assert SPEC.points == 24


def test_the_adapters_leave_the_reference_cluster_as_it_was():
    """The reference's own parts, in the students' form, through the adapters: the same trace
    as the reference node, on the fault workload and the wipe story."""
    adapted = checks.student_ae_parts(*checks.reference_parts_in_student_form(), _trusted=True)
    for seed in (41, 42):
        plain = scenarios.fault_workload(Parts(), seed)[1]
        through = scenarios.fault_workload(adapted, seed)[1]
        assert through.sim.trace.text() == plain.sim.trace.text()
    assert scenarios.wipe_story(adapted).cluster.sim.trace.text() == \
        scenarios.wipe_story().cluster.sim.trace.text()


# -- the classic mistakes -------------------------------------------------------------------------

def stops_a_level_early():
    """The walk stops at the leaves' parents and reads their indices as leaves."""
    def merkle_diff(a, b):
        level, hashes, rounds, nodes = 0, 1, 1, [0]
        while True:
            differ = [i for i in nodes if a.node_hash(level, i) != b.node_hash(level, i)]
            if not differ or level >= a.depth - 1:
                break
            nodes = [c for i in differ for c in (2 * i, 2 * i + 1)]
            hashes, rounds, level = hashes + len(nodes), rounds + 1, level + 1
        keys = []
        for leaf in differ:
            keys += c_differing_keys(a.leaf_entries(leaf), b.leaf_entries(leaf))
        return {"keys": sorted(keys), "hashes": hashes, "rounds": rounds}
    return {"merkle_diff": merkle_diff}


def forgets_deletes():
    """remove drops the key but never redoes the hashes."""
    class Tree(CTree):
        def remove(self, key):
            self.node_hash(0, 0)
            self.keys.pop(key, None)
    return {"MerkleTree": Tree}


def overwrites():
    """The repair keeps what it received (its own versions when it received none)."""
    def repair_key(mine, theirs, siblings):
        return (list(theirs) or list(mine)), set(siblings) != set(theirs)
    return {"repair_key": repair_key}


def keys_only_hash():
    """The leaf hash ignores the digests."""
    class Tree(CTree):
        def update(self, key, digest):
            super().update(key, "00")

        def leaf_entries(self, index):
            return super().leaf_entries(index)
    return {"MerkleTree": Tree}


def always_sends_back():
    def repair_key(mine, theirs, siblings):
        return list(siblings), True
    return {"repair_key": repair_key}


#: mistake -> (what it replaces, the test cells it must lose)
MISTAKES = {
    "diff stops a level early": (stops_a_level_early, {
        "the_diff_finds_exactly_the_differing_keys_and_its_cost"}),
    "update forgets deletes": (forgets_deletes, {
        "updates_and_deletes_keep_every_hash_current",
        "cluster_with_your_anti_entropy_parts_matches_the_reference"}),
    "repair overwrites": (overwrites, {
        "repair_keeps_the_reconciled_siblings_and_never_overwrites",
        "cluster_with_your_anti_entropy_parts_matches_the_reference"}),
    "leaf hash over keys only": (keys_only_hash, {
        "a_key_lives_in_the_leaf_of_its_position", "every_node_hashes_its_children_by_the_formula",
        "updates_and_deletes_keep_every_hash_current", "the_diff_descends_only_where_hashes_differ",
        "the_diff_finds_exactly_the_differing_keys_and_its_cost",
        "cluster_with_your_anti_entropy_parts_matches_the_reference",
        "a_wiped_replica_is_rebuilt_by_your_anti_entropy"}),
    "repair always sends back": (always_sends_back, {
        "repair_sends_back_only_what_the_other_side_lacks",
        "cluster_with_your_anti_entropy_parts_matches_the_reference"}),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_classic_mistake_loses_the_points_of_the_promises_it_breaks(mistake):
    make, lost = MISTAKES[mistake]
    names = dict(DIFFERENT)
    names.update(make())
    failed = _run_all(names)
    assert set(failed) == lost
    for test, report in failed.items():
        invariant = test.replace("_", "-")
        assert report.startswith(f"{invariant}: ")          # the promise, by name
        assert "seed " in report and "smallest failing input" in report
        assert "expected:" in report and "got:" in report
    assert sum(SPEC.parts[t] for t in lost) < SPEC.points


def test_a_failure_names_the_input_and_says_why():
    names = dict(DIFFERENT, **stops_a_level_early())
    with pytest.raises(GradingFailure) as info:
        checks.check_merkle_diff(names["MerkleTree"], names["merkle_diff"], seed=4105, examples=40)
    text = str(info.value)
    assert "merkle_diff(a, b)" in text and "seed 4105: replay with grading.check_merkle_diff" in text


# -- the measurements and the stories -------------------------------------------------------------

def test_one_differing_leaf_costs_exactly_2d_plus_1_and_d_leaves_about_2d_log2_l_over_d():
    depth = 10
    rows = scenarios.cost_curve(checks.ReferenceTree, checks.reference_merkle_diff, depth=depth,
                                keys=8000, trials=3, seed=1)
    assert rows[0].d == 1 and rows[0].hashes == 2 * depth + 1
    L = 1 << depth
    for row in rows:
        if 1 < row.d <= L // 16:
            assert abs(row.hashes - row.formula) <= 0.1 * row.formula, row
    assert rows[-1].hashes == 2 * L - 1                     # every node differs
    assert rows[-1].merkle_total > rows[-1].full_sync > rows[0].merkle_total


def test_depth_trades_hashes_for_leaf_entries():
    rows = scenarios.depth_tradeoff((6, 10, 14), keys=20_000, differences=10, seed=1)
    assert [r.hashes for r in rows] == sorted(r.hashes for r in rows)
    assert [r.entries for r in rows] == sorted((r.entries for r in rows), reverse=True)
    assert rows[0].rounds == 7 and rows[-1].rounds == 15


def test_a_wiped_node_is_rebuilt_within_its_ranges_rounds_and_costs_more_than_copying():
    story = scenarios.wipe_story()
    assert story.missing[0][1] == story.replicated > 0 and story.missing[-1][1] == 0
    assert story.rounds is not None and story.rounds <= story.ranges
    assert story.held == story.replicated
    assert story.bytes > story.copy_bytes          # everything differs: copying is cheaper


def test_a_keys_only_tree_never_repairs_a_stale_replica():
    good = scenarios.stale_replica_story()
    assert good["before"]["C"] == ['["book"]'] and good["agree"] and good["repaired"] >= 1

    class KeysOnly(CTree):
        def update(self, key, digest):
            super().update(key, "00")
    bad = scenarios.stale_replica_story(checks.student_ae_parts(
        KeysOnly, c_diff_level, c_differing_keys, c_repair_key, _trusted=True))
    assert not bad["agree"] and bad["repaired"] == 0 and bad["after"]["C"] == ['["book"]']


def test_a_rank_shaped_tree_degenerates_to_a_full_sync():
    names = [f"user:{i}" for i in range(1000)]
    missing = min(names, key=key_hash)

    def pair(cls):
        a, b = cls(0, 0, 8), cls(0, 0, 8)
        for n in names:
            a.update(n, "0a")
            if n != missing:
                b.update(n, "0a")
        return a, b
    fixed = scenarios.diff_rounds(*pair(CTree), c_diff_level)
    ranked = scenarios.diff_rounds(*pair(scenarios.RankShapedTree), c_diff_level)
    assert len(fixed[-1]["differing"]) == 1 and fixed[-1]["hashes"] == 2 * 8 + 1
    assert len(ranked[-1]["differing"]) > 128 and ranked[-1]["hashes"] > 10 * fixed[-1]["hashes"]
    assert ranked[-1]["keys"] == fixed[-1]["keys"] == [missing]


def test_pairwise_exchange_spreads_within_ceil_log2_n_rounds():
    for n in (3, 8, 32):
        assert 1 <= scenarios.spread_rounds(n, trials=50, seed=1) <= math.ceil(math.log2(n))


# -- the pictures ----------------------------------------------------------------------------------

def test_the_diff_widget_steps_down_one_level_a_round_and_ends_at_the_keys():
    from dynamo_lab.labs.lab4_anti_entropy.widgets import DiffStepsWidget
    a, b = CTree(0, 0, 6), CTree(0, 0, 6)
    for i in range(300):
        a.update(f"user:{i}", "0a")
        b.update(f"user:{i}", "0a" if i != 5 else "1b")
    w = DiffStepsWidget(a, b, c_diff_level)
    assert len(w.rounds) == 7 and [r["level"] for r in w.rounds] == list(range(7))
    assert all(len(r["differing"]) == 1 for r in w.rounds)
    for step in range(len(w.rounds)):
        w.step_slider.value = step
        assert f"round {step + 1}/7" in w.caption.value and w.error is None
    assert "user:5" in w.caption.value and w.rounds[-1]["hashes"] == 13
    gids = {x.get_gid() for x in w.figure.axes[0].get_children() if x.get_gid()}
    assert gids == {"merkle:differ", "merkle:same"}


def test_the_drawings_mark_what_they_show():
    from dynamo_lab.labs.lab4_anti_entropy.widgets import (draw_cost_curve, draw_depth_tradeoff,
                                                           draw_wipe_story)
    rows = scenarios.cost_curve(CTree, c_merkle_diff, depth=4, keys=200, trials=1, seed=1)
    gids = {x.get_gid() for x in draw_cost_curve(rows, 4).axes[0].get_children() if x.get_gid()}
    assert {"curve:hashes", "curve:formula", "curve:total", "point:2D+1"} <= gids
    depth = scenarios.depth_tradeoff((4, 6), keys=500, differences=3)
    gids = {x.get_gid() for x in draw_depth_tradeoff(depth).axes[0].get_children() if x.get_gid()}
    assert {"depth:hashes", "depth:entries", "depth:total"} <= gids
    fig = draw_wipe_story(scenarios.wipe_story(keys=30))
    assert "wipe:missing" in {x.get_gid() for x in fig.axes[0].get_children() if x.get_gid()}
