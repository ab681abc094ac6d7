"""Lab 4 through the whole grading pipeline (nbgrader autograde, the trusted checks, the
student's tree and diff in the sandbox, driving the reference cluster): the solution gets full
marks, the release zero, a correct tree written another way full marks, and each of the lab's
classic mistakes loses the points of the promises it breaks, with feedback that names the
promise, the smallest input, expected against got, and the seed."""

from __future__ import annotations

import pytest

from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest

LAB4 = "lab4_anti_entropy"
pytestmark = pytest.mark.slow


def stops_a_level_early() -> dict:
    """merkle_diff stops at the leaves' parents and reads their indices as leaves."""
    return fx.replace_in(fx.answered(LAB4), "diff", "while differing and level < a.depth:",
                         "while differing and level < a.depth - 1:")


def forgets_deletes() -> dict:
    """remove drops the key from its bucket but never redoes the hashes."""
    return fx.replace_in(fx.answered(LAB4), "merkle_tree",
                         "del self.buckets[leaf][key]\n            self.rehash(leaf)",
                         "del self.buckets[leaf][key]")


def overwrites() -> dict:
    """The repair keeps what it received instead of the reconciled siblings."""
    return fx.replace_in(fx.answered(LAB4), "repair",
                         "return list(siblings), set(siblings) != set(theirs)",
                         "return list(theirs) or list(mine), set(siblings) != set(theirs)")


DIFFERENT_TREE = '''
class MerkleTree:
    """Sparse and lazy: a dict of the non-empty subtrees' hashes, redone on the next read for
    the leaves changed since (each leaf's path once)."""

    def __init__(self, start, end, depth):
        self.start, self.depth = start, depth
        self.width = (end - start) % RING_SIZE or RING_SIZE
        self.entries = {}          # key -> (leaf, digest)
        self.by_leaf = {}          # leaf -> set of keys
        self.known = {}            # (level, index) -> hash, non-empty subtrees only
        self.stale = set()
        self.blank = [hashlib.sha256(b"[]").hexdigest()]
        while len(self.blank) <= depth:
            self.blank.append(hashlib.sha256(bytes.fromhex(self.blank[-1]) * 2).hexdigest())

    def update(self, key, digest):
        leaf = (key_hash(key) - self.start - 1) % RING_SIZE * 2 ** self.depth // self.width
        self.entries[key] = (leaf, digest)
        self.by_leaf.setdefault(leaf, set()).add(key)
        self.stale.add(leaf)

    def remove(self, key):
        if key in self.entries:
            leaf, _ = self.entries.pop(key)
            self.by_leaf[leaf].discard(key)
            self.stale.add(leaf)

    def leaf_entries(self, index):
        return {k: self.entries[k][1] for k in sorted(self.by_leaf.get(index, ()))}

    def node_hash(self, level, index):
        for leaf in sorted(self.stale):
            pairs = sorted([k, d] for k, d in self.leaf_entries(leaf).items())
            if pairs:
                text = json.dumps(pairs, separators=(",", ":"))
                self.known[(self.depth, leaf)] = hashlib.sha256(text.encode()).hexdigest()
            else:
                self.known.pop((self.depth, leaf), None)
            node = leaf
            for up in reversed(range(self.depth)):
                node //= 2
                kids = [self.known.get((up + 1, c)) for c in (2 * node, 2 * node + 1)]
                if kids[0] is None and kids[1] is None:
                    self.known.pop((up, node), None)
                else:
                    blank = self.blank[self.depth - up - 1]
                    both = bytes.fromhex(kids[0] or blank) + bytes.fromhex(kids[1] or blank)
                    self.known[(up, node)] = hashlib.sha256(both).hexdigest()
        self.stale.clear()
        return self.known.get((level, index), self.blank[self.depth - level])
'''


def written_differently() -> dict:
    """A correct tree written another way (sparse, lazy): full marks."""
    return fx.set_source(fx.answered(LAB4), "merkle_tree", DIFFERENT_TREE)


WRONG = {"stops-a-level-early": (LAB4, stops_a_level_early),
         "forgets-deletes": (LAB4, forgets_deletes),
         "overwrites": (LAB4, overwrites),
         "written-differently": (LAB4, written_differently)}

#: student -> (tests that must score 0, tests that must keep their points)
BROKEN = {
    "stops-a-level-early": (
        ["the_diff_finds_exactly_the_differing_keys_and_its_cost"],
        ["the_diff_descends_only_where_hashes_differ", "updates_and_deletes_keep_every_hash_current",
         "cluster_with_your_anti_entropy_parts_matches_the_reference"]),
    "forgets-deletes": (
        ["updates_and_deletes_keep_every_hash_current",
         "cluster_with_your_anti_entropy_parts_matches_the_reference"],
        ["a_key_lives_in_the_leaf_of_its_position", "every_node_hashes_its_children_by_the_formula",
         "a_wiped_replica_is_rebuilt_by_your_anti_entropy"]),
    "overwrites": (
        ["repair_keeps_the_reconciled_siblings_and_never_overwrites",
         "cluster_with_your_anti_entropy_parts_matches_the_reference"],
        ["repair_sends_back_only_what_the_other_side_lacks",
         "a_wiped_replica_is_rebuilt_by_your_anti_entropy"]),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    return fx.shared_once(tmp_path_factory, request, "lab4-grading",
                          lambda work: fx.grade_lab(work, LAB4, WRONG))


def _row(graded, student):
    found = [r for r in graded["rows"] if r["student"] == student and r["lab"] == LAB4]
    assert found, f"{student} was not graded; problems: {graded['problems']}"
    return found[0]


def test_the_solution_and_a_tree_written_differently_get_full_marks_and_the_release_zero(graded):
    assert graded["problems"] == []
    assert _row(graded, "solution")["score"] == graded["max"] == fx.POINTS[LAB4] == 24
    assert _row(graded, "written-differently")["score"] == 24
    assert _row(graded, "release")["score"] == 0
    assert _row(graded, "solution")["flags"] == [] and _row(graded, "release")["flags"] == []


@pytest.mark.parametrize("student", sorted(BROKEN))
def test_each_classic_mistake_loses_the_points_of_the_promise_it_breaks(graded, student):
    zero, kept = BROKEN[student]
    tests = graded["scores"][student][LAB4]["tests"]
    assert {t: tests[t] for t in zero} == {t: 0.0 for t in zero}
    assert all(tests[t] > 0 for t in kept), tests
    assert _row(graded, student)["score"] < graded["max"]


def test_feedback_names_the_promise_the_input_expected_got_and_the_seed(graded):
    import html
    import re
    page = graded["pages"][f"stops-a-level-early/{LAB4}/{fx.NOTEBOOK[LAB4]}.html"]
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "the-diff-finds-exactly-the-differing-keys-and-its-cost" in text
    assert "smallest failing input: a = MerkleTree(" in text and "merkle_diff(a, b)" in text
    assert "expected: {'keys': [" in text
    assert "seed 4105: replay with grading.check_merkle_diff" in text
    assert "BEGIN HIDDEN TESTS" not in page
