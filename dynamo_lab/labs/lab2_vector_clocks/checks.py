"""Lab 2's checks: vector clocks and versions."""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

from ...errors import ConfigError
from ...shipping import recipe
from ...grading.failures import DEFAULT_BUDGET_S, MAX_SIBLINGS, STATE, Expected, Mismatch
from ...grading.harness import (Context, differential, hypothesis_run, run_check, start_check,
                                student_scope)
from ...grading.own_code import assert_own_code

__all__ = [
    "Version", "student_versioning", "check_increment", "check_merge", "check_compare_ordered",
    "check_compare_concurrent", "check_reconcile_drops_dominated",
    "check_reconcile_keeps_siblings", "check_merge_carts", "check_d1_d5_story",
    "check_clocks_in_cluster",
]


class Version(NamedTuple):
    """One version of a key, as Lab 2 gives it to the student's ``reconcile``.

    ``value``: any JSON value; ``clock``: a dict ``{node: counter >= 1}``; ``deleted``: True for
    a tombstone (a delete is a write too).
    """
    value: Any
    clock: dict
    deleted: bool = False


#: What :func:`~dynamo_lab.grading.self_check` runs for each test cell: the check its hidden
#: part calls, the notebook names it is given and its arguments (the public seeds). Kept equal
#: to the cells file by ``tests/test_self_check.py``.
SELF_CHECK = {
    "increment_bumps_only_the_coordinator":
        ("check_increment", ("increment",), {"seed": 2101, "examples": 100}),
    "merge_is_the_pointwise_maximum":
        ("check_merge", ("merge",), {"seed": 2102, "examples": 100}),
    "compare_orders_equal_and_descending_clocks":
        ("check_compare_ordered", ("compare",), {"seed": 2103, "examples": 100}),
    "compare_detects_concurrent_clocks":
        ("check_compare_concurrent", ("compare",), {"seed": 2104, "examples": 100}),
    "reconcile_drops_every_dominated_version":
        ("check_reconcile_drops_dominated", ("reconcile",), {"seed": 2105, "examples": 100}),
    "reconcile_keeps_every_concurrent_sibling":
        ("check_reconcile_keeps_siblings", ("reconcile",), {"seed": 2106, "examples": 100}),
    "d1_d5_story_with_your_clocks":
        ("check_d1_d5_story", ("increment", "merge", "compare", "reconcile"), {"seed": 1}),
    "cluster_with_your_clocks_matches_the_reference":
        ("check_clocks_in_cluster", ("increment", "merge", "compare", "reconcile"), {"seed": 11}),
    "merge_carts_keeps_every_item":
        ("check_merge_carts", ("merge_carts",), {"seed": 2107, "examples": 80}),
}

_ORDERS = ("before", "after", "equal", "concurrent")
_CLOCK_NODES = ("A", "B", "C", "D")


def _order_name(x: Any) -> Optional[str]:
    """'before' | 'after' | 'equal' | 'concurrent' for a str or an Enum (such as dl.Order)."""
    value = getattr(x, "value", x)
    name = getattr(x, "name", None)
    for candidate in (value, name):
        if isinstance(candidate, str) and candidate.lower() in _ORDERS:
            return candidate.lower()
    return None


def _ref_compare(a: Mapping[str, int], b: Mapping[str, int]) -> str:
    from ...vclock import VectorClock
    return VectorClock(dict(a)).compare(VectorClock(dict(b))).value


def _clean_clock(x: Any) -> Optional[dict]:
    """The clock as a plain {node: int} dict without zero entries, or None if it is not one."""
    if not isinstance(x, Mapping):
        return None
    out = {}
    for k, v in x.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int) or v < 0:
            return None
        if v:
            out[k] = v
    return dict(sorted(out.items()))


