"""The store contract, run against both engines, plus what only the SQLite engine promises."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dynamo_lab.errors import ClientError, InvalidKey, InvalidValue
from dynamo_lab.storage import (APPLICATION_ID, SCHEMA_VERSION, Hint, MemoryStore, SqliteStore,
                                Store, StoreClosed, StoreError, StoreFormatError)
from dynamo_lab.vclock import VectorClock
from dynamo_lab.versions import Versioned

ROOT = Path(__file__).resolve().parents[1]


def v(value, deleted=False, **counters):
    return Versioned(value, VectorClock(counters or {"A": 1}), deleted)


def mutated(version, bad):
    version.value["k"].append(bad)
    return version


CART = [
    v({"items": ["book", {"title": "Dynamo", "pages": [1, 2.5, None, True]}]}, A=2),
    v(["pen"], A=1, B=1),
    v(None, deleted=True, C=3),
]


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "node" / "A.db")
    yield s
    s.close()


# ----------------------------------------------------------------------------------------------
# The contract, for both engines

def test_put_get_round_trip_keeps_siblings_in_order_with_tombstones(store):
    store.put("cart:alice", CART)
    assert store.get("cart:alice") == CART
    assert store.get("cart:alice")[2].deleted is True
    assert "cart:alice" in store and len(store) == 1


def test_clock_timestamps_survive(store):
    # Equality ignores timestamps, but truncation needs them after a restart.
    stamped = Versioned(["x"], VectorClock({"A": (3, 12.5), "B": (1, 0.25)}))
    store.put("k", [stamped])
    store.put_hint("C", "k", [stamped])
    for got in (store.get("k")[0], store.get_hint("C", "k")[0]):
        assert got.clock.to_json() == {"A": [3, 12.5], "B": [1, 0.25]}


@pytest.mark.parametrize("key", ["é", "panier:élodie/🛒", "a\x00b", " ", "k" * 1024])
def test_unicode_and_odd_keys_round_trip(store, key):
    store.put(key, CART[:1])
    assert store.get(key) == CART[:1]
    assert store.keys() == [key]


def test_absent_key_reads_as_empty(store):
    assert store.get("nope") == [] and "nope" not in store and len(store) == 0


def test_put_replaces_all_siblings(store):
    store.put("k", CART)
    store.put("k", [v("new", B=5)])
    assert store.get("k") == [v("new", B=5)]
    assert len(store) == 1


@pytest.mark.parametrize("empty", [[], ()])
def test_empty_put_removes_the_key(store, empty):
    store.put("k", CART)
    store.put("k", empty)
    assert store.get("k") == [] and "k" not in store and store.keys() == []
    store.put("never-there", empty)
    assert len(store) == 0


def test_delete_removes_and_is_a_noop_when_absent(store):
    store.put("a", CART)
    store.put("b", CART[:1])
    store.delete("a")
    store.delete("a")
    store.delete("zzz")
    assert store.keys() == ["b"] and store.get("a") == []


def test_keys_and_items_are_sorted_by_code_point(store):
    keys = ["b", "é", "A", "a", "🛒", "a\x00", "Z", "ab"]
    for i, key in enumerate(keys):
        store.put(key, [v(i, A=i + 1)])
    assert store.keys() == sorted(keys)
    assert list(store.items()) == [(k, [v(keys.index(k), A=keys.index(k) + 1)])
                                   for k in sorted(keys)]
    assert len(store) == len(keys)


def test_items_is_a_snapshot_safe_to_mutate_under(store):
    for key in ["a", "b", "c"]:
        store.put(key, [v(key)])
    seen = []
    for key, versions in store.items():
        seen.append((key, versions[0].value))
        store.delete("c")
        store.put("d", [v("d")])
    assert seen == [("a", "a"), ("b", "b"), ("c", "c")]
    assert store.keys() == ["a", "b", "d"]


def test_callers_cannot_mutate_the_store_through_values(store):
    passed = [v({"items": ["book"]})]
    store.put("k", passed)
    passed[0].value["items"].append("injected")
    passed.append(v("extra"))
    got = store.get("k")
    got[0].value["items"].append("again")
    got.clear()
    assert [x.value for x in store.get("k")] == [{"items": ["book"]}]
    hinted = [v(["x"])]
    store.put_hint("C", "k", hinted)
    hinted[0].value.append("y")
    store.hints()[0].versions[0].value.append("z")
    assert [x.value for x in store.get_hint("C", "k")] == [["x"]]


def test_hints_are_kept_apart_from_data(store):
    store.put_hint("C", "cart", CART)
    assert store.get("cart") == [] and "cart" not in store
    assert store.keys() == [] and list(store.items()) == [] and len(store) == 0
    store.put("cart", [v("mine", B=1)])
    store.put("other", [v("mine too")])
    assert store.get("cart") == [v("mine", B=1)]
    assert store.get_hint("C", "cart") == CART
    assert store.get_hint("C", "other") == []
    assert store.hints() == [Hint("C", "cart", tuple(CART))]
    store.delete("cart")
    assert store.get_hint("C", "cart") == CART
    store.delete_hint("C", "cart")
    assert store.get("other") == [v("mine too")] and store.hint_count() == 0


def test_hints_are_kept_per_intended_node(store):
    store.put_hint("D", "k2", [v(2)])
    store.put_hint("C", "k2", [v("c2")])
    store.put_hint("C", "k1", CART)
    store.put_hint("D", "k1", [v(1, D=1)])
    assert store.hints() == [Hint("C", "k1", tuple(CART)), Hint("C", "k2", (v("c2"),)),
                             Hint("D", "k1", (v(1, D=1),)), Hint("D", "k2", (v(2),))]
    assert [h.key for h in store.hints("C")] == ["k1", "k2"]
    assert all(h.intended == "D" for h in store.hints("D"))
    assert store.hints("E") == []
    assert store.hinted_nodes() == ["C", "D"] and store.hint_count() == 4
    assert store.get_hint("D", "k1") == [v(1, D=1)] and store.get_hint("E", "k1") == []

    store.put_hint("C", "k1", [v("replaced")])
    assert store.get_hint("C", "k1") == [v("replaced")] and store.hint_count() == 4
    store.put_hint("C", "k1", [])
    store.delete_hint("C", "k2")
    store.delete_hint("C", "k2")
    assert store.hinted_nodes() == ["D"] and store.hint_count() == 2
    assert store.get_hint("C", "k1") == []


def test_meta(store):
    assert store.get_meta("incarnation") is None
    store.set_meta("incarnation", "1")
    store.set_meta("incarnation", "2")
    store.set_meta("node_id", "Ä")
    assert store.get_meta("incarnation") == "2" and store.get_meta("node_id") == "Ä"
    assert store.keys() == [] and store.hints() == []


def test_wipe_loses_data_hints_and_meta_and_the_store_stays_usable(store):
    store.put("k", CART)
    store.put_hint("C", "k", CART)
    store.set_meta("incarnation", "3")
    store.wipe()
    assert store.keys() == [] and len(store) == 0 and store.get("k") == []
    assert store.hints() == [] and store.hinted_nodes() == [] and store.hint_count() == 0
    assert store.get_meta("incarnation") is None
    store.put("k", CART[:1])
    assert store.get("k") == CART[:1]


def test_close_is_idempotent_and_any_use_after_it_raises(store):
    store.put("k", CART)
    store.close()
    store.close()
    calls = [lambda: store.get("k"), lambda: store.put("k", CART), lambda: store.delete("k"),
             store.keys, store.items, lambda: len(store), lambda: "k" in store,
             lambda: store.put_hint("C", "k", CART), lambda: store.get_hint("C", "k"),
             lambda: store.delete_hint("C", "k"), store.hints, store.hinted_nodes,
             store.hint_count, lambda: store.get_meta("x"), lambda: store.set_meta("x", "y"),
             store.wipe, store.__enter__]
    for call in calls:
        with pytest.raises(StoreClosed, match="closed"):
            call()


def test_context_manager_closes(store):
    with store as s:
        assert s is store
        s.put("k", CART)
    with pytest.raises(StoreClosed):
        store.get("k")


@pytest.mark.parametrize("key", ["", 7, None, b"k", "x" * 1025, "\ud800"])
def test_bad_keys_are_refused(store, key):
    for call in [lambda: store.get(key), lambda: store.put(key, CART), lambda: store.delete(key),
                 lambda: key in store, lambda: store.put_hint("C", key, CART),
                 lambda: store.get_hint("C", key), lambda: store.delete_hint("C", key)]:
        with pytest.raises(InvalidKey):
            call()
    assert len(store) == 0 and store.hint_count() == 0


@pytest.mark.parametrize("versions, match", [
    ("abc", "sequence"),
    (v("single"), "sequence"),
    ({"k": 1}, "sequence"),
    (None, "sequence"),
    ([v(1), {"value": 1}], r"versions\[1\]"),
    ([v(1), "not a version"], r"versions\[1\]"),
    # Versioned checks its value when built; these were mutated afterwards.
    ([v(1), mutated(v({"k": []}), {1, 2})], "not JSON"),
    ([v(1), mutated(v({"k": []}), math.nan)], "JSON cannot represent"),
    ([v(1), mutated(v({"k": []}), object())], "not JSON"),
])
def test_bad_versions_are_refused_and_change_nothing(store, versions, match):
    store.put("k", CART)
    store.put_hint("C", "k", CART)
    with pytest.raises(InvalidValue, match=match):
        store.put("k", versions)
    with pytest.raises(InvalidValue, match=match):
        store.put_hint("C", "k", versions)
    with pytest.raises(InvalidValue, match=match):
        store.put_hint("D", "k", versions)
    assert store.get("k") == CART and store.get_hint("C", "k") == CART
    assert store.hinted_nodes() == ["C"]


@pytest.mark.parametrize("intended", ["", None, 3])
def test_bad_intended_node_is_refused(store, intended):
    for call in [lambda: store.put_hint(intended, "k", CART), lambda: store.get_hint(intended, "k"),
                 lambda: store.delete_hint(intended, "k"), lambda: store.hints(intended or 0)]:
        with pytest.raises(ClientError, match="intended node"):
            call()
    assert store.hint_count() == 0


def test_bad_meta_is_refused(store):
    with pytest.raises(ClientError, match="meta name"):
        store.set_meta("", "1")
    with pytest.raises(ClientError, match="meta name"):
        store.get_meta(None)
    with pytest.raises(InvalidValue, match="meta values are strings"):
        store.set_meta("incarnation", 1)
    assert store.get_meta("incarnation") is None


def test_errors_are_value_errors():
    assert issubclass(InvalidKey, ValueError) and issubclass(InvalidValue, ValueError)
    assert issubclass(ClientError, ValueError)


# ----------------------------------------------------------------------------------------------
# Each engine against a plain dict model, over random operations

NODES = ["A", "B", "C"]
# Few keys, so data and hints often share one; any text in put_any_key.
KEYS = st.sampled_from(["a", "b", "é", "🛒", "a\x00b"])
ANY_KEY = st.text(st.characters(codec="utf-8"), min_size=1, max_size=4)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=6)
ENTRIES = st.tuples(st.integers(1, 5), st.floats(0, 1e6, allow_nan=False))
CLOCKS = st.dictionaries(st.sampled_from(NODES), st.integers(1, 5) | ENTRIES).map(VectorClock)
VERSIONED = st.builds(Versioned, JSON, CLOCKS, st.booleans())
SIBLINGS = st.lists(VERSIONED, max_size=3)
INTENDED = st.sampled_from(["C", "D", "E"])
META = st.sampled_from(["incarnation", "tokens"])


class StoreMachine(RuleBasedStateMachine):
    """Random put/delete/hint/meta/wipe steps on one engine, checked against dicts after each."""

    def __init__(self):
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="dynamo-lab-store-")
        self.store = self.open()
        self.data, self.hint_data, self.meta = {}, {}, {}

    def open(self) -> Store:
        raise NotImplementedError

    def teardown(self):
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(key=KEYS, versions=SIBLINGS)
    def put(self, key, versions):
        self.store.put(key, versions)
        if versions:
            self.data[key] = list(versions)
        else:
            self.data.pop(key, None)

    @rule(key=ANY_KEY, versions=SIBLINGS)
    def put_any_key(self, key, versions):
        self.put(key, versions)

    @rule(key=KEYS)
    def delete(self, key):
        self.store.delete(key)
        self.data.pop(key, None)

    @rule(intended=INTENDED, key=KEYS, versions=SIBLINGS)
    def put_hint(self, intended, key, versions):
        self.store.put_hint(intended, key, tuple(versions))
        if versions:
            self.hint_data[intended, key] = list(versions)
        else:
            self.hint_data.pop((intended, key), None)

    @rule(intended=INTENDED, key=KEYS)
    def delete_hint(self, intended, key):
        self.store.delete_hint(intended, key)
        self.hint_data.pop((intended, key), None)

    @rule(name=META, value=st.text(max_size=4))
    def set_meta(self, name, value):
        self.store.set_meta(name, value)
        self.meta[name] = value

    @rule()
    def wipe(self):
        self.store.wipe()
        self.data, self.hint_data, self.meta = {}, {}, {}

    @rule(key=KEYS)
    def read_one(self, key):
        assert self.store.get(key) == self.data.get(key, [])
        assert (key in self.store) == (key in self.data)

    @invariant()
    def matches_the_model(self):
        s = self.store
        assert s.keys() == sorted(self.data)
        assert list(s.items()) == sorted(self.data.items())
        assert len(s) == len(self.data)
        assert s.hints() == [Hint(i, k, tuple(vs)) for (i, k), vs in sorted(self.hint_data.items())]
        assert s.hinted_nodes() == sorted({i for i, _ in self.hint_data})
        assert s.hint_count() == len(self.hint_data)
        for node in ["C", "D", "E"]:
            assert s.hints(node) == [h for h in s.hints() if h.intended == node]
        for (i, k), vs in sorted(self.hint_data.items()):
            assert s.get_hint(i, k) == vs
        for name in ["incarnation", "tokens"]:
            assert s.get_meta(name) == self.meta.get(name)


MODEL_SETTINGS = settings(derandomize=True, max_examples=25, stateful_step_count=20,
                          deadline=None, suppress_health_check=[HealthCheck.too_slow])


class MemoryStoreMachine(StoreMachine):
    def open(self):
        return MemoryStore()


class SqliteStoreMachine(StoreMachine):
    def open(self):
        return SqliteStore(Path(self.tmp) / "A.db")

    @rule()
    def reopen(self):
        # A restart: everything committed must be read back from the file alone.
        self.store.close()
        self.store = self.open()


class GroupedSqliteStoreMachine(StoreMachine):
    """Group commit: writes join an open group that ``commit`` makes durable; a crash (the
    file closed without a commit) loses exactly the writes since the last commit."""

    def __init__(self):
        super().__init__()
        self.committed = ({}, {}, {})

    def open(self):
        return SqliteStore(Path(self.tmp) / "A.db", group_commit=True)

    @rule()
    def commit(self):
        writes = self.store.commit()
        assert not self.store.pending and self.store.commit() == 0
        assert writes >= 0
        self.committed = (dict(self.data), dict(self.hint_data), dict(self.meta))

    @rule()
    def crash(self):
        self.store.close()
        self.store = self.open()
        self.data, self.hint_data, self.meta = (dict(m) for m in self.committed)


TestMemoryStoreAgainstModel = MemoryStoreMachine.TestCase
TestMemoryStoreAgainstModel.settings = MODEL_SETTINGS
TestSqliteStoreAgainstModel = SqliteStoreMachine.TestCase
TestSqliteStoreAgainstModel.settings = MODEL_SETTINGS
TestGroupedSqliteStoreAgainstModel = GroupedSqliteStoreMachine.TestCase
TestGroupedSqliteStoreAgainstModel.settings = MODEL_SETTINGS


# ----------------------------------------------------------------------------------------------
# SQLite only: durability, the file format, refusing foreign files

def test_sqlite_data_hints_and_meta_survive_reopening(tmp_path):
    path = tmp_path / "A.db"
    with SqliteStore(path) as s:
        s.put("cart", CART)
        s.put("gone", CART)
        s.delete("gone")
        s.put_hint("C", "cart", CART[:2])
        s.set_meta("incarnation", "4")
    with SqliteStore(str(path)) as s:
        assert s.path == path
        assert list(s.items()) == [("cart", CART)]
        assert s.hints() == [Hint("C", "cart", tuple(CART[:2]))]
        assert s.get_meta("incarnation") == "4"


def test_sqlite_a_second_process_sees_committed_data(tmp_path):
    path = tmp_path / "A.db"
    script = (
        "import json, sys\n"
        "from dynamo_lab.storage import SqliteStore\n"
        "with SqliteStore(sys.argv[1]) as s:\n"
        "    print(json.dumps({'data': [[k, [x.to_json() for x in vs]] for k, vs in s.items()],\n"
        "                      'hints': [[h.intended, h.key, len(h.versions)] for h in s.hints()],\n"
        "                      'meta': s.get_meta('incarnation')}))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with SqliteStore(path) as s:  # still open: the write must be visible without closing
        s.put("cart", CART)
        s.put_hint("C", "cart", CART)
        s.set_meta("incarnation", "9")
        out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                             text=True, env=env, timeout=60, check=True).stdout
        seen = json.loads(out)
        assert [[k, [Versioned.from_json(x) for x in vs]] for k, vs in seen["data"]] \
            == [["cart", CART]]
        assert seen["hints"] == [["C", "cart", 3]] and seen["meta"] == "9"
        s.put("later", CART[:1])  # and the other process did not lock us out
        assert s.keys() == ["cart", "later"]


def test_sqlite_file_is_wal_full_sync_and_versioned(tmp_path):
    path = tmp_path / "deep" / "er" / "A.db"
    s = SqliteStore(path)
    assert path.parent.is_dir()
    assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    s.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    finally:
        conn.close()


def test_sqlite_empty_file_is_initialised(tmp_path):
    path = tmp_path / "A.db"
    path.write_bytes(b"")
    with SqliteStore(path) as s:
        s.put("k", CART)
    with SqliteStore(path) as s:
        assert s.get("k") == CART


def test_sqlite_refuses_another_sqlite_database_and_leaves_it_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreFormatError, match="not a dynamo-lab store"):
        SqliteStore(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_sqlite_refuses_a_text_file_and_leaves_it_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("shopping list: book, pen\n" * 10)
    with pytest.raises(StoreFormatError, match="not a dynamo-lab store"):
        SqliteStore(path)
    assert path.read_text() == "shopping list: book, pen\n" * 10


def test_sqlite_refuses_a_store_from_a_newer_version(tmp_path):
    path = tmp_path / "A.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreFormatError, match="newer dynamo-lab"):
        SqliteStore(path)


@pytest.mark.parametrize("path", ["", ":memory:", None, 3])
def test_sqlite_needs_a_file_path(path):
    with pytest.raises(ClientError, match="file path"):
        SqliteStore(path)


def test_sqlite_group_commit_one_transaction_for_many_writes(tmp_path):
    path = tmp_path / "A.db"
    with SqliteStore(path, group_commit=True) as s:
        assert not s.pending and s.commit() == 0
        s.put("cart", CART)
        s.put_hint("C", "cart", CART[:1])
        s.set_meta("incarnation", "2")
        s.delete("gone")
        assert s.pending and s.get("cart") == CART      # the group's writes are read back
        with SqliteStore(path) as other:                # another reader: nothing committed
            assert other.keys() == [] and other.get_meta("incarnation") is None
        assert s.commit() == 4 and not s.pending
        with SqliteStore(path) as other:
            assert other.get("cart") == CART and other.get_meta("incarnation") == "2"
        s.put("later", CART[:1])
    with SqliteStore(path) as s:                        # closed without commit: dropped
        assert s.keys() == ["cart"]


def test_sqlite_group_commit_may_run_on_another_thread(tmp_path):
    import threading
    with SqliteStore(tmp_path / "A.db", group_commit=True) as s:
        s.put("cart", CART)
        out = []
        t = threading.Thread(target=lambda: out.append(s.commit()))
        t.start()
        t.join()
        assert out == [1] and not s.pending


def test_sqlite_a_failed_write_loses_the_whole_group(tmp_path):
    path = tmp_path / "A.db"
    with SqliteStore(path, group_commit=True) as s:
        s.put("kept", CART)
        assert s.commit() == 1
        s.put("first", CART)
        s._conn.execute("DROP TABLE hints")             # the next write fails in SQLite
        with pytest.raises(sqlite3.Error):
            s.put_hint("C", "cart", CART)
        assert s.pending
        with pytest.raises(StoreError, match="none of its 1 writes were kept"):
            s.commit()
        assert not s.pending and s.keys() == ["kept"]


def test_sqlite_hinted_nodes_forget_the_hints_of_a_group_that_was_not_kept(tmp_path):
    with SqliteStore(tmp_path / "A.db", group_commit=True) as s:
        s.put_hint("C", "cart", CART)
        assert s.hinted_nodes() == ["C"]                 # read back before the commit
        s._conn.execute("DROP TABLE meta")              # the next write fails in SQLite
        with pytest.raises(sqlite3.Error):
            s.set_meta("incarnation", "2")
        with pytest.raises(StoreError, match="none of its 1 writes were kept"):
            s.commit()
        assert s.hinted_nodes() == [] and s.hint_count() == 0
        s.put_hint("D", "cart", CART)
        s.delete_hint("D", "cart")
        assert s.hinted_nodes() == []
