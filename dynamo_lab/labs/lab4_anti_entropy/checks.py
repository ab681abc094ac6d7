"""Lab 4's checks: the student's Merkle tree, the level-by-level diff and its cost, the repair
of one key, and all of them inside a cluster.

The student's parts are plain data in and out (so that they cross the grading sandbox):

* ``MerkleTree(start, end, depth)`` over the key range ``(start, end]`` of the ring (``start
  == end``: the whole ring), with ``update(key, digest)``, ``remove(key)``,
  ``node_hash(level, index)`` (hex) and ``leaf_entries(index)`` (``{key: digest}``);
* ``diff_level(tree, level, remote_hashes)`` -> ``(differing, reply)`` and
  ``merkle_diff(a, b)`` -> ``{"keys": [...], "hashes": int, "rounds": int}`` on the
  student's own trees; ``differing_keys(mine, theirs)`` -> sorted keys;
* ``repair_key(mine, theirs, siblings)`` -> ``(keep, send_back)``, versions as *labels*
  (:func:`~dynamo_lab.grading.labels.version_label`).

The adapters (``student_*``, all :func:`~dynamo_lab.shipping.recipe`) plug them into the
reference node through :class:`~dynamo_lab.Parts`; :func:`student_parts` plugs them all.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from ...errors import ConfigError
from ...grading.failures import DEFAULT_BUDGET_S, STATE, Expected, Mismatch
from ...grading.harness import (Context, describe_exc, hypothesis_run, run_check, same_trace,
                                scope_of, start_check)
from ...grading.labels import Labels, sample_versions
from ...shipping import recipe

__all__ = [
    "student_merkle_tree", "student_diff_level", "student_differing_keys", "student_repair_key",
    "student_ae_parts", "check_tree_leaves", "check_tree_hashes", "check_tree_updates",
    "check_diff_level", "check_merkle_diff", "check_differing_keys", "check_repair_keeps",
    "check_repair_sends", "check_anti_entropy_cluster", "check_wipe_story",
]

#: The student's parts, as the checks of the cluster take them (in this order).
PARTS = ("MerkleTree", "diff_level", "differing_keys", "repair_key")

#: What :func:`~dynamo_lab.grading.self_check` runs for each test cell (kept equal to the
#: cells file by ``tests/test_self_check.py``).
SELF_CHECK = {
    "a_key_lives_in_the_leaf_of_its_position":
        ("check_tree_leaves", ("MerkleTree",), {"seed": 4101, "examples": 80}),
    "every_node_hashes_its_children_by_the_formula":
        ("check_tree_hashes", ("MerkleTree",), {"seed": 4102, "examples": 80}),
    "updates_and_deletes_keep_every_hash_current":
        ("check_tree_updates", ("MerkleTree",), {"seed": 4103, "examples": 80}),
    "the_diff_descends_only_where_hashes_differ":
        ("check_diff_level", ("MerkleTree", "diff_level"), {"seed": 4104, "examples": 80}),
    "the_diff_finds_exactly_the_differing_keys_and_its_cost":
        ("check_merkle_diff", ("MerkleTree", "merkle_diff"), {"seed": 4105, "examples": 80}),
    "differing_keys_are_exactly_the_keys_whose_digests_differ":
        ("check_differing_keys", ("differing_keys",), {"seed": 4106, "examples": 120}),
    "repair_keeps_the_reconciled_siblings_and_never_overwrites":
        ("check_repair_keeps", ("repair_key",), {"seed": 4107, "examples": 120}),
    "repair_sends_back_only_what_the_other_side_lacks":
        ("check_repair_sends", ("repair_key",), {"seed": 4108, "examples": 120}),
    "a_wiped_replica_is_rebuilt_by_your_anti_entropy":
        ("check_wipe_story", PARTS, {"seed": 1}),
    "cluster_with_your_anti_entropy_parts_matches_the_reference":
        ("check_anti_entropy_cluster", PARTS, {"seed": 41}),
}

#: Keys the generated trees hold (a range keeps those whose hash falls in it).
POOL = tuple(f"user:{i}" for i in range(24))
DIGESTS = ("0a", "1b", "2c", "3d")


def _name(x: Any) -> str:
    return getattr(x, "__name__", "?")


# -- adapters -------------------------------------------------------------------------------------

class StudentTree:
    """What a node keeps for one key range when it uses the student's ``MerkleTree``: the
    student's tree (``inner``), asked through the interface the reference node uses
    (``update``, ``remove``, ``node_hash``, ``leaf_entries``, ``depth``, ``key_range``)."""

    def __init__(self, cls: Any, key_range, depth: int, scope):
        self.key_range, self.depth, self._scope = key_range, depth, scope
        with scope():
            self.inner = cls(key_range.start, key_range.end, depth)

    def update(self, key: str, digest: str) -> None:
        with self._scope():
            self.inner.update(key, digest)

    def remove(self, key: str) -> None:
        with self._scope():
            self.inner.remove(key)

    def node_hash(self, level: int, index: int) -> str:
        with self._scope():
            got = self.inner.node_hash(level, index)
        if not isinstance(got, str):
            raise ConfigError(f"your MerkleTree.node_hash({level}, {index}) returned {got!r}: "
                              f"return the hash as a hex str")
        return got

    def leaf_entries(self, index: int) -> dict:
        with self._scope():
            got = self.inner.leaf_entries(index)
        if not isinstance(got, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in got.items()):
            raise ConfigError(f"your MerkleTree.leaf_entries({index}) returned {got!r}: return "
                              f"a dict {{key: digest}}")
        return dict(got)

    @property
    def root(self) -> str:
        return self.node_hash(0, 0)


@recipe        # so that TcpCluster(parts=...) can make it again in each node process
def student_merkle_tree(tree_class: Any, *, _trusted: bool = False) -> Callable:
    """A ``Parts.merkle_tree``: each node keeps, per key range, the student's
    ``MerkleTree(start, end, depth)`` (wrapped in a :class:`StudentTree`)."""
    scope = scope_of(_trusted)

    def make(key_range, depth):
        return StudentTree(tree_class, key_range, depth, scope)

    make.__name__ = f"student_merkle_tree({_name(tree_class)})"
    return make


def _clean_level(got: Any, level: int, remote: Mapping) -> tuple[list, dict]:
    """The student's ``(differing, reply)`` as clean data, or ConfigError."""
    ok = isinstance(got, (tuple, list)) and len(got) == 2
    differing, reply = got if ok else (None, None)
    if not ok or isinstance(differing, (str, bytes)) or not isinstance(differing, Iterable) \
            or not isinstance(reply, Mapping):
        raise ConfigError(f"your diff_level returned {got!r}: return (differing, reply), a list "
                          f"of indices and a dict")
    differing = list(differing)
    if not all(isinstance(i, int) and i in remote for i in differing):
        raise ConfigError(f"your diff_level said {differing!r} differ at level {level}: only "
                          f"indices of the remote hashes given, {sorted(remote)}, can differ")
    return sorted(differing), dict(reply)


