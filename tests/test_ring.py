"""Consistent hashing: placement, preference lists, movement on join/leave, balance, determinism."""

from __future__ import annotations

import math
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_lab.errors import ConfigError, InvalidKey
from dynamo_lab.hashing import RING_SIZE, key_hash
from dynamo_lab.ring import KeyRange, Ring, Transfer, moved_keys, transfers

REPO = Path(__file__).resolve().parents[1]
FAST = settings(derandomize=True, max_examples=60, deadline=None)

node_ids = st.text(alphabet="ABCDEFGHxyz-0123", min_size=1, max_size=4)
node_sets = st.lists(node_ids, min_size=1, max_size=7, unique=True)
keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
positions = st.integers(min_value=0, max_value=RING_SIZE - 1)


def sample_keys(count: int, prefix: str = "key") -> list[str]:
    return [f"{prefix}:{i}" for i in range(count)]


def naive_preference_list(ring: Ring, h: int, n: int) -> list[str]:
    """The definition, by linear scan: first token >= h (wrapping), then distinct owners."""
    toks = ring.tokens
    start = next((i for i, (t, _) in enumerate(toks) if t >= h), 0)
    out: list[str] = []
    for k in range(len(toks)):
        node = toks[(start + k) % len(toks)][1]
        if node not in out:
            out.append(node)
        if len(out) == n:
            break
    return out


@st.composite
def rings(draw, min_nodes: int = 1):
    nodes = draw(node_sets.filter(lambda xs: len(xs) >= min_nodes))
    if draw(st.booleans()):
        return Ring(nodes, vnodes=draw(st.integers(1, 12)))
    q = draw(st.integers(len(nodes), 4 * len(nodes) + 3))
    return Ring(nodes, strategy="equal", partitions=q)


# --------------------------------------------------------------------------- preference lists

@FAST
@given(ring=rings(), key=keys, data=st.data())
def test_preference_list_is_n_distinct_nodes_from_the_coordinator(ring, key, data):
    n = data.draw(st.integers(1, len(ring)))
    pl = ring.preference_list(key, n)
    assert len(pl) == n == len(set(pl))
    assert pl[0] == ring.coordinator(key)
    assert pl == naive_preference_list(ring, key_hash(key), n)
    assert pl == ring.preference_list_for_hash(key_hash(key), n)
    succ = ring.successors(key)
    assert sorted(succ) == ring.nodes and len(succ) == len(ring)
    assert succ[:n] == pl
    assert ring.successors(key_hash(key)) == succ


@FAST
@given(ring=rings(), h=positions)
def test_lookups_by_hash_match_the_definition(ring, h):
    for n in range(1, len(ring) + 1):
        assert ring.preference_list_for_hash(h, n) == naive_preference_list(ring, h, n)


def test_hash_on_a_token_belongs_to_that_token_and_wraps_past_the_last():
    ring = Ring.from_tokens({"A": [100], "B": [200], "C": [300]})
    assert ring.preference_list_for_hash(100, 1) == ["A"]    # start < h <= end: the end is inside
    assert ring.preference_list_for_hash(101, 3) == ["B", "C", "A"]
    assert ring.preference_list_for_hash(301, 2) == ["A", "B"]  # past the last token: wrap
    assert ring.preference_list_for_hash(0, 1) == ["A"]
    assert ring.preference_list_for_hash(RING_SIZE - 1, 1) == ["A"]


def test_tokens_of_the_random_strategy_are_the_hashes_of_node_and_index():
    ring = Ring(["A", "B"], vnodes=5)
    assert ring.tokens_of("A") == sorted(key_hash(f"A#{i}") for i in range(5))
    assert ring.tokens == sorted(ring.tokens)
    assert len(ring.tokens) == 10


def test_token_collisions_are_broken_by_node_id():
    ring = Ring.from_tokens({"B": [5, 1000], "A": [5, 100]})
    assert ring.tokens == [(5, "A"), (5, "B"), (100, "A"), (1000, "B")]
    assert ring.preference_list_for_hash(5, 2) == ["A", "B"]
    assert ring.preference_list_for_hash(2000, 1) == ["A"]
    assert len(ring.ranges()) == 3          # one arc per distinct token value
    assert sum(r.width for r in ring.ranges()) == RING_SIZE


