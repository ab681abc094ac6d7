"""What a node keeps on disk: its own replicas, the hinted replicas it holds for others, and a
few durable facts about itself.

The store is dumb on purpose. It never reconciles: the node decides which siblings survive and
hands the store the whole sibling list of a key, which the store keeps as given (same order,
tombstones included). That keeps every Dynamo technique in node code, where the simulator can
see it, and lets the same node run on either engine:

* :class:`MemoryStore` -- dicts; what the simulator uses. A crash in the simulator drops the
  node object but keeps the store, exactly like a process restart over the same disk.
* :class:`SqliteStore` -- one SQLite file per node; what the TCP runtime uses. By default every
  mutating call is one transaction, committed with ``synchronous=FULL`` before the call
  returns. With ``group_commit=True`` (the TCP runtime) mutating calls join one open
  transaction and :meth:`SqliteStore.commit` makes the whole group durable with one fsync; the
  runtime holds back every acknowledgement of the group until then, so a write the node
  acknowledged survives a ``kill -9`` either way.

Hinted replicas (the paper's hinted handoff, section 4.6) are kept apart from the node's own
data, each tagged with the node it was *intended* for: a hint never shows up in :meth:`get` or
:meth:`keys`, and the node's own data never shows up in :meth:`hints`.

The SQLite store keeps the canonical JSON (``versions.canonical_json``) of
``Versioned.to_json()`` for each key; the memory store keeps the versions themselves (immutable
but for their values) beside the canonical JSON of each list or object value. Both accept and
return exactly the same things: a value that would not survive the wire is rejected by both,
and a value read back is always a fresh copy the caller may mutate freely. Neither validates
again what a version checked when it was built, unless the value was mutated since. No pickle
anywhere.
"""

from __future__ import annotations

import abc
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import jsontext
from .errors import ClientError, DynamoError, InvalidValue
from .hashing import check_key
from .versions import Versioned, canonical_json
from .versions import _dumps as _canonical     # canonical_json's text, without its checks

_loads = jsontext.loads

__all__ = [
    "Hint", "Store", "MemoryStore", "SqliteStore",
    "StoreError", "StoreClosed", "StoreFormatError",
    "SCHEMA_VERSION", "APPLICATION_ID",
]

#: Bump when the on-disk layout changes; a file with a larger number is refused, not misread.
SCHEMA_VERSION = 1
#: Written to the SQLite header (``PRAGMA application_id``) so a dynamo-lab store is recognised
#: as one, and any other SQLite file is refused instead of being silently written into.
APPLICATION_ID = 0x44594E4C  # b"DYNL"


class StoreError(DynamoError):
    """The store cannot be used as asked (closed, or the file is not a dynamo-lab store)."""


class StoreClosed(StoreError):
    """A method was called after :meth:`Store.close`."""


class StoreFormatError(StoreError):
    """The file is not a dynamo-lab store, or was written by a newer version of dynamo-lab."""


@dataclass(frozen=True)
class Hint:
    """A replica held on behalf of another node (hinted handoff).

    ``intended`` is the node the replica was meant for; the holder hands ``versions`` of ``key``
    back to it once it is reachable again, then deletes the hint.
    """

    intended: str
    key: str
    versions: tuple[Versioned, ...]


# ----------------------------------------------------------------------------------------------
# Validation and the one codec both engines share

def _check_intended(intended: object) -> str:
    if not isinstance(intended, str) or intended == "":
        raise ClientError(f"the intended node of a hint is a non-empty node id such as 'C'; "
                          f"got {type(intended).__name__} {intended!r}")
    return intended


def _check_meta_name(name: object) -> str:
    if not isinstance(name, str) or name == "":
        raise ClientError(f"a meta name is a non-empty string such as 'incarnation'; "
                          f"got {type(name).__name__} {name!r}")
    return name


def _check_meta_value(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"meta values are strings; got {type(value).__name__} {value!r}. "
                           f"Convert it first, e.g. str(value) or json.dumps(value).")
    return value