@recipe
def student_diff_level(diff_level: Callable, *, _trusted: bool = False) -> Callable:
    """A ``Parts.diff_level``: the student's ``diff_level(tree, level, remote_hashes)`` on the
    student's tree of the range (the ``inner`` of a :class:`StudentTree`)."""
    scope = scope_of(_trusted)

    def step(tree, level, remote_hashes):
        inner = tree.inner if isinstance(tree, StudentTree) else tree
        remote = dict(remote_hashes)
        with scope():
            got = diff_level(inner, level, remote)
        return _clean_level(got, level, remote)

    step.__name__ = f"student_diff_level({_name(diff_level)})"
    return step


@recipe
def student_differing_keys(differing_keys: Callable, *, _trusted: bool = False) -> Callable:
    """A ``Parts.differing_keys``: the student's ``differing_keys(mine, theirs)`` (two dicts
    ``{key: digest}``) names the keys to repair."""
    scope = scope_of(_trusted)

    def keys(mine, theirs):
        with scope():
            got = differing_keys(dict(mine), dict(theirs))
        if isinstance(got, (str, bytes)) or not isinstance(got, Iterable):
            raise ConfigError(f"your differing_keys returned {got!r}: return a list of keys")
        got = list(got)
        wrong = [k for k in got if k not in mine and k not in theirs]
        if wrong:
            raise ConfigError(f"your differing_keys named {wrong!r}, which neither side holds")
        return sorted(set(got))

    keys.__name__ = f"student_differing_keys({_name(differing_keys)})"
    return keys