def test_too_many_replicas_or_an_empty_ring_is_a_config_error():
    ring = Ring(["A", "B", "C"])
    with pytest.raises(ConfigError, match=r"n=4 .*has 3"):
        ring.preference_list("cart", 4)
    for bad in (0, -1, True, 2.0, "2"):
        with pytest.raises(ConfigError, match="n"):
            ring.preference_list("cart", bad)
    with pytest.raises(ConfigError, match="no nodes"):
        Ring().preference_list("cart", 1)
    with pytest.raises(ConfigError, match="no nodes"):
        Ring().coordinator("cart")
    with pytest.raises(ConfigError, match="no nodes"):
        Ring().successors("cart")


def test_bad_keys_and_positions_are_rejected():
    ring = Ring(["A", "B"])
    for bad in ("", 5.0, None, b"cart"):
        with pytest.raises(InvalidKey):
            ring.preference_list(bad, 1)
    with pytest.raises(InvalidKey):
        ring.successors("")
    for bad in (-1, RING_SIZE, True, "12"):
        with pytest.raises(ConfigError, match="ring position"):
            ring.preference_list_for_hash(bad, 1)
    with pytest.raises(ConfigError, match="ring position"):
        ring.successors(RING_SIZE)


def test_bad_construction_says_what_to_do():
    cases = [
        (lambda: Ring([""]), "non-empty"),
        (lambda: Ring([3]), "non-empty strings"),
        (lambda: Ring(["A", "B", "A"]), "duplicate"),
        (lambda: Ring(["A"], vnodes=0), "vnodes"),
        (lambda: Ring(["A"], vnodes=True), "vnodes"),
        (lambda: Ring(["A"], vnodes=1.5), "vnodes"),
        (lambda: Ring(["A"], strategy="fancy"), "strategy"),
        (lambda: Ring(["A"], strategy="equal"), "partitions=Q"),
        (lambda: Ring(["A", "B", "C"], strategy="equal", partitions=2), "fewer than the 3 nodes"),
        (lambda: Ring(["A"], strategy="equal", partitions=0), "partitions"),
        (lambda: Ring(["A"], partitions=8), "only used by strategy='equal'"),
        (lambda: Ring("ABC"), "did you mean"),
        (lambda: Ring(["x" * 300]), "longer than"),
        (lambda: Ring.from_tokens({"A": []}), "no tokens"),
        (lambda: Ring.from_tokens({"A": [1, 1]}), "twice"),
        (lambda: Ring.from_tokens({"A": [RING_SIZE]}), "ring position|token"),
        (lambda: Ring.from_tokens({"A": "123"}), "list of ints"),
        (lambda: Ring.from_tokens([("A", [1])]), "mapping"),
    ]
    for make, message in cases:
        with pytest.raises(ConfigError, match=message):
            make()
    ring = Ring(["A", "B"])
    with pytest.raises(ConfigError, match="already in the ring"):
        ring.add_node("A")
    with pytest.raises(ConfigError, match="not in the ring"):
        ring.remove_node("Z")
    with pytest.raises(ConfigError, match="not in the ring"):
        ring.tokens_of("Z")
    full = Ring(["A", "B"], strategy="equal", partitions=2)
    with pytest.raises(ConfigError, match="more partitions"):
        full.add_node("C")
    assert ring.nodes == ["A", "B"] and full.nodes == ["A", "B"]   # failed calls changed nothing


# --------------------------------------------------------------------------- membership changes

def test_add_and_remove_give_the_same_ring_as_building_it_directly():
    ring = Ring(["A", "B", "C"], vnodes=16)
    before = {k: ring.preference_list(k, 2) for k in sample_keys(300)}  # fills the lookup cache
    ring.add_node("D")
    assert ring == Ring(["A", "B", "C", "D"], vnodes=16)
    assert {k: ring.preference_list(k, 2) for k in sample_keys(300)} == {
        k: Ring(["A", "B", "C", "D"], vnodes=16).preference_list(k, 2) for k in sample_keys(300)}
    ring.remove_node("D")
    assert {k: ring.preference_list(k, 2) for k in sample_keys(300)} == before
    assert "D" not in ring and "A" in ring and len(ring) == 3


