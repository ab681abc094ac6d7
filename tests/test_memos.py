"""What the speed-ups of issue 12 must not change: digests and stored rows are the canonical
JSON they always were, memoised contexts are still checked per cluster, the simulator's
garbage-collector setting is its own and undone afterwards."""

from __future__ import annotations

import gc
import hashlib
import json
import random
import sqlite3

import pytest

from dynamo_lab import versions
from dynamo_lab.errors import InvalidContext
from dynamo_lab.sim.simulator import FULL_COLLECTION_EVERY, YOUNG_COLLECTION_EVERY, Simulator
from dynamo_lab.storage import MemoryStore, SqliteStore
from dynamo_lab.vclock import VectorClock
from dynamo_lab.versions import (Versioned, canonical_json, decode_context, encode_context)

VALUES = [None, 0, -3, 2.5, 1e16, "", "é☃\n\"\\", True, False, [], {}, ["a", {"z": 1, "a": [1, None]}],
          {"b": "x", "a": 1.0, "c": {"é": []}}]


def random_versions(seed: int, count: int) -> list[Versioned]:
    r = random.Random(seed)
    out = []
    for _ in range(count):
        counters = {n: (r.randint(1, 5), r.choice([0.0, 1.5, r.random() * 100]))
                    for n in r.sample("ABCDE", r.randint(0, 4))}
        dots = [(n, r.randint(7, 9)) for n in r.sample("ABC", r.randint(0, 2))]
        out.append(Versioned(r.choice(VALUES), VectorClock(counters, dots=dots), r.random() < 0.3,
                             r.choice([None, "c1:7", "ü\"x"])))
    return out


def test_a_digest_is_the_sha256_of_the_canonical_json_of_its_fields():
    for v in random_versions(1, 2000):
        fields = {"clock": v.clock.counters(), "deleted": v.deleted, "value": v.value}
        if v.clock.dots:
            fields["dots"] = [list(d) for d in v.clock.dots]
        if v.write_id is not None:
            fields["write_id"] = v.write_id
        assert v.digest() == hashlib.sha256(canonical_json(fields).encode()).hexdigest()
        assert v.value_text() == canonical_json(v.value)
        assert v.clock.json_text() == canonical_json(v.clock.to_json())


def test_a_sqlite_row_is_the_canonical_json_of_its_versions(tmp_path):
    store = SqliteStore(tmp_path / "A.db")
    rows = {f"k{i}": random_versions(i, i % 4 + 1) for i in range(60)}
    for key, versions in rows.items():
        store.put(key, versions)
    store.close()
    with sqlite3.connect(tmp_path / "A.db") as db:
        held = dict(db.execute("SELECT key, versions FROM data"))
    assert held == {k: canonical_json([v.to_json() for v in vs]) for k, vs in rows.items()}


@pytest.mark.parametrize("make", [MemoryStore, lambda: None], ids=["memory", "sqlite"])
def test_a_value_mutated_after_its_version_was_built_is_stored_as_it_is_now(make, tmp_path):
    store = make() or SqliteStore(tmp_path / "A.db")
    v = Versioned({"items": ["book"]}, VectorClock({"A": 1}))
    v.value["items"].append("pen")
    store.put("k", [v])
    assert [x.value for x in store.get("k")] == [{"items": ["book", "pen"]}]
    store.close()


def test_a_remembered_context_is_still_refused_by_another_cluster():
    clock = VectorClock({"A": (2, 1.0), "B": (1, 2.0)})
    ctx = encode_context(clock, "cluster-one")
    assert decode_context(ctx, "cluster-one") == clock        # remembered now
    assert encode_context(clock, "cluster-one") == ctx
    with pytest.raises(InvalidContext, match="signature"):
        decode_context(ctx, "cluster-two")
    with pytest.raises(InvalidContext):
        decode_context(ctx[:-1] + ("0" if ctx[-1] != "0" else "1"), "cluster-one")
    assert encode_context(clock, "cluster-two") != ctx


def test_a_context_signed_here_is_read_back_without_signing_it_again(monkeypatch):
    clock = VectorClock({"A": (7, 1.0)})
    ctx = encode_context(clock, "cluster-one")
    signed = []
    monkeypatch.setattr(versions, "_sign", lambda *a: signed.append(a) or "0" * 16)
    assert decode_context(ctx, "cluster-one") == clock
    assert signed == []
    with pytest.raises(InvalidContext, match="signature"):      # other clusters still check
        decode_context(ctx, "cluster-two")
    assert len(signed) == 1


def test_the_simulator_sets_its_collector_threshold_only_while_it_runs():
    before = gc.get_threshold()
    seen = []
    sim = Simulator(1)
    sim.schedule(1.0, lambda: seen.append(gc.get_threshold()))
    sim.run_until(2.0)
    assert seen == [(max(before[0], YOUNG_COLLECTION_EVERY), before[1],
                     max(before[2], FULL_COLLECTION_EVERY))]
    assert gc.get_threshold() == before
    sim.schedule(1.0, lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        sim.run_until(5.0)
    assert gc.get_threshold() == before