def labels_of(*groups: Iterable) -> tuple[dict, list[list[str]]]:
    """Labels for the versions of one repair, unique per version: (label -> version, each
    group as labels)."""
    labels = Labels()
    shown = [labels.of(group) for group in groups]
    return labels.versions, shown


@recipe
def student_repair_key(repair_key: Callable, *, _trusted: bool = False) -> Callable:
    """A ``Parts.repair_key``: the student's ``repair_key(mine, theirs, siblings)`` on labels
    decides what a replica keeps of a key and whether it sends it back. Raises
    :class:`ConfigError` inside the cluster for a label that names no version given."""
    scope = scope_of(_trusted)

    def repair(mine, theirs, siblings):
        versions, (m, t, s) = labels_of(mine, theirs, siblings)
        with scope():
            got = repair_key(list(m), list(t), list(s))
        ok = isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[1], (bool, int)) \
            and not isinstance(got[0], (str, bytes)) and isinstance(got[0], Iterable)
        if not ok:
            raise ConfigError(f"your repair_key returned {got!r}: return (keep, send_back), a "
                              f"list of labels and a bool")
        keep = list(got[0])
        unknown = [x for x in keep if x not in versions]
        if unknown:
            raise ConfigError(f"your repair_key kept {unknown!r}, which is none of the versions "
                              f"given ({sorted(versions)})")
        kept = {versions[x].digest(): versions[x] for x in keep}
        return [kept[d] for d in sorted(kept)], bool(got[1])

    repair.__name__ = f"student_repair_key({_name(repair_key)})"
    return repair


def student_ae_parts(MerkleTree: Any = None, diff_level: Optional[Callable] = None,
                     differing_keys: Optional[Callable] = None,
                     repair_key: Optional[Callable] = None, *, _trusted: bool = False,
                     **others):
    """A :class:`~dynamo_lab.Parts` with each of the student's anti-entropy parts given plugged
    in (the others stay the reference's); ``others`` sets further fields::

        parts = grading.student_ae_parts(MerkleTree, diff_level, differing_keys, repair_key)
        cluster = dl.SimCluster(nodes=5, seed=1, parts=parts)

    ``diff_level`` works on the trees of ``MerkleTree``: give both, or neither.
    """
    from ...node import Parts
    if (MerkleTree is None) != (diff_level is None):
        raise ConfigError("give student_ae_parts both MerkleTree and diff_level (your "
                          "diff_level reads your trees), or neither")
    fields = dict(others)
    if MerkleTree is not None:
        fields["merkle_tree"] = student_merkle_tree(MerkleTree, _trusted=_trusted)
        fields["diff_level"] = student_diff_level(diff_level, _trusted=_trusted)
    if differing_keys is not None:
        fields["differing_keys"] = student_differing_keys(differing_keys, _trusted=_trusted)
    if repair_key is not None:
        fields["repair_key"] = student_repair_key(repair_key, _trusted=_trusted)
    return Parts(**fields)


# -- the reference in the student's form (trusted: for expected values and tests) -------------

class ReferenceTree:
    """The reference's tree with the student's interface (``MerkleTree(start, end, depth)``)."""

    def __init__(self, start, end, depth):
        from ...merkle import MerkleTree
        from ...ring import KeyRange
        self.t = MerkleTree(KeyRange(start, end), depth)
        self.depth = depth

    def update(self, key, digest):
        self.t.update(key, digest)

    def remove(self, key):
        self.t.remove(key)

    def node_hash(self, level, index):
        return self.t.node_hash(level, index)

    def leaf_entries(self, index):
        return self.t.leaf_entries(index)


def reference_merkle_diff(a, b) -> dict:
    """The reference's :func:`~dynamo_lab.merkle_diff` in the student's form."""
    d = _ref_diff(a.t, b.t)
    return {"keys": list(d.keys), "hashes": d.hashes_exchanged, "rounds": d.rounds}


def _ref_diff(a, b):
    from ...merkle import merkle_diff
    return merkle_diff(a, b)


def reference_repair_key(mine, theirs, siblings):
    """The reference's :func:`~dynamo_lab.node.exchange.repair_key` on labels."""
    keep = list(siblings)
    return keep, sorted(set(keep)) != sorted(set(theirs))


