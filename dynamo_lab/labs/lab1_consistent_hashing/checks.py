"""Lab 1's checks: consistent hashing."""

from __future__ import annotations

import contextlib
import math
import random
from typing import Callable, Iterable, Mapping, Sequence

from ...errors import ConfigError
from ...hashing import RING_SIZE, key_hash
from ...shipping import recipe
from ...grading.failures import DEFAULT_BUDGET_S, STATE, Expected, Mismatch
from ...grading.harness import (Context, describe_exc, differential, hypothesis_run, run_check,
                                start_check, student_scope)

__all__ = [
    "StudentRingAdapter", "student_ring_factory", "check_successor_index", "check_ring_tokens",
    "check_coordinator", "check_preference_list_distinct", "check_preference_list_order",
    "check_membership_changes", "check_bad_requests", "check_ownership",
    "check_moved_fraction", "check_ring_in_cluster",
]


#: What :func:`~dynamo_lab.grading.self_check` runs for each test cell: the check its hidden
#: part calls, the notebook names it is given and its arguments (the public seeds). Kept equal
#: to the cells file by ``tests/test_self_check.py``.
SELF_CHECK = {
    "successor_is_first_token_at_or_after_hash":
        ("check_successor_index", ("successor_index",), {"seed": 1101, "examples": 120}),
    "tokens_are_key_hash_of_node_and_index":
        ("check_ring_tokens", ("ConsistentHashRing",), {"seed": 1202, "examples": 40}),
    "coordinator_owns_first_token_clockwise":
        ("check_coordinator", ("ConsistentHashRing",), {"seed": 1203, "examples": 100}),
    "preference_list_has_n_distinct_physical_nodes":
        ("check_preference_list_distinct", ("ConsistentHashRing",), {"seed": 1204, "examples": 80}),
    "preference_list_walks_clockwise_from_coordinator":
        ("check_preference_list_order", ("ConsistentHashRing",), {"seed": 1205, "examples": 80}),
    "add_and_remove_node_keep_the_ring_consistent":
        ("check_membership_changes", ("ConsistentHashRing",), {"seed": 1206, "examples": 40}),
    "bad_requests_raise_value_error":
        ("check_bad_requests", ("ConsistentHashRing",), {"seed": 1207}),
    "ownership_is_each_nodes_share_of_the_ring":
        ("check_ownership", ("ConsistentHashRing",), {"seed": 1208, "examples": 60}),
    "cluster_with_your_ring_matches_the_reference":
        ("check_ring_in_cluster", ("ConsistentHashRing",), {"seed": 7}),
    "moved_fraction_counts_keys_whose_replicas_change":
        ("check_moved_fraction", ("moved_fraction",), {"seed": 1209, "examples": 60}),
}

_NAMES = ("A", "B", "C", "D", "E", "F", "G")


class _ReferenceRing:
    """The reference ring behind the students' API (trusted: used for expected values)."""

    def __init__(self, nodes: Iterable[str], vnodes: int = 8):
        from ...ring import Ring
        self._ring = Ring(list(nodes), vnodes)

    def tokens(self) -> list[tuple[int, str]]:
        return list(self._ring.tokens)

    def coordinator(self, key: str) -> str:
        return self._ring.coordinator(key)

    def preference_list(self, key: str, n: int) -> list[str]:
        return self._ring.preference_list(key, n)

    def add_node(self, node: str) -> None:
        self._ring.add_node(node)

    def remove_node(self, node: str) -> None:
        self._ring.remove_node(node)

    def ownership(self) -> dict[str, float]:
        return self._ring.ownership()


def _ring_strategies():
    from hypothesis import strategies as st

    @st.composite
    def ring_case(draw, min_nodes: int = 1, max_keys: int = 8):
        nodes = draw(st.lists(st.sampled_from(_NAMES), min_size=min_nodes, max_size=5, unique=True))
        vnodes = draw(st.integers(1, 6))
        # Keys named like tokens hash exactly onto a token: that is where off-by-ones live.
        on_token = st.sampled_from([f"{x}#{i}" for x in nodes for i in range(vnodes)])
        plain = st.text(alphabet="abckxyz0123:", min_size=1, max_size=6)
        keys = draw(st.lists(st.one_of(on_token, plain), min_size=1, max_size=max_keys))
        return nodes, vnodes, keys

    return ring_case