def test_copy_is_independent_and_from_tokens_round_trips():
    for ring in (Ring(["A", "B", "C"], vnodes=4), Ring(["A", "B", "C"], strategy="equal", partitions=12)):
        twin = ring.copy()
        assert twin == ring and twin.strategy == ring.strategy
        twin.add_node("D")
        assert "D" not in ring and twin != ring
        ring.add_node("D")
        assert twin == ring   # same deterministic join on both
        gossiped = Ring.from_tokens(ring.token_map())
        assert gossiped == ring and gossiped.strategy == "tokens"
        assert all(gossiped.preference_list(k, 3) == ring.preference_list(k, 3) for k in sample_keys(200))
    # a gossiped random ring grows exactly like the original
    g = Ring.from_tokens(Ring(["A", "B"], vnodes=6).token_map())
    g.add_node("C")
    assert g == Ring(["A", "B", "C"], vnodes=6)
    assert "Ring([A, B, C]" in repr(g) and len(g) == 3


def test_equal_strategy_does_not_depend_on_the_order_of_initial_nodes():
    a = Ring(["C", "A", "B", "D"], strategy="equal", partitions=16)
    b = Ring(["D", "B", "C", "A"], strategy="equal", partitions=16)
    assert a == b
    q = 16
    assert sorted(t for t, _ in a.tokens) == sorted((p + 1) * RING_SIZE // q % RING_SIZE for p in range(q))


def test_equal_strategy_assignment_is_pinned():
    # Every process must compute the same placement from the same calls; a change here is a
    # wire-incompatible change for gossiped 'equal' rings, so it must be deliberate.
    ring = Ring(["A", "B", "C"], strategy="equal", partitions=8)
    assert partition_owners(ring, 8) == ["A", "B", "C", "B", "A", "C", "A", "B"]
    ring.add_node("D")
    assert partition_owners(ring, 8) == ["D", "B", "C", "B", "A", "C", "A", "D"]
    ring.remove_node("A")
    assert partition_owners(ring, 8) == ["D", "B", "C", "B", "B", "C", "C", "D"]


def test_equal_strategy_ignores_vnodes_and_spreads_partitions():
    nodes = [f"n{i:02d}" for i in range(10)]
    ring = Ring(nodes, vnodes=3, strategy="equal", partitions=640)
    assert ring == Ring(nodes, vnodes=50, strategy="equal", partitions=640)
    ring.add_node("joiner")
    ring.remove_node("n04")
    owners = partition_owners(ring, 640)
    # Steals aim at evenly spaced targets, so a node's partitions rarely touch: fewer equal
    # neighbours than a random assignment's expected 640 / 10.
    assert sum(owners[p] == owners[p - 1] for p in range(640)) < 640 / 10 / 2


def partition_owners(ring: Ring, q: int) -> list[str]:
    by_token = dict(ring.tokens)
    return [by_token[(p + 1) * RING_SIZE // q % RING_SIZE] for p in range(q)]


@FAST
@given(q=st.integers(1, 40), ops=st.lists(st.tuples(st.booleans(), st.sampled_from("ABCDEFGHIJ")), max_size=25))
def test_equal_strategy_stays_balanced_and_moves_only_to_or_from_the_changed_node(q, ops):
    ring = Ring([], strategy="equal", partitions=q)
    for join, node in ops:
        old = partition_owners(ring, q) if len(ring) else [None] * q
        if join and node not in ring and len(ring) < q:
            ring.add_node(node)
            new = partition_owners(ring, q)
            assert all(b == node for a, b in zip(old, new) if a != b)      # joins take only to itself
        elif not join and node in ring:
            ring.remove_node(node)
            new = partition_owners(ring, q) if len(ring) else [None] * q
            assert all(a == node for a, b in zip(old, new) if a != b)      # leaves give only its own
            assert node not in new
        else:
            continue
        if len(ring):
            counts = {x: new.count(x) for x in ring.nodes}
            assert sum(counts.values()) == q
            assert all(q // len(ring) <= c <= -(-q // len(ring)) for c in counts.values())
            for x, share in ring.ownership().items():
                assert abs(share * q - counts[x]) < 1e-9 * q


@pytest.mark.parametrize("strategy", ["random", "equal"])
@pytest.mark.parametrize("n", [1, 3])
def test_a_join_moves_keys_only_to_the_new_node(strategy, n):
    kw = {"vnodes": 16} if strategy == "random" else {"partitions": 96}
    old = Ring([f"node-{i}" for i in range(7)], strategy=strategy, **kw)
    new = old.copy()
    new.add_node("newcomer")
    moved = moved_keys(old, new, sample_keys(4000), n=n)
    assert moved, "a join must move some keys"
    for key, (before, after) in moved.items():
        assert "newcomer" in after and "newcomer" not in before
        if n == 1:
            assert after == ["newcomer"]
        elif strategy == "random":  # old tokens stay put: the newcomer is inserted, the last pushed out
            assert [x for x in after if x != "newcomer"] == before[: n - 1]
    # and the reverse is a leave that gives keys back only from the leaver
    back = moved_keys(new, old, sample_keys(4000), n=n)
    assert back.keys() == moved.keys()
    assert all("newcomer" in before for before, _ in back.values())


def test_fraction_of_keys_moved_by_a_join_is_about_one_over_n_plus_one():
    nodes, vnodes, count = 10, 64, 20_000
    ks = sample_keys(count)
    old = Ring([f"node-{i}" for i in range(nodes)], vnodes=vnodes)
    expect = 1 / (nodes + 1)
    # the joiner's share is Beta(v, n v): CV sqrt(n / ((n+1) v + 1)); plus binomial key sampling
    share_sd = expect * math.sqrt(nodes / ((nodes + 1) * vnodes + 1))
    sample_sd = math.sqrt(expect * (1 - expect) / count)
    fractions = []
    for j in range(10):
        new = old.copy()
        new.add_node(f"joiner-{j}")
        frac = len(moved_keys(old, new, ks, n=1)) / count
        owned = new.ownership()[f"joiner-{j}"]
        assert abs(frac - owned) < 5 * sample_sd      # moved keys are exactly the joiner's arcs
        assert abs(frac - expect) < 5 * (share_sd + sample_sd)
        fractions.append(frac)
    mean = statistics.fmean(fractions)
    assert abs(mean - expect) < 4 * (share_sd / math.sqrt(10) + sample_sd), (mean, expect)

    equal_old = Ring([f"node-{i}" for i in range(nodes)], strategy="equal", partitions=110)
    equal_new = equal_old.copy()
    equal_new.add_node("joiner")
    frac = len(moved_keys(equal_old, equal_new, ks, n=1)) / count
    assert abs(frac - expect) < 5 * sample_sd         # exactly 10 of 110 partitions


def test_ownership_cv_matches_the_formula():
    # RMS over node-name sets: E[CV^2] is exactly (n-1)/(n v + 1) (the shares are Beta(v, (n-1) v)
    # and sum to 1), so the root mean square is the estimator without Jensen bias.
    n, sets = 10, 20
    rng = random.Random(2007)
    for v in (1, 4, 16, 64):
        sq = []
        for _ in range(sets):
            names = [f"node-{rng.getrandbits(32):08x}" for _ in range(n)]
            own = list(Ring(names, vnodes=v).ownership().values())
            assert math.isclose(sum(own), 1.0, rel_tol=1e-9)
            sq.append((statistics.pstdev(own) / statistics.fmean(own)) ** 2)
        measured = math.sqrt(statistics.fmean(sq))
        formula = math.sqrt((n - 1) / (n * v + 1))
        assert abs(measured / formula - 1) < 0.25, (v, measured, formula)


def test_equal_strategy_ownership_is_equal_within_one_partition():
    q = 64
    ring = Ring([f"n{i}" for i in range(10)], strategy="equal", partitions=q)
    own = ring.ownership()
    assert list(own) == ring.nodes
    assert math.isclose(sum(own.values()), 1.0)
    for share in own.values():
        assert abs(share * q - q / 10) <= 1
        assert abs(share * q - round(share * q)) < 1e-9


# --------------------------------------------------------------------------- ranges

@FAST
@given(ring=rings(), hs=st.lists(positions, min_size=1, max_size=5))
def test_ranges_tile_the_ring(ring, hs):
    rs = ring.ranges()
    assert sum(r.width for r in rs) == RING_SIZE
    assert all(rs[i].end == rs[i + 1].start for i in range(len(rs) - 1))
    assert rs[-1].end == rs[0].start
    assert [r.end for r in rs] == sorted({t for t, _ in ring.tokens})
    for h in hs:
        r = ring.range_of(h)
        assert r in rs and r.contains(h)
        assert sum(x.contains(h) for x in rs) == 1
        assert ring.replicas_of_range(r, 1) == ring.preference_list_for_hash(h, 1)


def test_single_token_ring_is_one_whole_ring_range():
    ring = Ring(["solo"], vnodes=1)
    (r,) = ring.ranges()
    assert r.start == r.end and r.width == RING_SIZE and r.fraction == 1.0
    assert r.contains(0) and r.contains(RING_SIZE - 1) and r.contains(r.end)
    assert ring.ownership() == {"solo": 1.0}
    assert ring.replicas_of_range(KeyRange(5, 5), 1) == ["solo"]


@FAST
@given(ring=rings(), data=st.data())
def test_replica_ranges_cover_every_range_exactly_n_times(ring, data):
    n = data.draw(st.integers(1, len(ring)))
    count = {r: 0 for r in ring.ranges()}
    for node in ring.nodes:
        for r in ring.replica_ranges(node, n):
            count[r] += 1
            assert node in ring.replicas_of_range(r, n)
    assert set(count.values()) == {n}


def test_replicas_of_range_rejects_a_range_spanning_several_arcs():
    ring = Ring.from_tokens({"A": [100], "B": [200]})
    assert ring.replicas_of_range(KeyRange(120, 150), 2) == ["B", "A"]
    with pytest.raises(ConfigError, match="several arcs"):
        ring.replicas_of_range(KeyRange(50, 150), 1)


# --------------------------------------------------------------------------- transfers

def check_transfers(old: Ring, new: Ring, n: int, ks: list[str]) -> list[Transfer]:
    ts = transfers(old, new, n)
    assert all(isinstance(t.range, KeyRange) for t in ts)
    moved = moved_keys(old, new, ks, n)
    covered = set()
    for key in ks:
        h = key_hash(key)
        hits = [t for t in ts if t.range.contains(h)]
        assert len(hits) <= 1                     # pieces are disjoint
        a, b = set(old.preference_list_for_hash(h, n)), set(new.preference_list_for_hash(h, n))
        if a == b:
            assert not hits
            continue
        (t,) = hits
        covered.add(key)
        assert set(t.gaining) == b - a and set(t.losing) == a - b and set(t.sources) == a
        assert [x for x in t.sources if x in new] == list(t.sources[: len([x for x in t.sources if x in new])])
    assert covered == set(moved)
    return ts


@pytest.mark.parametrize("strategy", ["random", "equal"])
@pytest.mark.parametrize("n", [1, 3])
def test_transfers_agree_with_moved_keys_on_join_and_leave(strategy, n):
    kw = {"vnodes": 8} if strategy == "random" else {"partitions": 40}
    old = Ring([f"s{i}" for i in range(6)], strategy=strategy, **kw)
    joined = old.copy()
    joined.add_node("j")
    ks = sample_keys(1500)
    ts = check_transfers(old, joined, n, ks)
    assert all(t.gaining == ("j",) and len(t.losing) == 1 for t in ts)
    # a join's transfers are exactly the ranges the joiner now replicates
    assert sum(t.range.width for t in ts) == sum(r.width for r in joined.replica_ranges("j", n))
    left = old.copy()
    left.remove_node("s3")
    ts = check_transfers(old, left, n, ks)
    assert all(t.losing == ("s3",) for t in ts)
    assert all(t.sources[-1] == "s3" for t in ts)     # the leaver is the source of last resort


def test_transfers_merge_neighbouring_pieces_even_across_zero():
    old = Ring.from_tokens({"A": [100], "B": [1000]})
    new = Ring.from_tokens({"A": [100], "B": [1000], "C": [50, 2000]})
    assert transfers(old, new, 1) == [Transfer(KeyRange(1000, 50), gaining=("C",), losing=("A",),
                                               sources=("A",))]


def test_transfers_from_an_empty_ring_and_below_n_nodes():
    (t,) = transfers(Ring(), Ring(["A"]), 3)
    assert t.range.width == RING_SIZE and t.gaining == ("A",) and t.sources == () and t.losing == ()
    # with fewer than n nodes every node holds everything; a join makes the newcomer gain it all
    ts = transfers(Ring(["A", "B"]), Ring(["A", "B", "C"]), 3)
    assert sum(t.range.width for t in ts) == RING_SIZE
    assert all(t.gaining == ("C",) and t.losing == () for t in ts)
    assert transfers(Ring(["A", "B"]), Ring(["A", "B"]), 2) == []
    with pytest.raises(ConfigError):
        transfers(Ring(["A"]), Ring(["A"]), 0)


# --------------------------------------------------------------------------- determinism

DETERMINISM_SCRIPT = """
from dynamo_lab.ring import Ring
r = Ring(['A', 'B', 'C', 'node-7'], vnodes=16)
print(r.tokens)
print([r.preference_list(f'cart:{i}', 3) for i in range(50)])
e = Ring(['E', 'D', 'C', 'B', 'A'], strategy='equal', partitions=32)
e.add_node('F'); e.remove_node('B')
print(e.tokens)
"""


def test_same_tokens_on_every_run_and_every_hashseed():
    outputs = []
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed,
                   PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run([sys.executable, "-c", DETERMINISM_SCRIPT], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    r = Ring(["A", "B", "C", "node-7"], vnodes=16)
    e = Ring(["E", "D", "C", "B", "A"], strategy="equal", partitions=32)
    e.add_node("F")
    e.remove_node("B")
    here = f"{r.tokens}\n{[r.preference_list(f'cart:{i}', 3) for i in range(50)]}\n{e.tokens}\n"
    assert outputs[0] == outputs[1] == here


# --------------------------------------------------------------------------- KeyRange

@FAST
@given(start=positions, end=positions, buckets=st.integers(1, 64), data=st.data())
def test_bucket_is_in_range_and_monotone_in_offset(start, end, buckets, data):
    r = KeyRange(start, end)
    a = data.draw(st.integers(0, r.width - 1))
    b = data.draw(st.integers(a, r.width - 1))
    ha, hb = (start + 1 + a) % RING_SIZE, (start + 1 + b) % RING_SIZE
    assert r.contains(ha) and r.contains(hb)
    assert r.offset(ha) == a
    assert r.bucket(ha, buckets) == a * buckets // r.width   # the formula Merkle trees inline
    ba, bb = r.bucket(ha, buckets), r.bucket(hb, buckets)
    assert 0 <= ba <= bb < buckets
    assert r.bucket((start + 1) % RING_SIZE, buckets) == 0
    assert r.bucket(r.end, buckets) == buckets - 1 or r.width < buckets
    if r.width < RING_SIZE:
        assert not r.contains(start)
        with pytest.raises(ValueError, match="not in the range"):
            r.bucket(start, buckets)


def test_bucket_formula_on_a_small_range():
    r = KeyRange(10, 20)
    assert [r.bucket(h, 4) for h in range(11, 21)] == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    wrap = KeyRange(RING_SIZE - 2, 1)      # hashes RING_SIZE-1, 0, 1
    assert [wrap.bucket(h, 3) for h in (RING_SIZE - 1, 0, 1)] == [0, 1, 2]


def test_key_range_json_str_and_validation():
    r = KeyRange(0x3FA2 << 112, 0x9C01 << 112)
    assert str(r) == "(3fa2..:9c01..]"
    assert r.to_json() == [str(0x3FA2 << 112), str(0x9C01 << 112)]
    assert KeyRange.from_json(r.to_json()) == r
    assert KeyRange(10, 5).width == RING_SIZE - 5          # wraps
    assert KeyRange(5, 10).fraction == 5 / RING_SIZE
    for bad in (None, ["1"], ["1", "2", "3"], ["-1", "2"], ["1.5", "2"], ["0x10", "2"],
                [" 1", "2"], [True, "2"], ["1", str(RING_SIZE)], "12"):
        with pytest.raises(ValueError):
            KeyRange.from_json(bad)
    with pytest.raises(ConfigError, match="ring position|KeyRange"):
        KeyRange(-1, 5)
    with pytest.raises(ConfigError, match="buckets"):
        r.bucket(r.end, 0)
    with pytest.raises(Exception):
        r.start = 3  # frozen