def reference_parts_in_student_form():
    from ...node.exchange import diff_level, differing_keys
    return ReferenceTree, diff_level, differing_keys, reference_repair_key


# -- generated trees -------------------------------------------------------------------------------

def _range_and_keys(draw) -> tuple[int, int, list[str]]:
    from hypothesis import strategies as st
    from ...hashing import key_hash
    from ...ring import KeyRange
    if draw(st.integers(0, 2)) == 0:
        return 0, 0, list(POOL)
    a, b = draw(st.lists(st.sampled_from(POOL), min_size=2, max_size=2, unique=True))
    start, end = key_hash(a), key_hash(b)
    rng = KeyRange(start, end)
    inside = [k for k in POOL if rng.contains(key_hash(k))]
    return start, end, inside


def _ops(draw, keys, n_max: int, deletes: bool, reads: bool, depth: int) -> list[tuple]:
    from hypothesis import strategies as st
    ops: list[tuple] = []
    for _ in range(draw(st.integers(0, n_max))):
        roll = draw(st.integers(0, 9))
        if deletes and roll < 3:
            ops.append(("remove", draw(st.sampled_from(keys))))
        elif reads and roll < 5:
            level = draw(st.integers(0, depth))
            ops.append(("read", level, draw(st.integers(0, (1 << level) - 1))))
        else:
            ops.append(("update", draw(st.sampled_from(keys)), draw(st.sampled_from(DIGESTS))))
    return ops


def _tree_strategy(deletes: bool, reads: bool):
    from hypothesis import strategies as st

    @st.composite
    def case(draw):
        depth = draw(st.integers(0, 4))
        start, end, keys = _range_and_keys(draw)
        return start, end, depth, _ops(draw, keys, 14, deletes, reads, depth)

    return case()


def _show_op(op: tuple) -> str:
    if op[0] == "update":
        return f"update({op[1]!r}, {op[2]!r})"
    if op[0] == "remove":
        return f"remove({op[1]!r})"
    return f"node_hash({op[1]}, {op[2]})"


def _built(start, end, depth, ops) -> str:
    head = f"MerkleTree({start}, {end}, depth={depth})" if start != end else \
        f"MerkleTree(0, 0, depth={depth}) (the whole ring)"
    return head + ("; then " + ", ".join(_show_op(o) for o in ops) if ops else "")


def _new_tree(ctx: Context, cls, start, end, depth, text):
    STATE.working_on = text
    tree, err = ctx.call(cls, start, end, depth)
    if err is not None:
        raise Mismatch(text, Expected("a tree"), describe_exc(err))
    return tree


def _apply(ctx: Context, tree, ref, ops, text, on_read: Optional[Callable] = None) -> None:
    for i, op in enumerate(ops):
        if op[0] == "update":
            ref.update(op[1], op[2])
            ctx.result(text, Expected("no error"), tree.update, op[1], op[2])
        elif op[0] == "remove":
            ref.remove(op[1])
            ctx.result(text, Expected("no error"), tree.remove, op[1])
        elif on_read is not None:
            on_read(i, op)


def _built_both(ctx: Context, MerkleTree: Any, case) -> tuple[str, Any, Any]:
    """The student's tree and the reference's, built over one range with the case's writes and
    deletes: (the input as text, the student's, the reference's)."""
    start, end, depth, ops = case
    text = _built(start, end, depth, ops)
    tree = _new_tree(ctx, MerkleTree, start, end, depth, text)
    ref = ReferenceTree(start, end, depth)
    _apply(ctx, tree, ref, ops, text)
    return text, tree, ref


def _hash_of(ctx, tree, level, index, text, want):
    got = ctx.result(text, want, tree.node_hash, level, index)
    return got


def _entries_of(ctx, tree, index, text, want):
    got = ctx.result(text, want, tree.leaf_entries, index)
    return dict(got) if isinstance(got, Mapping) else got