def _ring_input(nodes, vnodes, key=None, extra: str = "") -> str:
    text = f"nodes={list(nodes)!r}, vnodes={vnodes}"
    if key is not None:
        text += f", key={key!r}"
    return text + (", " + extra if extra else "")


def _on_token_note(nodes, vnodes, key) -> str:
    h = key_hash(key)
    for x in nodes:
        for i in range(vnodes):
            if key_hash(f"{x}#{i}") == h:
                return (f"key {key!r} hashes exactly onto node {x}'s token {i}; a token owns "
                        f"the hashes up to and including its own position")
    return ""


def _build_ring(ctx: Context, ring_class, nodes, vnodes, input_text: str):
    ring, err = ctx.call(ring_class, list(nodes), vnodes)
    if err is not None:
        raise Mismatch(input_text, Expected("a ring"), describe_exc(err))
    return ring


def check_successor_index(successor_index: Callable, *, seed: int = 1101, examples: int = 200,
                          budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``successor-is-first-token-at-or-after-hash``: ``successor_index(tokens, h)``
    is the index of the first token ``>= h`` in the sorted list ``tokens``, wrapping to 0; an
    empty list raises ``ValueError``."""
    __tracebackhide__ = True
    from bisect import bisect_left
    from hypothesis import strategies as st
    ctx = start_check("successor-is-first-token-at-or-after-hash", "check_successor_index",
                      "successor_index", seed, successor_index)

    @st.composite
    def case(draw):
        small = st.integers(0, 64)
        anywhere = st.integers(0, RING_SIZE - 1)
        tokens = sorted(set(draw(st.lists(st.one_of(small, anywhere), min_size=1, max_size=8))))
        near = [t + d for t in tokens for d in (-1, 0, 1) if 0 <= t + d < RING_SIZE]
        h = draw(st.one_of(st.sampled_from(near + [0, RING_SIZE - 1]), anywhere))
        return tokens, h

    def body(c):
        tokens, h = c
        text = f"tokens={tokens!r}, h={h!r}"
        want = bisect_left(tokens, h) % len(tokens)
        got = ctx.result(text, want, successor_index, list(tokens), h)
        if type(got) is not int or got != want:
            note = ""
            if h in tokens:
                note = "h equals a token: that token is the first one >= h"
            elif h > tokens[-1]:
                note = "h is past the last token: the walk wraps round to index 0"
            raise Mismatch(text, want, got, note)

    def run():
        hypothesis_run(ctx, case(), examples, body)
        ctx.raises_value_error("tokens=[], h=5", successor_index, [], 5, why="no tokens")

    run_check(ctx, budget_s, run)


def check_ring_tokens(ring_class: type, *, seed: int = 1202, examples: int = 60,
                      budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``tokens-are-key-hash-of-node-and-index``."""
    __tracebackhide__ = True
    ctx = start_check("tokens-are-key-hash-of-node-and-index", "check_ring_tokens", "ring class",
                      seed, ring_class)

    def body(c):
        nodes, vnodes, _keys = c
        text = _ring_input(nodes, vnodes)
        want = _ReferenceRing(nodes, vnodes).tokens()
        ring = _build_ring(ctx, ring_class, nodes, vnodes, text)
        got = ctx.result(text, want, lambda: ring.tokens())
        try:
            got_list = [(t, x) for t, x in got]
        except (TypeError, ValueError):
            raise Mismatch(text, want, got, "tokens() returns a list of (token, node) pairs") from None
        if got_list != want:
            note = ""
            if sorted(got_list) == want:
                note = "the right pairs, but not sorted by token"
            elif len(got_list) != len(want):
                note = f"{len(want)} tokens expected: vnodes={vnodes} for each of {len(nodes)} nodes"
            raise Mismatch(text, want, got_list, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _ring_strategies()(), examples, body))


