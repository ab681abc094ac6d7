"""Versions of a value, syntactic reconciliation, and the opaque client context
(the paper, section 4.4).

A :class:`Versioned` is one write: a JSON value and the vector clock the coordinator stamped on
it. A delete is a write too (a *tombstone*), so it can be ordered against the writes it
replaces and against the ones concurrent with it.

Each client write carries a *write id* (the client's request id, given once at the node that
first received the request), so a write that reaches the cluster twice (a retried forward, a
duplicated message) is recognised as one write: a coordinator that already holds it re-sends it
instead of stamping it again, and where two copies were stamped anyway (two coordinators each
took the retry) :func:`reconcile` treats them as one write, superseded as soon as any copy is,
and :func:`distinct_writes` shows it once.

A replica may hold several versions of a key. :func:`reconcile` does what the paper calls
*syntactic reconciliation*: every version that another one descends is obsolete and dropped;
what is left are *siblings*, concurrent versions that only the application can merge
(*semantic reconciliation*, e.g. the union of two shopping carts).

A get returns the siblings and a *context*: the merged clock of what the client read. The
client passes it back with its next put, so the new version descends everything it saw. Here
the context is an opaque string signed with the cluster's key, so a context edited by hand or
taken from another cluster is refused instead of silently corrupting the version history.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from . import jsontext
from .errors import ClientError, ConfigError, InvalidContext, InvalidValue
from .vclock import EMPTY, VectorClock

__all__ = [
    "Versioned", "reconcile", "merged_clock", "live_values", "distinct_writes", "canonical_json",
    "check_value", "MAX_WRITE_ID_CHARS",
    "encode_context", "decode_context", "MAX_VALUE_BYTES", "CONTEXT_PREFIX",
]

MAX_VALUE_BYTES = 1_000_000
MAX_WRITE_ID_CHARS = 200
#: Deeper JSON than this is refused (it is also how a value that contains itself is caught).
MAX_DEPTH = 200
CONTEXT_PREFIX = "c1"
_SIG_HEX = 16
_MAX_CONTEXT_CHARS = 100_000
_CONTEXT_RE = re.compile(r"c1\.([A-Za-z0-9_-]+)\.([0-9a-f]{16})\Z")
_CONTEXT_HELP = ("pass the context returned by get() on this cluster, "
                 "or None for a blind write")


# ---------------------------------------------------------------------------------------------
# JSON values
# ---------------------------------------------------------------------------------------------

_SCALARS = frozenset({str, int, bool, type(None)})     # JSON whatever their value
_STR = frozenset({str})


def _check_json(obj: Any, where: str, allow_tuples: bool, depth: int = 0) -> None:
    """Raise :class:`InvalidValue` naming the first part of ``obj`` that is not plain JSON.

    Exact types on purpose: a ``str`` or ``float`` subclass (an enum, a NumPy scalar) would
    come back from the wire as something else.
    """
    if depth > MAX_DEPTH:
        raise InvalidValue(f"{where} is nested more than {MAX_DEPTH} levels deep (or contains "
                           f"itself); flatten the value")
    t = type(obj)
    if obj is None or t is str or t is bool or t is int:
        return
    if t is float:
        if not math.isfinite(obj):
            raise InvalidValue(f"{where} is {obj!r}, which JSON cannot represent; "
                               f"use null or a finite number")
        return
    # Items of the plain scalar types are passed over inline: a call (and the name of where
    # it is) per item made long carts cost more to check than to encode.
    if t is list or (t is tuple and allow_tuples):
        if depth < MAX_DEPTH and _SCALARS.issuperset(map(type, obj)):
            return                          # nothing but str, int, bool and null: all JSON
        for i, item in enumerate(obj):
            ti = type(item)
            if (ti is not str and ti is not int and ti is not bool and item is not None
                    or depth >= MAX_DEPTH):
                _check_json(item, f"{where}[{i}]", allow_tuples, depth + 1)
        return
    if t is dict:
        if not _STR.issuperset(map(type, obj)):
            for k in obj:
                if type(k) is not str:
                    raise InvalidValue(f"{where} has the key {k!r} of type {type(k).__name__}; "
                                       f"JSON object keys are strings: use str({k!r})")
        if depth < MAX_DEPTH and _SCALARS.issuperset(map(type, obj.values())):
            return
        for k in sorted(obj):
            item = obj[k]
            ti = type(item)
            if (ti is not str and ti is not int and ti is not bool and item is not None
                    or depth >= MAX_DEPTH):
                _check_json(item, f"{where}[{k!r}]", allow_tuples, depth + 1)
        return
    hint = {
        set: "JSON has no sets: use a sorted list",
        frozenset: "JSON has no sets: use a sorted list",
        tuple: "JSON has no tuples and it would come back as a list: use a list",
        bytes: "JSON has no bytes: decode to str or use base64",
        bytearray: "JSON has no bytes: decode to str or use base64",
    }.get(t, "use only dict (str keys), list, str, int, float, bool and None")
    raise InvalidValue(f"{where} is a {t.__name__}, not JSON; {hint}")


# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False), its
# C encoder built once (jsontext).
_dumps = jsontext.encoder(sort_keys=True)


def canonical_json(obj: Any) -> str:
    """The one JSON text of ``obj``: sorted keys, no spaces, UTF-8 characters kept as they are.

    Equal JSON values give the same text on every machine and every ``PYTHONHASHSEED``, so it
    can be hashed. Tuples are written as lists. Raises :class:`InvalidValue` (a ``ValueError``)
    if ``obj`` is not JSON: sets, bytes, NaN or infinities, non-string keys, other objects, text
    with lone surrogates, or nesting deeper than ``MAX_DEPTH``.
    """
    _check_json(obj, "value", allow_tuples=True)
    text = _dumps(obj)
    _utf8(text)
    return text


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue("value contains a lone surrogate, which is not valid Unicode text; "
                           "fix the string (e.g. decode its bytes with errors='replace')") from None


def check_value(value: Any, max_bytes: int = MAX_VALUE_BYTES) -> Any:
    """Return ``value`` if a cluster can store it; raise :class:`InvalidValue` saying why not.

    A storable value is plain JSON (dict with str keys, list, str, int, float, bool, None;
    no tuples, since they would be read back as lists) whose canonical JSON is at most
    ``max_bytes`` bytes of UTF-8.
    """
    _check_json(value, "value", allow_tuples=False)
    size = len(_utf8(_dumps(value)))       # (canonical_json would check it all again)
    if size > max_bytes:
        raise InvalidValue(f"value is {size} bytes as JSON; the limit is {max_bytes}. "
                           f"Store less, or split it across several keys")
    return value


# ---------------------------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Versioned:
    """One version of a key's value: the value, its vector clock, whether it is a delete, and
    the id of the client write that made it (``None`` for versions made by hand).

    Equality and hash follow :meth:`digest`: two versions are equal when they hold the same
    JSON value, the same clock (counters and dots), the same ``deleted`` flag and the same
    write id (clock timestamps do not count). The digest is taken at construction, so treat
    ``value`` as read-only.

    Raises :class:`InvalidValue` if ``value`` is not plain JSON (see :func:`check_value`; the
    size limit is the cluster's to apply) and :class:`ClientError` if ``clock`` is not a
    :class:`VectorClock`, ``deleted`` not a bool, or ``write_id`` neither None nor a non-empty
    str of at most ``MAX_WRITE_ID_CHARS`` characters.
    """

    value: Any
    clock: VectorClock
    deleted: bool = False
    write_id: Optional[str] = None

    def __post_init__(self) -> None:
        if not isinstance(self.clock, VectorClock):
            raise ClientError(f"Versioned.clock must be a VectorClock; got "
                              f"{type(self.clock).__name__} {self.clock!r}")
        if type(self.deleted) is not bool:
            raise ClientError(f"Versioned.deleted must be True or False; got {self.deleted!r}")
        wid = self.write_id
        if wid is not None and (type(wid) is not str or not 0 < len(wid) <= MAX_WRITE_ID_CHARS):
            raise ClientError(f"Versioned.write_id must be None or a non-empty str of at most "
                              f"{MAX_WRITE_ID_CHARS} characters; got {wid!r}")
        _check_json(self.value, "value", allow_tuples=False)
        text = _dumps(self.value)
        # The canonical JSON of {"clock", "deleted", "dots", "value", "write_id"} (sorted keys),
        # written out so that the value's own text is made once and kept. "dots" and
        # "write_id" are only present when set, so older versions keep the digests they had.
        clock = self.clock
        payload = ('{"clock":' + _dumps(clock._counters)
                   + (',"deleted":true' if self.deleted else ',"deleted":false')
                   + (',"dots":' + _dumps([list(d) for d in clock.dots]) if clock._dots else "")
                   + ',"value":' + text
                   + (',"write_id":' + _dumps(wid) if wid is not None else "") + "}")
        try:
            raw = payload.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValue("value contains a lone surrogate, which is not valid Unicode "
                               "text") from None
        # Not fields: cached here so reconcile, equality and the store do not re-serialise.
        object.__setattr__(self, "_digest", hashlib.sha256(raw).hexdigest())
        object.__setattr__(self, "_text", text)

    def _with_value(self, value: Any) -> Versioned:
        """This version holding ``value`` instead, an equal copy of its own (internal: a store
        hands out fresh values, and ``value`` must be what this version was built with)."""
        twin = object.__new__(Versioned)
        set_ = object.__setattr__
        set_(twin, "value", value)
        set_(twin, "clock", self.clock)
        set_(twin, "deleted", self.deleted)
        set_(twin, "write_id", self.write_id)
        set_(twin, "_digest", self._digest)  # type: ignore[attr-defined]
        set_(twin, "_text", self._text)  # type: ignore[attr-defined]
        return twin

    def value_text(self) -> str:
        """The canonical JSON of ``value`` as it was when this version was built."""
        return self._text  # type: ignore[attr-defined]

    def digest(self) -> str:
        """SHA-256 hex of the canonical JSON of (value, clock counters and dots, deleted,
        write id).

        Identical writes give identical digests on any machine; timestamps do not count.
        """
        return self._digest  # type: ignore[attr-defined]

    def descends(self, other: Versioned) -> bool:
        """True when this version's clock descends ``other``'s (it saw ``other``)."""
        if not isinstance(other, Versioned):
            raise TypeError(f"descends needs a Versioned; got {type(other).__name__}")
        return self.clock.descends(other.clock)

    def to_json(self) -> dict[str, Any]:
        """``{"value": ..., "clock": clock.to_json(), "deleted": bool}``, and ``"write_id"``
        when the version has one."""
        out = {"value": self.value, "clock": self.clock.to_json(), "deleted": self.deleted}
        if self.write_id is not None:
            out["write_id"] = self.write_id
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Versioned:
        """Parse :meth:`to_json` output. Strict: exactly the keys ``value``, ``clock`` and
        ``deleted``, and optionally ``write_id``; raises :class:`ClientError` /
        :class:`InvalidValue` (``ValueError``s)."""
        if not isinstance(obj, dict):
            raise ClientError(f"a version in JSON is an object with value, clock and deleted; "
                              f"got {type(obj).__name__}")
        if not ("clock" in obj and "deleted" in obj and "value" in obj
                and (len(obj) == 3 or len(obj) == 4 and "write_id" in obj)):
            raise ClientError(f"a version in JSON has exactly the keys 'clock', 'deleted' and "
                              f"'value', and optionally 'write_id'; got {sorted(obj, key=str)}")
        return cls(obj["value"], VectorClock.from_json(obj["clock"]), obj["deleted"],
                   obj.get("write_id"))

    def same_write(self, other: Versioned) -> bool:
        """True when ``other`` is another copy of the same client write: the same write id,
        value and ``deleted`` flag (its clock may differ, if two coordinators stamped it)."""
        return (self.write_id is not None and self.write_id == other.write_id
                and self.deleted == other.deleted and self.value == other.value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Versioned):
            return NotImplemented
        return self._digest == other._digest  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._digest)  # type: ignore[attr-defined]

    def __lt__(self, other: object) -> bool:
        raise TypeError("versions are only partially ordered; use a.descends(b) or "
                        "a.clock.compare(b.clock), or sort by v.digest()")

    __le__ = __gt__ = __ge__ = __lt__


def _as_versions(versions: Iterable[Versioned], op: str) -> list[Versioned]:
    out = list(versions)
    for v in out:
        if not isinstance(v, Versioned):
            raise TypeError(f"{op} takes Versioned objects; got {type(v).__name__} {v!r}")
    return out


def _kept_over(v: Versioned, kept: Versioned) -> bool:
    """Of two versions with equal clocks, is ``v`` the one to keep? The smaller digest; equal
    digests differ at most in clock timestamps, so then the smaller clock text: the version
    kept never depends on input order."""
    dv, dk = v.digest(), kept.digest()
    if dv != dk:
        return dv < dk
    if v.clock._stamps == kept.clock._stamps:
        return False                      # two copies of one version: either will do
    return v.clock.json_text() < kept.clock.json_text()


def reconcile(versions: Iterable[Versioned]) -> list[Versioned]:
    """Syntactic reconciliation: the versions no other version strictly descends.

    Versions with equal clocks are collapsed to one (the one with the smallest digest). Copies
    of one client write (see :meth:`Versioned.same_write`) stand or fall together: a version
    that descends any copy supersedes them all. The result is an antichain (pairwise
    concurrent clocks), every input is descended by some version in it (or by a version that
    descends a copy of it), and it is sorted by digest, so it does not depend on the input
    order. Raises ``TypeError`` for anything that is not a :class:`Versioned`.
    """
    by_clock: dict[VectorClock, Versioned] = {}
    for v in _as_versions(versions, "reconcile"):
        kept = by_clock.get(v.clock)
        if kept is None or _kept_over(v, kept):
            by_clock[v.clock] = v
    distinct = list(by_clock.values())
    if len(distinct) < 2:
        return distinct
    # Clocks are now distinct, so "descends" between two of them is strict, and only a clock
    # with more events can descend another.
    survivors = [v for v in distinct
                 if not any(w.clock._size > v.clock._size and w.clock._covers(v.clock)
                            for w in distinct)]
    by_write: dict[str, list[Versioned]] = {}
    for v in distinct:
        if v.write_id is not None:
            by_write.setdefault(v.write_id, []).append(v)
    if any(len(group) > 1 for group in by_write.values()):
        def gone(v: Versioned) -> bool:
            copies = [c for c in by_write.get(v.write_id, ()) if c is v or c.same_write(v)]
            return len(copies) > 1 and any(not w.same_write(v) and w.clock._covers(c.clock)
                                           for c in copies for w in distinct if w is not c)
        survivors = [v for v in survivors if not gone(v)]
    # Distinct clocks give distinct digests (a digest covers the clock), so the digest alone
    # orders them.
    return survivors if len(survivors) == 1 else sorted(survivors, key=Versioned.digest)


def distinct_writes(versions: Iterable[Versioned]) -> list[Versioned]:
    """One version per client write, in the given order: what a read shows as siblings after
    reconciling. Two copies of one write (stamped by two coordinators) are one sibling."""
    out: list[Versioned] = []
    for v in _as_versions(versions, "distinct_writes"):
        if not any(v.same_write(w) for w in out):
            out.append(v)
    return out


def merged_clock(versions: Iterable[Versioned]) -> VectorClock:
    """The merge of all the versions' clocks (``EMPTY`` for none): what a put that read them
    must descend."""
    clock = EMPTY
    for v in _as_versions(versions, "merged_clock"):
        clock = clock.merge(v.clock)
    return clock


def live_values(versions: Iterable[Versioned]) -> list[Any]:
    """The values of the siblings (:func:`distinct_writes`) that are not deletes."""
    return [v.value for v in distinct_writes(reconcile(versions)) if not v.deleted]


# ---------------------------------------------------------------------------------------------
# The opaque client context
# ---------------------------------------------------------------------------------------------

def _check_cluster_key(cluster_key: object) -> bytes:
    if not isinstance(cluster_key, str):
        raise ConfigError(f"cluster_key must be a str; got {type(cluster_key).__name__}")
    return cluster_key.encode("utf-8")


def _sign(payload: str, key: bytes) -> str:
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).hexdigest()[:_SIG_HEX]


def encode_context(clock: VectorClock, cluster_key: str) -> str:
    """The opaque context string a get hands the client for ``clock``.

    Format: ``"c1." + base64url(canonical JSON of clock.to_json(), no padding) + "." +`` the
    first 16 hex digits of HMAC-SHA256(cluster_key, that base64 text). URL-safe, so it can go
    in a query string or a shell argument.
    """
    if not isinstance(clock, VectorClock):
        raise TypeError(f"encode_context needs a VectorClock; got {type(clock).__name__}")
    key = _check_cluster_key(cluster_key)
    text = clock.json_text()
    memo = (text, cluster_key)
    context = _ENCODED.get(memo)
    if context is None:
        payload = base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")
        context = _remember(_ENCODED, memo, f"{CONTEXT_PREFIX}.{payload}.{_sign(payload, key)}")
        _remember(_DECODED, (context, cluster_key), clock)     # signed here: no need to check
    return context


def decode_context(text: str | None, cluster_key: str) -> VectorClock:
    """The clock inside a context string from :func:`encode_context`.

    ``None`` or ``""`` give ``EMPTY`` (a blind write). Anything else must be a context this
    cluster produced, unchanged; otherwise raises :class:`InvalidContext` (a ``ValueError``).
    """
    key = _check_cluster_key(cluster_key)
    if text is None or text == "":
        return EMPTY

    def bad(reason: str) -> InvalidContext:
        return InvalidContext(f"invalid context ({reason}): {_CONTEXT_HELP}")

    if not isinstance(text, str):
        raise bad(f"a context is a str, got {type(text).__name__}")
    known = _DECODED.get((text, cluster_key))
    if known is not None:
        return known
    if len(text) > _MAX_CONTEXT_CHARS:
        raise bad(f"longer than {_MAX_CONTEXT_CHARS} characters")
    m = _CONTEXT_RE.match(text)
    if m is None:
        raise bad("not of the form c1.<payload>.<signature>")
    payload, sig = m.group(1), m.group(2)
    # Check the signature before parsing anything: nothing unsigned reaches the JSON parser.
    if not hmac.compare_digest(sig, _sign(payload, key)):
        raise bad("signature mismatch: edited, or made by another cluster")
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        obj = json.loads(raw.decode("utf-8"))
        clock = VectorClock.from_json(obj)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise bad(f"corrupt payload: {exc}") from None
    return _remember(_DECODED, (text, cluster_key), clock)


# Contexts and clocks are immutable, and a client hands back the context it was given, so both
# directions are remembered: (clock text, cluster key) -> context, (context, cluster key) ->
# clock. A context is only remembered once its signature checked, or when it was signed here
# (a coordinator's reply is then read back without checking, by its client and by the
# coordinator of the next put, in one process). At most _MEMO entries each.
_ENCODED: dict[tuple[str, str], str] = {}
_DECODED: dict[tuple[str, str], VectorClock] = {}
_MEMO = 4096


def _remember(memo: dict, key: tuple, value: Any) -> Any:
    if len(memo) >= _MEMO:
        memo.clear()
    memo[key] = value
    return value