def _leaf_note(ref, got_entries: Any, want: dict, start, end, depth) -> str:
    from ...hashing import RING_SIZE, key_hash
    width = (end - start) % RING_SIZE or RING_SIZE
    if isinstance(got_entries, dict):
        for key in sorted(set(got_entries) ^ set(want)):
            leaf = ref.t.leaf_of(key)
            offset = (key_hash(key) - start - 1) % RING_SIZE
            return (f"{key!r} is at offset {offset} of a range of width {width}: its leaf is "
                    f"{offset} * 2**{depth} // {width} = {leaf}")
    return "a leaf holds {key: digest} for exactly the keys of its bucket"


def check_tree_leaves(MerkleTree: Any, *, seed: int = 4101, examples: int = 100,
                      budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-key-lives-in-the-leaf-of-its-position``: after writes, every leaf's entries
    are the reference's."""
    __tracebackhide__ = True
    ctx = start_check("a-key-lives-in-the-leaf-of-its-position", "check_tree_leaves",
                      "MerkleTree", seed, MerkleTree)

    def body(case):
        start, end, depth, ops = case
        text, tree, ref = _built_both(ctx, MerkleTree, case)
        for i in range(1 << depth):
            want = ref.leaf_entries(i)
            got = _entries_of(ctx, tree, i, f"{text}; leaf_entries({i})", want)
            if got != want:
                raise Mismatch(f"{text}; leaf_entries({i})", want, got,
                               _leaf_note(ref, got, want, start, end, depth))

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _tree_strategy(False, False),
                                                    examples, body))


def _hash_note(level: int, depth: int) -> str:
    if level == depth:
        return ("a leaf hashes sha256(json.dumps([[key, digest], ...] sorted by key, "
                "separators=(',', ':'))), hex; an empty leaf is the same formula on []")
    return ("an inner node hashes sha256(bytes.fromhex(left) + bytes.fromhex(right)), hex, "
            "its children being 2i and 2i + 1 one level down (an empty subtree too)")


def _compare_all(ctx, tree, ref, depth, text) -> None:
    for level in range(depth, -1, -1):              # the leaves first: closest to the cause
        for i in range(1 << level):
            want = ref.node_hash(level, i)
            shown = f"{text}; node_hash({level}, {i})"
            got = _hash_of(ctx, tree, level, i, shown, want)
            if got != want:
                raise Mismatch(shown, want, got, _hash_note(level, depth))


def check_tree_hashes(MerkleTree: Any, *, seed: int = 4102, examples: int = 100,
                      budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``every-node-hashes-its-children-by-the-formula``: after writes, every node's
    hash is the reference's."""
    __tracebackhide__ = True
    ctx = start_check("every-node-hashes-its-children-by-the-formula", "check_tree_hashes",
                      "MerkleTree", seed, MerkleTree)

    def body(case):
        text, tree, ref = _built_both(ctx, MerkleTree, case)
        _compare_all(ctx, tree, ref, case[2], text)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _tree_strategy(False, False),
                                                    examples, body))


def check_tree_updates(MerkleTree: Any, *, seed: int = 4103, examples: int = 100,
                       budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``updates-and-deletes-keep-every-hash-current``: with overwrites, deletes
    (of present and absent keys) and reads in between, every hash read and, at the end, every
    hash and leaf is the reference's."""
    __tracebackhide__ = True
    ctx = start_check("updates-and-deletes-keep-every-hash-current", "check_tree_updates",
                      "MerkleTree", seed, MerkleTree)

    def body(case):
        start, end, depth, ops = case
        full = _built(start, end, depth, ops)
        tree = _new_tree(ctx, MerkleTree, start, end, depth, full)
        ref = ReferenceTree(start, end, depth)

        def on_read(i, op):
            text = _built(start, end, depth, ops[:i + 1])
            want = ref.node_hash(op[1], op[2])
            got = _hash_of(ctx, tree, op[1], op[2], text, want)
            if got != want:
                last = next((o for o in reversed(ops[:i]) if o[0] != "read"), None)
                note = ("this hash is stale: a write or a delete must redo its leaf and every "
                        "node on the path to the root")
                if last and last[0] == "remove":
                    note = f"after remove({last[1]!r}) the tree must hash as if it never held it"
                raise Mismatch(text, want, got, note)

        _apply(ctx, tree, ref, ops, full, on_read)
        for i in range(1 << depth):
            want = ref.leaf_entries(i)
            got = _entries_of(ctx, tree, i, f"{full}; leaf_entries({i})", want)
            if got != want:
                raise Mismatch(f"{full}; leaf_entries({i})", want, got,
                               "a removed key leaves its leaf; an overwrite keeps only the "
                               "latest digest")
        _compare_all(ctx, tree, ref, depth, full)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _tree_strategy(True, True),
                                                    examples, body))