def _check_versions(versions: object) -> None:
    # A str is a Sequence too; it would be read as a list of characters.
    if type(versions) is not list and type(versions) is not tuple and (
            isinstance(versions, (str, bytes, bytearray)) or not isinstance(versions, Sequence)):
        raise InvalidValue(f"versions is a sequence (list or tuple) of Versioned; got "
                           f"{type(versions).__name__}. Wrap one version as [v].")
    for i, v in enumerate(versions):
        if not isinstance(v, Versioned):
            raise InvalidValue(f"versions[{i}] is a {type(v).__name__}, not a Versioned; "
                               f"build it as Versioned(value, clock)")


def _encode_versions(versions: object) -> str:
    """Check ``versions`` and return its canonical JSON; raise :class:`InvalidValue` if unfit.

    Called before anything is touched, so a bad sibling list never leaves a half-written key.
    """
    _check_versions(versions)
    # canonical_json([v.to_json() for v in versions]), written out from the texts each version
    # and clock made once (sorted keys: clock, deleted, value, write_id). _value_text checks
    # again a value mutated since its version was built, and names the offending part.
    text = "[" + ",".join(
        '{"clock":' + v.clock.json_text()
        + (',"deleted":true,"value":' if v.deleted else ',"deleted":false,"value":')
        + (_value_text(v) or v.value_text())
        + (',"write_id":' + _canonical(v.write_id) if v.write_id is not None else "") + "}"
        for v in versions) + "]"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue("a version contains a lone surrogate, which is not valid Unicode "
                           "text") from None
    return text


def _decode_versions(text: str) -> list[Versioned]:
    return [Versioned.from_json(obj) for obj in jsontext.loads(text)]


_IMMUTABLE = (str, int, float, bool, type(None))


def _value_text(v: Versioned) -> str | None:
    """The canonical JSON of ``v.value`` (None for an immutable value); raises
    :class:`InvalidValue` if the value was mutated since ``v`` was built into something that
    is not JSON."""
    if type(v.value) in _IMMUTABLE:
        return None      # checked when v was built, and it cannot have changed since
    try:
        text = _canonical(v.value)       # raises for most non-JSON; checked properly below
    except (TypeError, ValueError, RecursionError):
        text = None
    if text != v.value_text():
        # Mutated since it was built (or not JSON at all): check it the slow way, which names
        # the offending part, and keep what it is now, as the SQLite store would.
        text = canonical_json(v.value)
    return text


# ----------------------------------------------------------------------------------------------
# The interface