def _clock_strategies():
    from hypothesis import strategies as st
    counters = st.integers(1, 4)
    clocks = st.dictionaries(st.sampled_from(_CLOCK_NODES), counters, max_size=4)

    def add(c, bump):
        out = dict(c)
        for k, v in bump.items():
            out[k] = out.get(k, 0) + v
        return out

    @st.composite
    def ordered_pair(draw):
        base = draw(clocks)
        bump = draw(st.dictionaries(st.sampled_from(_CLOCK_NODES), counters, max_size=3))
        later = add(base, bump)
        return (base, later) if draw(st.booleans()) else (later, base)

    @st.composite
    def concurrent_pair(draw):
        base = draw(clocks)
        x, y = draw(st.lists(st.sampled_from(_CLOCK_NODES), min_size=2, max_size=2, unique=True))
        others = [n for n in _CLOCK_NODES if n not in (x, y)]
        extra = st.dictionaries(st.sampled_from(others), counters, max_size=2) if others else st.just({})
        a = add(add(base, {x: draw(counters)}), draw(extra))
        b = add(add(base, {y: draw(counters)}), draw(extra))
        return a, b

    return clocks, ordered_pair, concurrent_pair


def _frozen(c: Mapping) -> str:
    return json.dumps(dict(c), sort_keys=True)


def check_increment(increment: Callable, *, seed: int = 2101, examples: int = 150,
                    budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``increment-bumps-only-the-coordinator``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    ctx = start_check("increment-bumps-only-the-coordinator", "check_increment", "increment", seed,
                      increment)
    clocks, _, _ = _clock_strategies()

    def body(c):
        clock, node = c
        text = f"clock={clock!r}, node={node!r}"
        want = dict(clock)
        want[node] = want.get(node, 0) + 1
        want = dict(sorted(want.items()))
        arg = dict(clock)
        got = ctx.result(text, want, increment, arg, node)
        if _clean_clock(got) != want:
            raise Mismatch(text, want, got, "a node with no entry counts as 0"
                           if node not in clock else "")
        if arg != clock:
            raise Mismatch(text, Expected(f"the input clock stays {clock!r}"),
                           Expected(f"it was changed to {arg!r}"),
                           "build and return a new dict; other versions share the old clock")

    run_check(ctx, budget_s, lambda: hypothesis_run(
        ctx, st.tuples(clocks, st.sampled_from(_CLOCK_NODES + ("E",))), examples, body))


def check_merge(merge: Callable, *, seed: int = 2102, examples: int = 150,
                budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``merge-is-the-pointwise-maximum``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    ctx = start_check("merge-is-the-pointwise-maximum", "check_merge", "merge", seed, merge)
    clocks, _, _ = _clock_strategies()

    def body(c):
        a, b = c
        text = f"a={a!r}, b={b!r}"
        want = {n: max(a.get(n, 0), b.get(n, 0)) for n in sorted(set(a) | set(b))}
        a2, b2 = dict(a), dict(b)
        got = ctx.result(text, want, merge, a2, b2)
        if _clean_clock(got) != want:
            raise Mismatch(text, want, got, "every node of either clock, with the larger counter "
                                            "(a node absent from one clock counts as 0 there)")
        if (a2, b2) != (a, b):
            raise Mismatch(text, Expected("the inputs stay unchanged"),
                           Expected(f"a became {a2!r}, b became {b2!r}"),
                           "build and return a new dict")

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, st.tuples(clocks, clocks), examples, body))


def _check_compare(ctx: Context, compare: Callable, pairs, examples: int) -> None:
    def body(c):
        a, b = c
        for x, y in ((a, b), (b, a)):
            text = f"a={x!r}, b={y!r}"
            want = _ref_compare(x, y)
            got = ctx.result(text, want.upper(), compare, dict(x), dict(y))
            name = _order_name(got)
            if name != want:
                note = ""
                if want == "equal":
                    note = "equal counters: each clock descends the other, so neither is BEFORE"
                elif want == "concurrent":
                    note = "neither clock descends the other"
                elif name is None:
                    note = "return BEFORE, AFTER, EQUAL or CONCURRENT"
                raise Mismatch(text, want.upper(), name.upper() if name else got, note)

    hypothesis_run(ctx, pairs, examples, body)