# -- B: the diff -----------------------------------------------------------------------------------

def _pair_strategy(with_level: bool):
    """Two replicas of one range: a shared history, then each side's own writes."""
    from hypothesis import strategies as st

    @st.composite
    def case(draw):
        depth = draw(st.integers(0, 4))
        start, end, keys = _range_and_keys(draw)
        base = _ops(draw, keys, 10, False, False, depth)
        a = base + _ops(draw, keys, 4, False, False, depth)
        b = base + _ops(draw, keys, 4, False, False, depth)
        if not with_level:
            return start, end, depth, a, b, None, None
        level = draw(st.integers(0, depth))
        parents = draw(st.sets(st.integers(0, max(0, (1 << level) - 1)), min_size=1, max_size=4)) \
            if level else {0}
        return start, end, depth, a, b, level, sorted(i for i in parents if i < (1 << level))

    return case()


def _two_trees(ctx, cls, start, end, depth, a_ops, b_ops):
    text = (f"a = {_built(start, end, depth, a_ops)}; "
            f"b = {_built(start, end, depth, b_ops)}")
    a = _new_tree(ctx, cls, start, end, depth, text)
    b = _new_tree(ctx, cls, start, end, depth, text)
    ra, rb = ReferenceTree(start, end, depth), ReferenceTree(start, end, depth)
    _apply(ctx, a, ra, a_ops, text)
    _apply(ctx, b, rb, b_ops, text)
    return text, a, b, ra, rb


def check_diff_level(MerkleTree: Any, diff_level: Callable, *, seed: int = 4104,
                     examples: int = 100, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``the-diff-descends-only-where-hashes-differ``: on b's hashes of some nodes at
    one level, ``diff_level(a, level, hashes)`` is the reference's (differing, reply)."""
    __tracebackhide__ = True
    from ...node.exchange import diff_level as reference
    ctx = start_check("the-diff-descends-only-where-hashes-differ", "check_diff_level",
                      "MerkleTree and diff_level", seed, MerkleTree, diff_level)

    def body(case):
        start, end, depth, a_ops, b_ops, level, nodes = case
        text, a, _b, ra, rb = _two_trees(ctx, MerkleTree, start, end, depth, a_ops, b_ops)
        remote = {i: rb.node_hash(level, i) for i in nodes}
        text = f"{text}; diff_level(a, {level}, {{{', '.join(f'{i}: b.node_hash({level}, {i})' for i in nodes)}}})"
        want_d, want_r = reference(ra.t, level, remote)
        want = (want_d, want_r)
        got = ctx.result(text, want, diff_level, a, level, dict(remote))
        ok = isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[1], Mapping) \
            and isinstance(got[0], Iterable) and not isinstance(got[0], (str, bytes))
        if not ok:
            raise Mismatch(text, want, got, "return (differing, reply): a list of indices and "
                                            "a dict")
        got_d, got_r = sorted(got[0]), dict(got[1])
        if got_d != want_d:
            raise Mismatch(text, want, (got_d, got_r),
                           "differing: the indices given whose hash here is not the one given")
        if got_r != want_r:
            note = (f"at the leaves (level {depth}) the reply is the entries {{key: digest}} of "
                    f"the differing leaves" if level == depth else
                    "the reply holds the two children's hashes (level + 1, indices 2i and "
                    "2i + 1) of each differing node, and nothing of the nodes that agree")
            raise Mismatch(text, want, (got_d, got_r), note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _pair_strategy(True), examples, body))