class Store(abc.ABC):
    """What a node keeps on disk. Dumb on purpose: the node reconciles, the store only keeps
    siblings. Hinted replicas are kept apart from the node's own data, each with the node it is
    meant for.

    Every method raises :class:`StoreClosed` after :meth:`close`; bad arguments raise a
    ``ValueError`` subclass (:class:`InvalidKey`, :class:`InvalidValue`, :class:`ClientError`)
    and change nothing. Lists returned are fresh: mutating them never changes the store.
    """

    # -- the node's own replicas ---------------------------------------------------------------

    def get(self, key: str) -> list[Versioned]:
        """The siblings stored for ``key``, in the order they were put; ``[]`` when absent."""
        self._check_open()
        record = self._get(check_key(key))
        return [] if record is None else self._decode(record)

    def put(self, key: str, versions: Sequence[Versioned]) -> None:
        """Replace the siblings of ``key`` with ``versions`` (kept as given, tombstones too).

        An empty sequence removes the key. Atomic: on any error nothing changes.
        """
        self._check_open()
        check_key(key)
        record = self._encode(versions)
        if len(versions) == 0:
            self._delete(key)
        else:
            self._put(key, record)

    def delete(self, key: str) -> None:
        """Remove ``key`` entirely (no tombstone: that is the node's business). No-op if absent."""
        self._check_open()
        self._delete(check_key(key))

    def keys(self) -> list[str]:
        """Every key with data, sorted by code point. Hints are not included."""
        self._check_open()
        return self._keys()

    def items(self) -> Iterator[tuple[str, list[Versioned]]]:
        """``(key, siblings)`` for every key, sorted by key.

        A snapshot taken when called: the store may be changed while iterating.
        """
        self._check_open()
        return iter([(k, self._decode(t)) for k, t in self._items()])

    def __len__(self) -> int:
        self._check_open()
        return self._len()

    def __contains__(self, key: object) -> bool:
        self._check_open()
        return self._get(check_key(key)) is not None

    # -- hinted replicas -----------------------------------------------------------------------

    def put_hint(self, intended: str, key: str, versions: Sequence[Versioned]) -> None:
        """Replace the hinted siblings of ``key`` held for node ``intended``.

        An empty sequence deletes that hint. Atomic: on any error nothing changes.
        """
        self._check_open()
        _check_intended(intended)
        check_key(key)
        record = self._encode(versions)
        self._hinted = None
        if len(versions) == 0:
            self._delete_hint(intended, key)
        else:
            self._put_hint(intended, key, record)

    def get_hint(self, intended: str, key: str) -> list[Versioned]:
        """The hinted siblings of ``key`` held for ``intended``; ``[]`` when there is no hint."""
        self._check_open()
        record = self._get_hint(_check_intended(intended), check_key(key))
        return [] if record is None else self._decode(record)

    def delete_hint(self, intended: str, key: str) -> None:
        """Drop the hint for (``intended``, ``key``), e.g. once handed off. No-op if absent."""
        self._check_open()
        intended, key = _check_intended(intended), check_key(key)
        self._hinted = None
        self._delete_hint(intended, key)

    def hints(self, intended: str | None = None) -> list[Hint]:
        """Hints held, sorted by (intended, key): all of them, or only those for ``intended``."""
        self._check_open()
        if intended is not None:
            _check_intended(intended)
        return [Hint(i, k, tuple(self._decode(t))) for i, k, t in self._hints(intended)]

    def hinted_nodes(self) -> list[str]:
        """The distinct nodes this store holds hints for, sorted."""
        self._check_open()
        if self._hinted is None:        # asked at every read, changed by hint writes only
            self._hinted = tuple(self._hinted_nodes())
        return list(self._hinted)

    def hint_count(self) -> int:
        """How many (intended, key) hints are held."""
        self._check_open()
        return self._hint_count()

    # -- meta ----------------------------------------------------------------------------------

    def get_meta(self, name: str) -> str | None:
        """A small durable fact about the node (e.g. its incarnation number); None if unset."""
        self._check_open()
        return self._get_meta(_check_meta_name(name))

    def set_meta(self, name: str, value: str) -> None:
        """Record ``value`` (a string) under ``name``, replacing any earlier value."""
        self._check_open()
        self._set_meta(_check_meta_name(name), _check_meta_value(value))

    # -- lifecycle -----------------------------------------------------------------------------

    def wipe(self) -> None:
        """Lose everything -- data, hints and meta -- as if the disk were replaced."""
        self._check_open()
        self._hinted = None
        self._wipe()

    def close(self) -> None:
        """Release the store. Idempotent; any other call afterwards raises StoreClosed."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> "Store":
        self._check_open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    _closed = False  # engines need not call a base __init__
    _hinted: tuple[str, ...] | None = None     # hinted_nodes(), until a hint write

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed(f"{self!r} is closed; open a new store to use it again")

    # -- what an engine implements, on validated arguments and encoded sibling lists -----------

    def _encode(self, versions: Sequence[Versioned]) -> Any:
        """A sibling list as the engine keeps it (checked first: canonical JSON text)."""
        return _encode_versions(versions)

    def _decode(self, record: Any) -> list[Versioned]:
        """The fresh sibling list of a record :meth:`_encode` made."""
        return _decode_versions(record)

    @abc.abstractmethod
    def _get(self, key: str) -> str | None: ...
    @abc.abstractmethod
    def _put(self, key: str, text: str) -> None: ...
    @abc.abstractmethod
    def _delete(self, key: str) -> None: ...
    @abc.abstractmethod
    def _keys(self) -> list[str]: ...
    @abc.abstractmethod
    def _items(self) -> list[tuple[str, str]]: ...
    @abc.abstractmethod
    def _len(self) -> int: ...
    @abc.abstractmethod
    def _get_hint(self, intended: str, key: str) -> str | None: ...
    @abc.abstractmethod
    def _put_hint(self, intended: str, key: str, text: str) -> None: ...
    @abc.abstractmethod
    def _delete_hint(self, intended: str, key: str) -> None: ...
    @abc.abstractmethod
    def _hints(self, intended: str | None) -> list[tuple[str, str, str]]: ...
    @abc.abstractmethod
    def _hinted_nodes(self) -> list[str]: ...
    @abc.abstractmethod
    def _hint_count(self) -> int: ...
    @abc.abstractmethod
    def _get_meta(self, name: str) -> str | None: ...
    @abc.abstractmethod
    def _set_meta(self, name: str, value: str) -> None: ...
    @abc.abstractmethod
    def _wipe(self) -> None: ...
    @abc.abstractmethod
    def _close(self) -> None: ...


# ----------------------------------------------------------------------------------------------
# Memory

class MemoryStore(Store):
    """A store in dicts, for the simulator and tests. It keeps the versions it was given (their
    clocks and digests are immutable) and, for a value that is a list or an object, its
    canonical JSON: a read parses a fresh copy from that text, so a caller can never mutate the
    store through a value it passed in or got back, and nothing is validated twice. A value of
    JSON's other types (str, number, bool, null) cannot be mutated and is handed out as it is."""

    def _encode(self, versions: Sequence[Versioned]) -> tuple[tuple[Versioned, str | None], ...]:
        _check_versions(versions)
        return tuple((v, _value_text(v)) for v in versions)

    def _decode(self, record: tuple[tuple[Versioned, str | None], ...]) -> list[Versioned]:
        return [v if text is None else v._with_value(_loads(text)) for v, text in record]

    def __init__(self) -> None:
        self._data: dict[str, tuple] = {}
        self._hint_data: dict[tuple[str, str], tuple] = {}
        self._meta: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._data)}, hints={len(self._hint_data)})"

    def _get(self, key: str) -> str | None:
        return self._data.get(key)

    def _put(self, key: str, text: str) -> None:
        self._data[key] = text

    def _delete(self, key: str) -> None:
        self._data.pop(key, None)

    def _keys(self) -> list[str]:
        return sorted(self._data)

    def _items(self) -> list[tuple[str, str]]:
        return sorted(self._data.items())

    def _len(self) -> int:
        return len(self._data)

    def _get_hint(self, intended: str, key: str) -> str | None:
        return self._hint_data.get((intended, key))

    def _put_hint(self, intended: str, key: str, text: str) -> None:
        self._hint_data[(intended, key)] = text

    def _delete_hint(self, intended: str, key: str) -> None:
        self._hint_data.pop((intended, key), None)

    def _hints(self, intended: str | None) -> list[tuple[str, str, str]]:
        return sorted((i, k, t) for (i, k), t in self._hint_data.items()
                      if intended is None or i == intended)

    def _hinted_nodes(self) -> list[str]:
        return sorted({i for i, _ in self._hint_data})

    def _hint_count(self) -> int:
        return len(self._hint_data)

    def _get_meta(self, name: str) -> str | None:
        return self._meta.get(name)

    def _set_meta(self, name: str, value: str) -> None:
        self._meta[name] = value

    def _wipe(self) -> None:
        self._data.clear()
        self._hint_data.clear()
        self._meta.clear()

    def _close(self) -> None:
        pass