def check_compare_ordered(compare: Callable, *, seed: int = 2103, examples: int = 150,
                          budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``compare-orders-equal-and-descending-clocks``."""
    __tracebackhide__ = True
    ctx = start_check("compare-orders-equal-and-descending-clocks", "check_compare_ordered", "compare",
                      seed, compare)
    _, ordered, _ = _clock_strategies()
    run_check(ctx, budget_s, lambda: _check_compare(ctx, compare, ordered(), examples))


def check_compare_concurrent(compare: Callable, *, seed: int = 2104, examples: int = 150,
                             budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``compare-detects-concurrent-clocks``."""
    __tracebackhide__ = True
    ctx = start_check("compare-detects-concurrent-clocks", "check_compare_concurrent", "compare", seed,
                      compare)
    _, _, concurrent = _clock_strategies()
    run_check(ctx, budget_s, lambda: _check_compare(ctx, compare, concurrent(), examples))


def _version_history_strategy():
    """Versions of one key as a real history makes them: each write increments the merge of
    the clocks it read at some node; some writes are deletes, some are duplicates."""
    from hypothesis import strategies as st

    @st.composite
    def history(draw):
        steps = draw(st.integers(1, 7))
        clocks: list[dict] = []
        versions: list[Version] = []
        for i in range(steps):
            if versions and draw(st.integers(0, 5)) == 0:
                versions.append(draw(st.sampled_from(versions)))   # the same write, seen twice
                continue
            read = draw(st.lists(st.integers(0, max(0, len(clocks) - 1)), max_size=2, unique=True)) \
                if clocks else []
            base: dict = {}
            for j in read:
                for n, c in clocks[j].items():
                    base[n] = max(base.get(n, 0), c)
            node = draw(st.sampled_from(_CLOCK_NODES[:3]))
            clock = dict(base)
            clock[node] = clock.get(node, 0) + 1
            clock = dict(sorted(clock.items()))
            clocks.append(clock)
            deleted = draw(st.integers(0, 4)) == 0
            versions.append(Version(None if deleted else f"v{i + 1}", clock, deleted))
        order = draw(st.permutations(list(range(len(versions)))))
        return [versions[k] for k in order]

    return history()


def _ref_reconcile_clocks(versions: Sequence[Version]) -> list[str]:
    from ...vclock import VectorClock
    from ...versions import Versioned, reconcile
    kept = reconcile(Versioned(v.value, VectorClock(dict(v.clock)), v.deleted) for v in versions)
    return sorted(_frozen(v.clock.counters()) for v in kept)


def _reconcile_body(ctx: Context, reconcile_fn: Callable, which: str):
    def body(versions):
        text = f"versions={list(versions)!r}"
        want_clocks = _ref_reconcile_clocks(versions)
        want = [v for v in versions if _frozen(v.clock) in want_clocks]
        # One per clock in the description of what is expected.
        seen: set = set()
        want = [v for v in want if not (_frozen(v.clock) in seen or seen.add(_frozen(v.clock)))]
        arg = [Version(v.value, dict(v.clock), v.deleted) for v in versions]
        got = ctx.result(text, want, reconcile_fn, arg)
        try:
            got = list(got)
        except TypeError:
            raise Mismatch(text, want, got, "reconcile returns a list of versions") from None
        if arg != list(versions):
            raise Mismatch(text, Expected("the input list and its versions stay unchanged"),
                           Expected(f"they became {arg!r}"), "build and return a new list")
        got_clocks = []
        for item in got:
            if not any(item == v for v in versions):
                raise Mismatch(text, want, got, f"{item!r} is not one of the versions given")
            got_clocks.append(_frozen(_clean_clock(_version_clock(item)) or {}))
        if which == "drops":
            for item, ck in zip(got, got_clocks):
                if got_clocks.count(ck) > 1:
                    raise Mismatch(text, want, got, f"two versions with the clock {ck} kept: "
                                                    f"equal clocks are the same write, keep one")
                if ck not in want_clocks:
                    newer = next(v for v in versions if _ref_compare(v.clock, json.loads(ck)) == "after")
                    raise Mismatch(text, want, got, f"{item!r} is kept, but {newer!r} descends it")
        else:
            missing = [c for c in want_clocks if c not in got_clocks]
            if missing:
                lost = next(v for v in versions if _frozen(v.clock) == missing[0])
                raise Mismatch(text, want, got, f"{lost!r} is dropped, but no other version "
                                                f"descends it: it is a sibling")
    return body


def _version_clock(item: Any) -> Any:
    clock = getattr(item, "clock", None)
    if clock is None and isinstance(item, (tuple, list)) and len(item) >= 2:
        clock = item[1]
    return clock


def check_reconcile_drops_dominated(reconcile: Callable, *, seed: int = 2105, examples: int = 150,
                                    budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``reconcile-drops-every-dominated-version``."""
    __tracebackhide__ = True
    ctx = start_check("reconcile-drops-every-dominated-version", "check_reconcile_drops_dominated",
                      "reconcile", seed, reconcile)
    run_check(ctx, budget_s, lambda: hypothesis_run(
        ctx, _version_history_strategy(), examples, _reconcile_body(ctx, reconcile, "drops")))


def check_reconcile_keeps_siblings(reconcile: Callable, *, seed: int = 2106, examples: int = 150,
                                   budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``reconcile-keeps-every-concurrent-sibling``."""
    __tracebackhide__ = True
    ctx = start_check("reconcile-keeps-every-concurrent-sibling", "check_reconcile_keeps_siblings",
                      "reconcile", seed, reconcile)
    run_check(ctx, budget_s, lambda: hypothesis_run(
        ctx, _version_history_strategy(), examples, _reconcile_body(ctx, reconcile, "keeps")))


def check_merge_carts(merge_carts: Callable, *, seed: int = 2107, examples: int = 120,
                      budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``merge-carts-keeps-every-item``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    ctx = start_check("merge-carts-keeps-every-item", "check_merge_carts", "merge_carts", seed,
                      merge_carts)
    items = st.sampled_from(["book", "pen", "lamp", "mug", "tea"])
    carts = st.lists(st.lists(items, max_size=4, unique=True), max_size=4)

    def body(siblings):
        text = f"siblings={siblings!r}"
        want = sorted({x for cart in siblings for x in cart})
        arg = [list(c) for c in siblings]
        got = ctx.result(text, want, merge_carts, arg)
        if not isinstance(got, list) or got != want:
            raise Mismatch(text, want, got, "a sorted list, each item once")
        if arg != siblings:
            raise Mismatch(text, Expected("the siblings stay unchanged"), Expected(repr(arg)))

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, carts, examples, body))


# -- the student's clock logic inside the reference cluster ------------------------------------

def _make_student_versioning(increment, merge, compare, reconcile, *, guard_same_coordinator=True,
                             trusted=False, clock_threshold=10):
    from ...node.config import Versioning
    from ...vclock import VectorClock
    from ...versions import Versioned

    scope = contextlib.nullcontext if trusted else student_scope

    def as_clock(d: Any, what: str) -> VectorClock:
        clean = _clean_clock(d)
        if clean is None:
            raise ConfigError(f"your {what} returned {d!r}; a clock is a dict {{node: int counter}}")
        return VectorClock(clean)

    class StudentVersioning(Versioning):
        """The node's clock logic, done by the student's increment, merge, compare and
        reconcile (clocks converted to plain dicts and back)."""

        def new_clock(self, context, node, now, local):
            ctx = context.counters()
            unseen = [v.clock.counters() for v in local if not context.descends(v.clock)]
            actor, k = node, 0
            while True:
                with scope():
                    candidate = increment(dict(ctx), actor)
                    clash = guard_same_coordinator and any(
                        _order_name(compare(dict(candidate), dict(c))) != "concurrent" for c in unseen)
                if not clash:
                    return as_clock(candidate, f"increment({ctx!r}, {actor!r})")
                k += 1
                actor = f"{node}#{k}"

        def reconcile(self, versions):
            given = list(versions)
            arg = [Version(v.value, v.clock.counters(), v.deleted) for v in given]
            with scope():
                out = list(reconcile(list(arg)))
            kept = []
            for item in out:
                match = next((g for g, a in zip(given, arg) if item is a), None)
                if match is None:
                    match = next((g for g, a in zip(given, arg) if item == a), None)
                if match is None:
                    raise ConfigError(f"your reconcile returned {item!r}, which is not one of the "
                                      f"versions it was given")
                # A store holds a set: the same write twice is kept once (equal digests), which
                # also stops a reconcile that keeps duplicates from doubling a key's versions
                # on every exchange.
                if match not in kept:
                    kept.append(match)
            if len(kept) > MAX_SIBLINGS:
                raise ConfigError(f"your reconcile kept {len(kept)} versions of one key, more "
                                  f"than {MAX_SIBLINGS}: it keeps versions another one descends")
            # The reference returns siblings in digest order; so does this, so that what a get
            # returns does not depend on the order the student's reconcile happens to use.
            return sorted(kept, key=Versioned.digest)

        def merged_clock(self, versions):
            acc: dict = {}
            for v in versions:
                with scope():
                    acc = merge(dict(acc), v.clock.counters())
            return as_clock(acc, "merge")

    return StudentVersioning(clock_threshold)


@recipe        # so that TcpCluster(parts=...) can make it again in each node process
def student_versioning(increment: Callable, merge: Callable, compare: Callable,
                       reconcile: Callable, *, guard_same_coordinator: bool = True):
    """A :class:`~dynamo_lab.Versioning` that makes every node use the student's clock logic::

        parts = dl.Parts(versioning=grading.student_versioning(increment, merge, compare, reconcile))
        cluster = dl.SimCluster(nodes=["Sx", "Sy", "Sz"], seed=1, parts=parts)

    ``increment(clock, node)``, ``merge(a, b)`` and ``compare(a, b)`` work on dicts
    ``{node: counter}``; ``reconcile`` on lists of :class:`Version`. A new write is stamped with
    ``increment(context, coordinator)``. With ``guard_same_coordinator`` (the default) the
    reference's fix for two writes racing through one coordinator with the same context is
    applied too: the reference node gives the second write a dot (see
    :mod:`dynamo_lab.vclock`), which a dict cannot hold, so here it is stamped on a sub-actor
    ``node#1`` instead (decided with the student's ``compare``), which keeps them concurrent
    at the price of one more entry per racing writer; ``False`` shows what the paper's rule
    alone does.
    Raises :class:`ConfigError` inside the cluster when a function returns something that is
    not a clock, or reconcile returns a version it was not given.
    """
    return _make_student_versioning(increment, merge, compare, reconcile,
                                    guard_same_coordinator=guard_same_coordinator)


def _reference_clock_functions():
    """The reference's clock logic with the students' signatures (trusted; for comparisons)."""
    from ...vclock import VectorClock
    from ...versions import Versioned, reconcile as ref_reconcile

    def increment(clock, node):
        return VectorClock(clock).increment(node).counters()

    def merge(a, b):
        return VectorClock(a).merge(VectorClock(b)).counters()

    def compare(a, b):
        return VectorClock(a).compare(VectorClock(b)).value

    def reconcile(versions):
        items = [(Versioned(v.value, VectorClock(dict(v.clock)), v.deleted), v) for v in versions]
        kept = {id(k) for k in ref_reconcile(x for x, _ in items)}
        return [v for x, v in items if id(x) in kept]

    return increment, merge, compare, reconcile


def _d1_d5_story(versioning, seed: int, make_cluster: Optional[Callable] = None) -> list[tuple]:
    """The story's log on a cluster of Sx, Sy, Sz using ``versioning``: a ``SimCluster``, or
    what ``make_cluster(**kwargs)`` makes from SimCluster's arguments (a ``TcpCluster``,
    which is closed at the end)."""
    from ...cluster import SimCluster
    from ...node import Parts
    cluster = (make_cluster or SimCluster)(nodes=["Sx", "Sy", "Sz"], n=3, r=2, w=2, seed=seed,
                                           parts=Parts(versioning=versioning))
    try:
        return _d1_d5_log(cluster)
    finally:
        if hasattr(cluster, "close"):
            cluster.close()


def _d1_d5_log(cluster) -> list[tuple]:
    from ...versions import decode_context
    key = cluster.config.cluster_key
    alice, bob, carol = cluster.client("alice"), cluster.client("bob"), cluster.client("carol")
    log: list[tuple] = []

    def clock_of(result):
        return decode_context(result.context, key).counters()

    STATE.working_on = "D1: alice writes ['book'] through Sx"
    d1 = alice.put("cart", ["book"], via="Sx")
    log.append(("D1: alice writes ['book'] through Sx; its clock", clock_of(d1)))
    STATE.working_on = "D2: alice writes ['book', 'pen'] through Sx"
    d2 = alice.put("cart", ["book", "pen"], context=d1.context, via="Sx")
    log.append(("D2: alice writes ['book', 'pen'] through Sx, on top of D1; its clock", clock_of(d2)))
    cluster.crash("Sx")
    STATE.working_on = "bob reads the cart through Sy"
    read = bob.get("cart", via="Sy")
    log.append(("Sx is down; bob reads the cart through Sy", sorted(read.values)))
    STATE.working_on = "D3 and D4: concurrent writes through Sy and Sz"
    w3 = bob.submit_put("cart", ["book", "pen", "lamp"], context=read.context, via="Sy")
    w4 = carol.submit_put("cart", ["book", "pen", "mug"], context=read.context, via="Sz")
    cluster.wait(w3, w4)
    log.append(("D3: bob writes through Sy; its clock", clock_of(w3.result())))
    log.append(("D4: carol writes through Sz, from the same read; its clock", clock_of(w4.result())))
    cluster.restart("Sx")
    cluster.run_for(5)
    STATE.working_on = "alice reads both siblings through Sx"
    res = alice.get("cart", via="Sx")
    log.append(("Sx is back; alice reads the cart through Sx (the siblings)", sorted(res.values)))
    merged = sorted({item for v in res.values for item in v})
    STATE.working_on = "D5: alice writes the merged cart through Sx"
    d5 = alice.put("cart", merged, context=res.context, via="Sx")
    log.append(("D5: alice writes the merged cart through Sx; its clock", clock_of(d5)))
    cluster.run_for(5)
    final = alice.get("cart", via="Sy")
    log.append(("a read after D5 (through Sy)", final.values))
    log.append(("what each replica holds", {n: sorted(json.dumps(v.value) for v in vs)
                                            for n, vs in sorted(cluster.replicas("cart").items())}))
    log.append(("consistency checker", [str(v) for v in cluster.check()]))
    return log


def check_d1_d5_story(increment: Callable, merge: Callable, compare: Callable,
                      reconcile: Callable, *, seed: int = 1, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``d1-d5-story-with-your-clocks``: the paper's figure 3 on three nodes Sx, Sy,
    Sz using the student's clock logic; every step matches the reference."""
    __tracebackhide__ = True
    ctx = Context("d1-d5-story-with-your-clocks", "check_d1_d5_story", "clock functions", seed,
                  f"grading.check_d1_d5_story(<your increment, merge, compare, reconcile>, seed={seed})")
    for part in (increment, merge, compare, reconcile):
        assert_own_code(part, "clock functions", invariant=ctx.invariant, seed=seed, replay=ctx.replay)

    differential(ctx, budget_s, lambda versioning: _d1_d5_story(versioning, seed),
                 _make_student_versioning(*_reference_clock_functions(), trusted=True),
                 _make_student_versioning(increment, merge, compare, reconcile),
                 f"the D1..D5 story on Sx, Sy, Sz, seed={seed}", "the story runs")


def _clock_cluster_log(versioning, seed: int, steps: int = 36) -> list[tuple]:
    """A seeded concurrent workload on 4 nodes: racing writers with stale contexts, deletes,
    crashes; records what every client was told."""
    from ...cluster import SimCluster
    from ...errors import QuorumError
    from ...node import Parts
    from ...versions import canonical_json, decode_context
    cluster = SimCluster(nodes=4, n=3, r=2, w=2, seed=seed, parts=Parts(versioning=versioning))
    ckey = cluster.config.cluster_key
    rng = random.Random(seed)
    names = ["alice", "bob", "carol"]
    clients = {c: cluster.client(c) for c in names}
    keys = ["cart:1", "cart:2"]
    ctx: dict[tuple[str, str], Optional[str]] = {}
    log: list[tuple] = []
    down: Optional[str] = None
    items = ["book", "pen", "lamp", "mug", "tea", "cup"]

    def outcome(op) -> Any:
        try:
            r = op.result()
        except QuorumError as exc:
            return f"QuorumError(may_have_applied={exc.may_have_applied})"
        if hasattr(r, "values"):
            return sorted(canonical_json(v) for v in r.values)
        return decode_context(r.context, ckey).counters()

    for i in range(steps):
        kind = rng.choice(["read", "read", "write", "race", "race", "delete", "fault", "tick"])
        key = rng.choice(keys)
        who = rng.choice(names)
        up = cluster.up()
        step = f"step {i}: {kind} {key}"
        STATE.working_on = step
        if kind == "read":
            via = rng.choice(up)
            op = clients[who].submit_get(key, via=via)
            cluster.wait(op)
            if op.error is None:
                ctx[(who, key)] = op.result().context
            log.append((f"{step}: {who} reads through {via}", outcome(op)))
        elif kind in ("write", "delete"):
            via = rng.choice(up)
            value = sorted(rng.sample(items, rng.randint(1, 3)))
            op = (clients[who].submit_put(key, value, ctx.get((who, key)), via=via) if kind == "write"
                  else clients[who].submit_delete(key, ctx.get((who, key)), via=via))
            cluster.wait(op)
            log.append((f"{step}: {who} {'writes ' + str(value) if kind == 'write' else 'deletes'} "
                        f"through {via}", outcome(op)))
        elif kind == "race":
            other = rng.choice([n for n in names if n != who])
            context = ctx.get((who, key))
            vias = [rng.choice(up), rng.choice(up)]
            ops = [clients[c].submit_put(key, sorted(rng.sample(items, 2)), context, via=v)
                   for c, v in zip((who, other), vias)]
            cluster.wait(*ops)
            log.append((f"{step}: {who} and {other} write at once through {vias} from the same "
                        f"context", [outcome(o) for o in ops]))
        elif kind == "fault":
            if down is None:
                down = rng.choice(up)
                cluster.crash(down)
                log.append((f"{step}: crash {down}", None))
            else:
                cluster.restart(down)
                log.append((f"{step}: restart {down}", None))
                down = None
        else:
            cluster.run_for(rng.uniform(0.5, 3.0))
    cluster.settle(20)
    for key in keys:
        STATE.working_on = f"final read of {key}"
        op = clients["alice"].submit_get(key)
        cluster.wait(op)
        log.append((f"after healing: read {key}", outcome(op)))
        log.append((f"after healing: the versions each replica of {key} holds",
                    {n: sorted(f"{canonical_json(v.value)} {v.clock}{' deleted' if v.deleted else ''}"
                               for v in vs) for n, vs in sorted(cluster.replicas(key).items())}))
    log.append(("consistency checker", [str(v) for v in cluster.check()]))
    return log


def check_clocks_in_cluster(increment: Callable, merge: Callable, compare: Callable,
                            reconcile: Callable, *, seed: int = 11,
                            budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``cluster-with-your-clocks-matches-the-reference``."""
    __tracebackhide__ = True
    ctx = Context("cluster-with-your-clocks-matches-the-reference", "check_clocks_in_cluster",
                  "clock functions", seed,
                  f"grading.check_clocks_in_cluster(<your increment, merge, compare, reconcile>, seed={seed})")
    for part in (increment, merge, compare, reconcile):
        assert_own_code(part, "clock functions", invariant=ctx.invariant, seed=seed, replay=ctx.replay)

    differential(ctx, budget_s, lambda versioning: _clock_cluster_log(versioning, seed),
                 _make_student_versioning(*_reference_clock_functions(), trusted=True),
                 _make_student_versioning(increment, merge, compare, reconcile),
                 f"4-node cluster, seed={seed}", "the workload runs")