def check_merkle_diff(MerkleTree: Any, merkle_diff: Callable, *, seed: int = 4105,
                      examples: int = 100, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``the-diff-finds-exactly-the-differing-keys-and-its-cost``: ``merkle_diff(a,
    b)`` gives the reference's keys, hashes exchanged and rounds."""
    __tracebackhide__ = True
    ctx = start_check("the-diff-finds-exactly-the-differing-keys-and-its-cost",
                      "check_merkle_diff", "MerkleTree and merkle_diff", seed, MerkleTree,
                      merkle_diff)

    def body(case):
        start, end, depth, a_ops, b_ops, _, _ = case
        text, a, b, ra, rb = _two_trees(ctx, MerkleTree, start, end, depth, a_ops, b_ops)
        text = f"{text}; merkle_diff(a, b)"
        want = reference_merkle_diff(ra, rb)
        got = ctx.result(text, want, merkle_diff, a, b)
        if not isinstance(got, Mapping) or not {"keys", "hashes", "rounds"} <= set(got):
            raise Mismatch(text, want, got, 'return {"keys": [...], "hashes": n, "rounds": r}')
        clean = {"keys": sorted(got["keys"]) if isinstance(got["keys"], Iterable)
                 and not isinstance(got["keys"], str) else got["keys"],
                 "hashes": got["hashes"], "rounds": got["rounds"]}
        if clean != want:
            if clean["keys"] != want["keys"]:
                note = ("the keys are found in the differing *leaves* (level depth): a walk that "
                        "stops above them reads the wrong buckets" if clean["rounds"] != want["rounds"]
                        else "keys: held by one side only, or by both with different digests")
            elif clean["hashes"] != want["hashes"]:
                note = "hashes: 1 for the roots, then 2 for each differing inner node"
            else:
                note = ("rounds: the levels visited, the root's included (1 when the roots agree, "
                        "depth + 1 when a leaf differs)")
            raise Mismatch(text, want, clean, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _pair_strategy(False), examples, body))


def check_differing_keys(differing_keys: Callable, *, seed: int = 4106, examples: int = 150,
                         budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``differing-keys-are-exactly-the-keys-whose-digests-differ``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    from ...node.exchange import differing_keys as reference
    ctx = start_check("differing-keys-are-exactly-the-keys-whose-digests-differ",
                      "check_differing_keys", "differing_keys", seed, differing_keys)
    side = st.dictionaries(st.sampled_from(POOL[:8]), st.sampled_from(DIGESTS), max_size=6)

    def body(case):
        mine, theirs = case
        want = reference(mine, theirs)
        text = f"differing_keys(mine={mine!r}, theirs={theirs!r})"
        got = ctx.result(text, want, differing_keys, dict(mine), dict(theirs))
        got_list = list(got) if isinstance(got, Iterable) and not isinstance(got, str) else got
        if got_list != want:
            extra = sorted(set(got_list) - set(want)) if isinstance(got_list, list) else []
            note = (f"{extra[0]!r} has the same digest on both sides: nothing to repair" if extra
                    else "every key held by one side only, or with different digests, sorted")
            raise Mismatch(text, want, got_list, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, st.tuples(side, side), examples, body))


# -- C: the repair ---------------------------------------------------------------------------------

def _repair_strategy():
    from hypothesis import strategies as st
    pool = sample_versions()

    @st.composite
    def case(draw):
        from ...versions import reconcile
        held = st.lists(st.sampled_from(range(len(pool))), max_size=3, unique=True)
        mine = reconcile(pool[i] for i in draw(held))
        theirs = reconcile(pool[i] for i in draw(held))
        if not mine and not theirs:
            mine = [pool[0]]
        return mine, theirs

    return case()


def _repair_case(ctx, repair_key, case):
    from ...versions import reconcile
    mine, theirs = case
    siblings = reconcile(list(mine) + list(theirs))
    _, (m, t, s) = labels_of(mine, theirs, siblings)
    text = f"repair_key(mine={m!r}, theirs={t!r}, siblings={s!r})"
    want = reference_repair_key(m, t, s)
    got = ctx.result(text, want, repair_key, list(m), list(t), list(s))
    ok = isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[0], Iterable) \
        and not isinstance(got[0], str)
    if not ok:
        raise Mismatch(text, want, got, "return (keep, send_back): a list of labels and a bool")
    return text, m, t, s, want, (list(got[0]), got[1])