# ----------------------------------------------------------------------------------------------
# SQLite

# One row per key holding the whole sibling list: replacing a key is one row write, so a key is
# never half-written even without the transaction. WITHOUT ROWID keeps rows in key order.
_SCHEMA = """
CREATE TABLE data  (key TEXT PRIMARY KEY NOT NULL, versions TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE hints (intended TEXT NOT NULL, key TEXT NOT NULL, versions TEXT NOT NULL,
                    PRIMARY KEY (intended, key)) WITHOUT ROWID;
CREATE TABLE meta  (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
"""


class SqliteStore(Store):
    """A store in one SQLite file (standard library ``sqlite3``), for the TCP runtime.

    Durable: WAL journal, ``synchronous=FULL``. By default one transaction is committed per
    mutating call, so a write is on disk when the call returns. Other processes may read the
    file meanwhile.

    **Group commit** (``group_commit=True``): a mutating call joins the open group (the first
    one opens a transaction) and returns at once; :meth:`commit` commits the group, one fsync
    for all of its writes. Reads see the group's writes. Whoever acknowledges a write must
    wait for the :meth:`commit` that follows it (the TCP runtime holds every effect of a group
    until then). :meth:`commit` may run on another thread, provided nothing else uses the store
    meanwhile. A write of the group that fails, or a failed commit, loses the whole group
    (:meth:`commit` raises); :meth:`close` drops an uncommitted group, as a crash would.

    Raises :class:`StoreFormatError` if ``path`` exists but is not a dynamo-lab store (another
    SQLite database, a text file) or was written by a newer dynamo-lab; such a file is left
    untouched. Creates the parent directory if needed. Use from one thread at a time.
    """

    def __init__(self, path: str | os.PathLike[str], *, group_commit: bool = False) -> None:
        if not isinstance(path, (str, os.PathLike)) or str(path) in ("", ":memory:"):
            raise ClientError(f"SqliteStore needs a file path such as 'data/A.sqlite'; got "
                              f"{path!r} (use MemoryStore for a store in memory)")
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._grouped = bool(group_commit)
        self._group_writes = 0                       # writes in the open group
        self._group_lost: Exception | None = None    # why the open group cannot be committed
        # isolation_level=None: no implicit transactions; each call (or group) opens its own.
        # check_same_thread=False: commit() of a group may run on a worker thread.
        self._conn = sqlite3.connect(str(self._path), isolation_level=None, timeout=10.0,
                                     check_same_thread=False)
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise

    @property
    def path(self) -> Path:
        """The SQLite file this store lives in."""
        return self._path

    def __repr__(self) -> str:
        return f"SqliteStore({str(self._path)!r})"

    # -- opening -------------------------------------------------------------------------------

    def _header(self) -> tuple[int, int, int]:
        """(application_id, user_version, number of schema objects); refuse non-databases."""
        try:
            app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            objects = self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreFormatError(f"{str(self._path)!r} is not a dynamo-lab store (not an SQLite "
                                   f"database: {exc}); point the node at a new file or an "
                                   f"existing store") from None
        return app_id, version, objects

    def _check_header(self, app_id: int, version: int, objects: int) -> bool:
        """True if the file is a fresh, empty database to initialise; raise if it is foreign."""
        if app_id == 0 and version == 0 and objects == 0:
            return True
        if app_id != APPLICATION_ID:
            raise StoreFormatError(f"{str(self._path)!r} is an SQLite database but not a "
                                   f"dynamo-lab store; it was left untouched. Point the node at "
                                   f"a new file or an existing store")
        if version > SCHEMA_VERSION:
            raise StoreFormatError(f"{str(self._path)!r} was written by a newer dynamo-lab "
                                   f"(store schema {version}, this one reads {SCHEMA_VERSION}); "
                                   f"upgrade dynamo-lab to open it")
        if version < SCHEMA_VERSION:
            raise StoreFormatError(f"{str(self._path)!r} has store schema {version}, which this "
                                   f"dynamo-lab ({SCHEMA_VERSION}) cannot read; start from a new "
                                   f"file")
        return False

    def _open(self) -> None:
        # Inspect before writing anything, so a foreign file is refused untouched.
        fresh = self._check_header(*self._header())
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{str(self._path)!r}: SQLite refused WAL mode (got {mode!r}); put "
                             f"the store on a local file system")
        self._conn.execute("PRAGMA synchronous=FULL")
        if fresh:
            with self._transaction():
                # Another process may have initialised the file since we looked.
                if self._check_header(*self._header()):
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._conn)

    # -- group commit --------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """Writes (or a failed write) of the open group wait for :meth:`commit`."""
        return self._group_writes > 0 or self._group_lost is not None

    def commit(self) -> int:
        """Commit the open group: its writes are on disk when this returns. Returns how many
        writes it held (0: there was nothing to commit; without ``group_commit`` there never
        is). Raises :class:`StoreError` if a write of the group failed, or ``sqlite3.Error``
        if the commit did: either way none of the group's writes are kept."""
        self._check_open()
        writes, self._group_writes = self._group_writes, 0
        lost, self._group_lost = self._group_lost, None
        if lost is not None:
            self._hinted = None         # (the group's hint writes are not kept)
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StoreError(f"{self!r}: a write of this group failed ({lost}); none of its "
                             f"{writes} writes were kept") from lost
        if not self._conn.in_transaction:
            return 0
        try:
            _Transaction.finish(self._conn)
        except BaseException:
            self._hinted = None
            raise
        return writes

    def _grouped_write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Run ``statements`` in the open group (opening it first). A failure loses the whole
        group: SQLite may have rolled the transaction back already (a full disk, an I/O
        error), so committing what is left would keep only part of it."""
        try:
            if not self._conn.in_transaction:
                self._conn.execute("BEGIN IMMEDIATE")
            for sql, args in statements:
                self._conn.execute(sql, args)
        except sqlite3.Error as exc:
            self._group_lost = self._group_lost or exc
            raise
        self._group_writes += 1

    # -- engine --------------------------------------------------------------------------------

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        row = self._conn.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        if self._grouped:
            self._grouped_write([(sql, args)])
            return
        with self._transaction():
            self._conn.execute(sql, args)

    def _get(self, key: str) -> str | None:
        return self._one("SELECT versions FROM data WHERE key = ?", (key,))

    def _put(self, key: str, text: str) -> None:
        self._write("INSERT OR REPLACE INTO data (key, versions) VALUES (?, ?)", (key, text))

    def _delete(self, key: str) -> None:
        self._write("DELETE FROM data WHERE key = ?", (key,))

    # Sorting is done in Python: the contract is code-point order, whatever SQLite's collation.
    def _keys(self) -> list[str]:
        return sorted(r[0] for r in self._conn.execute("SELECT key FROM data"))

    def _items(self) -> list[tuple[str, str]]:
        return sorted(self._conn.execute("SELECT key, versions FROM data").fetchall())

    def _len(self) -> int:
        return self._one("SELECT count(*) FROM data", ())

    def _get_hint(self, intended: str, key: str) -> str | None:
        return self._one("SELECT versions FROM hints WHERE intended = ? AND key = ?",
                         (intended, key))

    def _put_hint(self, intended: str, key: str, text: str) -> None:
        self._write("INSERT OR REPLACE INTO hints (intended, key, versions) VALUES (?, ?, ?)",
                    (intended, key, text))

    def _delete_hint(self, intended: str, key: str) -> None:
        self._write("DELETE FROM hints WHERE intended = ? AND key = ?", (intended, key))

    def _hints(self, intended: str | None) -> list[tuple[str, str, str]]:
        if intended is None:
            rows = self._conn.execute("SELECT intended, key, versions FROM hints")
        else:
            rows = self._conn.execute(
                "SELECT intended, key, versions FROM hints WHERE intended = ?", (intended,))
        return sorted(rows.fetchall())

    def _hinted_nodes(self) -> list[str]:
        return sorted(r[0] for r in self._conn.execute("SELECT DISTINCT intended FROM hints"))

    def _hint_count(self) -> int:
        return self._one("SELECT count(*) FROM hints", ())

    def _get_meta(self, name: str) -> str | None:
        return self._one("SELECT value FROM meta WHERE name = ?", (name,))

    def _set_meta(self, name: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def _wipe(self) -> None:
        statements = [(f"DELETE FROM {table}", ()) for table in ("data", "hints", "meta")]
        if self._grouped:
            self._grouped_write(statements)
            return
        with self._transaction():
            for sql, args in statements:
                self._conn.execute(sql, args)

    def _close(self) -> None:
        self._conn.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``, or ``ROLLBACK`` if the body raised."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        # IMMEDIATE takes the write lock up front, so a busy file fails here, before any change.
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self._conn.execute("ROLLBACK")
            return
        self.finish(self._conn)

    @staticmethod
    def finish(conn: sqlite3.Connection) -> None:
        """``COMMIT``; if that fails, end the transaction and re-raise: nothing was written."""
        try:
            conn.execute("COMMIT")
        except sqlite3.Error:
            # A failed COMMIT (disk full, I/O error) can leave the transaction open; end it so
            # the next call starts clean, then report the failure.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