def check_coordinator(ring_class: type, *, seed: int = 1203, examples: int = 120,
                      budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``coordinator-owns-first-token-clockwise``."""
    __tracebackhide__ = True
    ctx = start_check("coordinator-owns-first-token-clockwise", "check_coordinator", "ring class",
                      seed, ring_class)

    def body(c):
        nodes, vnodes, keys = c
        ref = _ReferenceRing(nodes, vnodes)
        ring = _build_ring(ctx, ring_class, nodes, vnodes, _ring_input(nodes, vnodes))
        for key in keys:
            text = _ring_input(nodes, vnodes, key)
            want = ref.coordinator(key)
            got = ctx.result(text, want, ring.coordinator, key)
            if got != want:
                raise Mismatch(text, want, got, _on_token_note(nodes, vnodes, key))

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _ring_strategies()(), examples, body))


def _check_preference_lists(ctx, ring_class, examples, exact: bool) -> None:
    def body(c):
        nodes, vnodes, keys = c
        ref = _ReferenceRing(nodes, vnodes)
        ring = _build_ring(ctx, ring_class, nodes, vnodes, _ring_input(nodes, vnodes))
        for key in keys:
            for n in range(1, len(nodes) + 1):
                text = _ring_input(nodes, vnodes, key, f"n={n}")
                want = ref.preference_list(key, n)
                got = ctx.result(text, want, ring.preference_list, key, n)
                try:
                    got = list(got)
                except TypeError:
                    raise Mismatch(text, want, got, "preference_list returns a list") from None
                if exact:
                    if got != want:
                        note = _on_token_note(nodes, vnodes, key)
                        if sorted(got) == sorted(want):
                            note = "the right nodes in the wrong order: walk clockwise"
                        raise Mismatch(text, want, got, note)
                    continue
                repeats = sorted({x for x in got if got.count(x) > 1}, key=str)
                strangers = [x for x in got if x not in nodes]
                if len(got) != n or repeats or strangers:
                    note = (f"{repeats} appear(s) more than once: skip the tokens of nodes "
                            f"already listed" if repeats else
                            f"{strangers} are not nodes of the ring" if strangers else
                            f"{n} nodes were asked for")
                    raise Mismatch(text, want, got, note)

    hypothesis_run(ctx, _ring_strategies()(min_nodes=1, max_keys=5), examples, body)


def check_preference_list_distinct(ring_class: type, *, seed: int = 1204, examples: int = 100,
                                   budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``preference-list-has-n-distinct-physical-nodes``."""
    __tracebackhide__ = True
    ctx = start_check("preference-list-has-n-distinct-physical-nodes", "check_preference_list_distinct",
                      "ring class", seed, ring_class)
    run_check(ctx, budget_s, lambda: _check_preference_lists(ctx, ring_class, examples, False))


def check_preference_list_order(ring_class: type, *, seed: int = 1205, examples: int = 100,
                                budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``preference-list-walks-clockwise-from-coordinator``."""
    __tracebackhide__ = True
    ctx = start_check("preference-list-walks-clockwise-from-coordinator", "check_preference_list_order",
                      "ring class", seed, ring_class)
    run_check(ctx, budget_s, lambda: _check_preference_lists(ctx, ring_class, examples, True))


def check_membership_changes(ring_class: type, *, seed: int = 1206, examples: int = 60,
                             budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``add-and-remove-node-keep-the-ring-consistent``: after any sequence of
    ``add_node`` / ``remove_node`` the ring places keys exactly as a ring built from scratch
    with its current nodes; adding a present node or removing an absent one raises
    ``ValueError``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    ctx = start_check("add-and-remove-node-keep-the-ring-consistent", "check_membership_changes",
                      "ring class", seed, ring_class)
    keys = [f"user:{i}" for i in range(12)]

    @st.composite
    def case(draw):
        nodes = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=4, unique=True))
        vnodes = draw(st.integers(1, 5))
        ops = draw(st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.sampled_from(_NAMES)),
                            min_size=1, max_size=6))
        return nodes, vnodes, ops

    def body(c):
        nodes, vnodes, ops = c
        ref = _ReferenceRing(nodes, vnodes)
        current = list(nodes)
        ring = _build_ring(ctx, ring_class, nodes, vnodes, _ring_input(nodes, vnodes))
        done: list[str] = []
        for op, node in ops:
            done.append(f"{op}_node({node!r})")
            text = _ring_input(nodes, vnodes, extra="then " + ", ".join(done))
            present = node in current
            if (op == "add") == present:
                ctx.raises_value_error(text, getattr(ring, f"{op}_node"), node,
                                       why=f"{node!r} is {'already' if present else 'not'} in the ring")
                continue
            ctx.result(text, Expected("returns normally"), getattr(ring, f"{op}_node"), node)
            getattr(ref, f"{op}_node")(node)
            if op == "add":
                current.append(node)
            else:
                current.remove(node)
            if not current:
                continue
            n = min(3, len(current))
            for key in keys:
                want = ref.preference_list(key, n)
                where = text + f"; preference_list({key!r}, {n})"
                got = list(ctx.result(where, want, ring.preference_list, key, n))
                if got != want:
                    raise Mismatch(where, want, got, f"the ring now holds {sorted(current)}")

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, case(), examples, body))


def check_bad_requests(ring_class: type, *, seed: int = 1207, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``bad-requests-raise-value-error``."""
    __tracebackhide__ = True
    ctx = start_check("bad-requests-raise-value-error", "check_bad_requests", "ring class", seed,
                      ring_class)

    def expect_value_error(text, thunk):
        ctx.raises_value_error(text, thunk)

    def run():
        name = getattr(ring_class, "__name__", "Ring")
        three = _build_ring(ctx, ring_class, ["A", "B", "C"], 2, "nodes=['A', 'B', 'C'], vnodes=2")
        expect_value_error(f"{name}(['A', 'B', 'C'], 2).preference_list('cart', 4)",
                           lambda: three.preference_list("cart", 4))
        expect_value_error(f"{name}(['A', 'B', 'C'], 2).preference_list('cart', 0)",
                           lambda: three.preference_list("cart", 0))
        empty = _build_ring(ctx, ring_class, [], 2, "nodes=[], vnodes=2")
        expect_value_error(f"{name}([], 2).coordinator('cart')", lambda: empty.coordinator("cart"))
        expect_value_error(f"{name}([], 2).preference_list('cart', 1)",
                           lambda: empty.preference_list("cart", 1))
        expect_value_error(f"{name}(['A', 'A'], 2)", lambda: ring_class(["A", "A"], 2))
        expect_value_error(f"{name}(['A'], 0)", lambda: ring_class(["A"], 0))

    run_check(ctx, budget_s, run)


def check_ownership(ring_class: type, *, seed: int = 1208, examples: int = 80,
                    budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``ownership-is-each-nodes-share-of-the-ring`` (to within 1e-9)."""
    __tracebackhide__ = True
    ctx = start_check("ownership-is-each-nodes-share-of-the-ring", "check_ownership", "ring class",
                      seed, ring_class)

    def body(c):
        nodes, vnodes, _keys = c
        text = _ring_input(nodes, vnodes)
        want = _ReferenceRing(nodes, vnodes).ownership()
        ring = _build_ring(ctx, ring_class, nodes, vnodes, text)
        got = ctx.result(text, want, lambda: ring.ownership())
        try:
            got = {x: float(v) for x, v in dict(got).items()}
        except (TypeError, ValueError):
            raise Mismatch(text, want, got, "ownership() returns a dict node -> fraction") from None
        if sorted(got) != sorted(want):
            raise Mismatch(text, want, got, "one entry per physical node")
        bad = [x for x in sorted(want) if not math.isclose(got[x], want[x], rel_tol=1e-9, abs_tol=1e-12)]
        if bad:
            total = sum(got.values())
            note = (f"your shares sum to {total:.6f}, not 1" if not math.isclose(total, 1.0, rel_tol=1e-9)
                    else f"node {bad[0]}'s share differs: an arc (previous token, token] belongs "
                         f"to the token's node, and the first arc wraps past the top of the ring")
            raise Mismatch(text, want, got, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _ring_strategies()(), examples, body))


class _FrozenRing:
    """A ring stand-in that answers preference_list from a table (no reference code runs while
    a student's function reads it)."""

    def __init__(self, table: Mapping[tuple[str, int], list[str]], nodes: list[str]):
        self._table = dict(table)
        self.nodes = list(nodes)

    def preference_list(self, key: str, n: int) -> list[str]:
        try:
            return list(self._table[(key, n)])
        except KeyError:
            raise ValueError(f"this test ring only knows the keys it was given; asked for "
                             f"preference_list({key!r}, {n})") from None

    def __repr__(self) -> str:
        return f"<ring of {self.nodes}>"


def check_moved_fraction(moved_fraction: Callable, *, seed: int = 1209, examples: int = 80,
                         budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``moved-fraction-counts-keys-whose-replicas-change``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    ctx = start_check("moved-fraction-counts-keys-whose-replicas-change", "check_moved_fraction",
                      "moved_fraction", seed, moved_fraction)

    @st.composite
    def case(draw):
        old = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=5, unique=True))
        new = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=5, unique=True))
        vnodes = draw(st.integers(1, 4))
        keys = draw(st.lists(st.text(alphabet="abxyz019", min_size=1, max_size=4), min_size=1,
                             max_size=10, unique=True))
        n = draw(st.integers(1, min(len(old), len(new))))
        return old, new, vnodes, keys, n

    def body(c):
        old_nodes, new_nodes, vnodes, keys, n = c
        text = (f"old ring of {old_nodes}, new ring of {new_nodes} (vnodes={vnodes}), "
                f"keys={keys!r}, n={n}")
        STATE.working_on = text
        old, new = _ReferenceRing(old_nodes, vnodes), _ReferenceRing(new_nodes, vnodes)
        table_old = {(k, n): old.preference_list(k, n) for k in keys}
        table_new = {(k, n): new.preference_list(k, n) for k in keys}
        moved = sum(1 for k in keys if set(table_old[(k, n)]) != set(table_new[(k, n)]))
        want = moved / len(keys)
        got = ctx.result(text, want, moved_fraction, _FrozenRing(table_old, old_nodes),
                         _FrozenRing(table_new, new_nodes), list(keys), n)
        if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isclose(got, want, abs_tol=1e-9):
            note = ("a key whose replicas are the same nodes in another order has not moved"
                    if any(table_old[(k, n)] != table_new[(k, n)] and
                           set(table_old[(k, n)]) == set(table_new[(k, n)]) for k in keys) else "")
            raise Mismatch(text, want, got, note)

    def run():
        hypothesis_run(ctx, case(), examples, body)
        ring = _FrozenRing({}, ["A"])
        ctx.raises_value_error("keys=[] (no keys at all)", moved_fraction, ring, ring, [], 1)

    run_check(ctx, budget_s, run)


# -- the student's ring inside the reference cluster -------------------------------------------

class StudentRingAdapter:
    """What a node needs from a ring, on top of a student's ring.

    Built by :func:`student_ring_factory` from the node's member map ``{node: tokens}``: the
    student's class is given the node ids and ``vnodes`` and computes the same tokens itself.
    Offers ``nodes``, ``preference_list``, ``successors`` (the sloppy quorum's walk),
    ``coordinator``, ``tokens`` and ``tokens_of``. It has no ``replica_ranges``, so anti-entropy
    is skipped on such a cluster. With ``strict`` (the default) a preference list that is not
    ``n`` distinct nodes of the ring raises :class:`ConfigError` naming the key.
    """

    def __init__(self, ring_class: type, members: Mapping[str, Sequence[int]], vnodes: int,
                 *, strict: bool = True, trusted: bool = False):
        self.nodes = sorted(members)
        self.vnodes = vnodes
        self.strict = strict
        self._trusted = trusted
        with self._scope():
            self.ring = ring_class(list(self.nodes), vnodes)

    def _scope(self):
        return contextlib.nullcontext() if self._trusted else student_scope()

    def preference_list(self, key: str, n: int) -> list[str]:
        with self._scope():
            out = list(self.ring.preference_list(key, n))
        if self.strict and (len(out) != n or len(set(out)) != n or
                            any(x not in self.nodes for x in out)):
            raise ConfigError(f"your preference_list({key!r}, {n}) returned {out!r}; a node "
                              f"needs {n} distinct nodes of the ring {self.nodes}")
        return out

    def successors(self, key: str) -> list[str]:
        return self.preference_list(key, len(self.nodes))

    def coordinator(self, key: str) -> str:
        with self._scope():
            return self.ring.coordinator(key)

    def tokens(self) -> list[tuple[int, str]]:
        with self._scope():
            return [(t, x) for t, x in self.ring.tokens()]

    def tokens_of(self, node: str) -> list[int]:
        return [t for t, x in self.tokens() if x == node]


@recipe        # so that TcpCluster(parts=...) can make it again in each node process
def student_ring_factory(ring_class: type, vnodes: int = 8, *, strict: bool = True,
                         _trusted: bool = False) -> Callable[[Mapping[str, Sequence[int]]], StudentRingAdapter]:
    """A ``ring_factory`` for :class:`~dynamo_lab.Parts` that makes every node use
    ``ring_class`` (built as ``ring_class(node_ids, vnodes)``)::

        parts = dl.Parts(ring_factory=grading.student_ring_factory(ConsistentHashRing, vnodes=8))
        cluster = dl.SimCluster(nodes=5, vnodes=8, seed=7, parts=parts)

    ``vnodes`` must be the cluster's: the factory checks that each member's tokens are the ones
    ``key_hash(f"{node}#{i}")`` the student's ring computes, and raises :class:`ConfigError`
    otherwise. ``strict=False`` lets a broken preference list through (to watch what it does).
    """
    if isinstance(vnodes, bool) or not isinstance(vnodes, int) or vnodes < 1:
        raise ConfigError(f"vnodes must be an int >= 1 (the cluster's vnodes); got {vnodes!r}")

    def factory(members: Mapping[str, Sequence[int]]) -> StudentRingAdapter:
        from ...node.common import default_tokens
        for node in sorted(members):
            if tuple(sorted(members[node])) != default_tokens(node, vnodes):
                raise ConfigError(f"node {node} has {len(members[node])} tokens that are not "
                                  f"key_hash('{node}#i') for i < {vnodes}: build the factory with "
                                  f"the cluster's vnodes")
        return StudentRingAdapter(ring_class, members, vnodes, strict=strict, trusted=_trusted)

    factory.__name__ = f"student_ring_factory({getattr(ring_class, '__name__', ring_class)})"
    return factory


def _ring_cluster_log(ring_factory, seed: int) -> list[tuple]:
    """A seeded workload on a 5-node cluster using ``ring_factory``: what clients and stores see."""
    from ...cluster import SimCluster
    from ...errors import QuorumError
    from ...node import Parts
    cluster = SimCluster(nodes=5, n=3, r=2, w=2, vnodes=8, seed=seed,
                         parts=Parts(ring_factory=ring_factory), anti_entropy=False)
    rng = random.Random(seed)
    client = cluster.client("grader")
    keys = [f"user:{i}" for i in range(20)]
    log: list[tuple] = []

    def attempt(step, fn):
        STATE.working_on = f"cluster step {step}"
        try:
            log.append((step, fn()))
        except QuorumError as exc:
            log.append((step, f"QuorumError(may_have_applied={exc.may_have_applied})"))

    for key in keys[:12]:
        via = rng.choice(cluster.nodes)
        attempt(f"put {key!r} via {via}", lambda: client.put(key, [key], via=via).coordinator)
    victim = rng.choice(cluster.nodes)
    cluster.crash(victim)
    log.append(("crash", victim))
    for key in keys[12:]:
        via = rng.choice(cluster.up())
        attempt(f"put {key!r} via {via} while {victim} is down",
                lambda: client.put(key, [key], via=via).coordinator)
    for key in keys:
        via = rng.choice(cluster.up())
        attempt(f"get {key!r} via {via}", lambda: client.get(key, via=via).values)
    cluster.restart(victim)
    cluster.run_for(12)
    for key in keys:
        log.append((f"nodes holding {key!r} after {victim} restarted and hinted handoff ran",
                    sorted(cluster.holders(key))))
    log.append(("consistency checker", [str(v) for v in cluster.check()]))
    return log


def check_ring_in_cluster(ring_class: type, *, seed: int = 7, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``cluster-with-your-ring-matches-the-reference``: the same seeded workload on a
    cluster using ``ring_class`` and on one using the reference ring gives the same results."""
    __tracebackhide__ = True
    ctx = start_check("cluster-with-your-ring-matches-the-reference", "check_ring_in_cluster",
                      "ring class", seed, ring_class)

    differential(ctx, budget_s, lambda factory: _ring_cluster_log(factory, seed),
                 student_ring_factory(_ReferenceRing, 8, _trusted=True),
                 student_ring_factory(ring_class, 8), f"5-node cluster, vnodes=8, seed={seed}",
                 "the cluster runs")