def check_repair_keeps(repair_key: Callable, *, seed: int = 4107, examples: int = 150,
                       budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``repair-keeps-the-reconciled-siblings-and-never-overwrites``: what is kept is
    the siblings (any order)."""
    __tracebackhide__ = True
    ctx = start_check("repair-keeps-the-reconciled-siblings-and-never-overwrites",
                      "check_repair_keeps", "repair_key", seed, repair_key)

    def body(case):
        text, m, t, s, want, got = _repair_case(ctx, repair_key, case)
        if sorted(set(got[0])) != sorted(s) or len(got[0]) != len(set(got[0])):
            lost = sorted(set(s) - set(got[0]))
            note = (f"{lost[0]!r} is one of the siblings: a repair that keeps only what it "
                    f"received loses the writes only this replica had" if lost and lost[0] in m
                    else "keep the siblings: every version no other supersedes, each once")
            raise Mismatch(text, s, got[0], note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _repair_strategy(), examples, body))


def check_repair_sends(repair_key: Callable, *, seed: int = 4108, examples: int = 150,
                       budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``repair-sends-back-only-what-the-other-side-lacks``."""
    __tracebackhide__ = True
    ctx = start_check("repair-sends-back-only-what-the-other-side-lacks", "check_repair_sends",
                      "repair_key", seed, repair_key)

    def body(case):
        text, m, t, s, want, got = _repair_case(ctx, repair_key, case)
        if bool(got[1]) != want[1] or not isinstance(got[1], (bool, int)):
            note = ("the other side holds exactly the siblings already: sending them again is a "
                    "message it does not need" if not want[1] else
                    "the other side lacks some of the siblings (or holds a superseded version): "
                    "send them back, or the replicas never agree")
            raise Mismatch(text, Expected(f"send_back={want[1]}"),
                           Expected(f"send_back={got[1]!r}"), note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _repair_strategy(), examples, body))


# -- D: inside a cluster ---------------------------------------------------------------------------

def _cluster_context(invariant: str, func: str, seed: int, parts: Sequence[Any]) -> Context:
    return start_check(invariant, func, "anti-entropy parts", seed, *parts,
                       replay=f"grading.{func}(<your MerkleTree, diff_level, differing_keys, "
                              f"repair_key>, seed={seed})")


def _cluster_log(parts, seed: int):
    from .scenarios import fault_workload
    marks: list = []
    log, cluster = fault_workload(parts, seed, marks=marks)
    return log, cluster.sim.trace.lines(), marks


def check_anti_entropy_cluster(MerkleTree: Any, diff_level: Callable, differing_keys: Callable,
                               repair_key: Callable, *, seed: int = 41,
                               budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``cluster-with-your-anti-entropy-parts-matches-the-reference``: the same seeded
    workload (:func:`~.scenarios.fault_workload`) with the student's parts and with the
    reference's gives the same trace and the same data."""
    __tracebackhide__ = True
    parts = (MerkleTree, diff_level, differing_keys, repair_key)
    ctx = _cluster_context("cluster-with-your-anti-entropy-parts-matches-the-reference",
                           "check_anti_entropy_cluster", seed, parts)
    from ...node import Parts
    same_trace(ctx, budget_s, lambda p: _cluster_log(p, seed), Parts(), student_ae_parts(*parts),
              f"5 nodes, N=3, read repair off, writes, crashes, a partition, lost messages and "
              f"a wiped disk; seed={seed}")


def _wipe_log(parts, seed: int):
    from .scenarios import wipe_story
    marks: list = []
    story = wipe_story(parts, seed, marks=marks)
    log = [(f"T={t:.0f} s: keys C is missing", m) for t, m in story.missing]
    log.append(("what C holds at the end", story.held))
    return log, story.cluster.sim.trace.lines(), marks


def check_wipe_story(MerkleTree: Any, diff_level: Callable, differing_keys: Callable,
                     repair_key: Callable, *, seed: int = 1,
                     budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-wiped-replica-is-rebuilt-by-your-anti-entropy``: the wipe story
    (:func:`~.scenarios.wipe_story`) with the student's parts gives the reference's keys
    missing at every second, and its trace."""
    __tracebackhide__ = True
    parts = (MerkleTree, diff_level, differing_keys, repair_key)
    ctx = _cluster_context("a-wiped-replica-is-rebuilt-by-your-anti-entropy",
                           "check_wipe_story", seed, parts)
    from ...node import Parts
    same_trace(ctx, budget_s, lambda p: _wipe_log(p, seed), Parts(), student_ae_parts(*parts),
              f"5 nodes, N=3, C's disk wiped, hinted handoff and read repair off; seed={seed}")
