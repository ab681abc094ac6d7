"""Every message and timer a Dynamo node handles, and the one codec to and from JSON.

Messages are frozen dataclasses. Their fields hold only JSON-friendly things (str, int, float,
bool, None, tuples of them, a JSON value) or the few domain types the codec knows
(:class:`VectorClock`, :class:`Versioned`, :class:`KeyRange`, :class:`MemberState`). The
simulator pushes every message through :func:`encode`/:func:`decode` in tests, so nothing can
work in the simulator that would break on the wire. There is no pickle anywhere.

Naming: a request is named for what it asks (``ReplicaPut``), its answer for what it says
(``ReplicaPutAck``); the node's handler for ``X`` is ``handle_X``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Optional, Union

from . import jsontext
from .errors import ProtocolError
from .ring import KeyRange
from .vclock import VectorClock
from .versions import Versioned

JSON = Any  # a JSON value: dict, list, str, int, float, bool or None


# ---------------------------------------------------------------------------------------------
# Client <-> node
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClientGet:
    req_id: str
    key: str


@dataclass(frozen=True)
class ClientPut:
    req_id: str
    key: str
    value: JSON
    context: Optional[str] = None


@dataclass(frozen=True)
class ClientDelete:
    req_id: str
    key: str
    context: Optional[str] = None


ClientRequest = Union[ClientGet, ClientPut, ClientDelete]


@dataclass(frozen=True)
class ClientReply:
    """The answer to a client request. ``error_kind`` is None on success, ``"quorum"`` when the
    quorum was not reached, ``"invalid"`` for bad input (nothing written), ``"expired"`` for a
    forward that arrived after its sender gave up on it (nothing written)."""
    req_id: str
    op: str
    key: str
    ok: bool
    values: tuple[JSON, ...] = ()
    context: Optional[str] = None
    coordinator: str = ""
    error_kind: Optional[str] = None
    error: Optional[str] = None
    may_have_applied: bool = False
    needed: int = 0
    got: int = 0
    replies: tuple[str, ...] = ()  # which replicas answered (nodes), for teaching and the checker


# ---------------------------------------------------------------------------------------------
# Coordinator <-> replica
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Forward:
    """A client request that reached a node outside the key's top N, passed to one inside it.
    ``write_id`` names the client write (given where the request first arrived), so that a
    retried or duplicated forward is applied once; ``retry`` says an earlier coordinator may
    already have applied it (it did not answer in time); ``sent_at`` is the sender's clock when
    it sent it (a forward that arrives after its sender gave up is not applied)."""
    fwd_id: str
    request: Union[ClientGet, ClientPut, ClientDelete]
    write_id: Optional[str] = None
    retry: bool = False
    sent_at: float = 0.0


@dataclass(frozen=True)
class ReplicaPut:
    """Store these versions (merging, never overwriting). ``hint`` names the intended node when
    the receiver is only standing in for it (sloppy quorum)."""
    req_id: str
    key: str
    versions: tuple[Versioned, ...]
    hint: Optional[str] = None


@dataclass(frozen=True)
class ReplicaPutAck:
    req_id: str
    key: str


@dataclass(frozen=True)
class ReplicaGet:
    req_id: str
    key: str


@dataclass(frozen=True)
class ReplicaGetReply:
    req_id: str
    key: str
    versions: tuple[Versioned, ...]


@dataclass(frozen=True)
class ReadRepair:
    """Sent after a get to replicas that answered with stale versions."""
    key: str
    versions: tuple[Versioned, ...]


@dataclass(frozen=True)
class Reap:
    """Purge ``key`` if all the receiver holds is the tombstone with exactly this clock."""
    key: str
    clock: VectorClock


# ---------------------------------------------------------------------------------------------
# Hinted handoff, transfers on join and leave
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HandoffPut:
    """A hinted replica on its way: to ``intended``, the node it was meant for, or -- when
    ``keep_as_hint`` -- to another node that keeps it for ``intended`` (a leaving node passing
    on hints it could not deliver)."""
    key: str
    versions: tuple[Versioned, ...]
    intended: str
    keep_as_hint: bool = False


@dataclass(frozen=True)
class HandoffAck:
    """The hint for (``intended``, ``key``) arrived; the sender deletes it if it still holds
    exactly what it sent (``digest``)."""
    key: str
    digest: str
    intended: str


@dataclass(frozen=True)
class Transfer:
    """Keys a node no longer replicates (after a join or its own leave), sent to their owners."""
    transfer_id: str
    items: tuple[tuple[str, tuple[Versioned, ...]], ...]


@dataclass(frozen=True)
class TransferAck:
    transfer_id: str
    keys: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# Anti-entropy (Merkle exchange, level by level)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MerkleLevel:
    """The sender's hashes of some tree nodes at ``level`` of the tree over ``key_range``."""
    exchange_id: str
    key_range: KeyRange
    depth: int
    level: int
    hashes: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class MerkleLeaves:
    """The sender's (key, digest) entries of the leaves found to differ."""
    exchange_id: str
    key_range: KeyRange
    leaves: tuple[int, ...]
    entries: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SyncVersions:
    """Versions of the keys found to differ; ``wants`` asks for the receiver's versions."""
    exchange_id: str
    items: tuple[tuple[str, tuple[Versioned, ...]], ...]
    wants: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Membership
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberState:
    """What a node says about itself, spread by gossip. Higher (generation, heartbeat) wins."""
    node: str
    generation: int
    heartbeat: int
    status: str                    # "up", "leaving" or "left"
    tokens: tuple[str, ...] = ()   # ring tokens as decimal strings (JS-safe)
    address: str = ""              # where the TCP runtime reaches it ("127.0.0.1:7001"); "" in the simulator


@dataclass(frozen=True)
class Gossip:
    view: tuple[MemberState, ...]
    reply: bool = True             # push-pull: the receiver answers with its own view


@dataclass(frozen=True)
class AdminLeave:
    """Ask the node to leave the ring for good: hand off its keys, then say "left"."""


# ---------------------------------------------------------------------------------------------
# Timers (delivered to the node that set them, never sent over the network)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestTimeout:
    """A request this node coordinates has waited ``request_timeout_s`` for its quorum."""
    req_id: str


@dataclass(frozen=True)
class ForwardTimeout:
    """A request this node forwarded has waited ``FORWARD_WAIT`` request timeouts."""
    fwd_id: str


@dataclass(frozen=True)
class GossipTick:
    pass


@dataclass(frozen=True)
class HandoffTick:
    pass


@dataclass(frozen=True)
class AntiEntropyTick:
    pass


@dataclass(frozen=True)
class RebalanceTick:
    pass


@dataclass(frozen=True)
class ReapTick:
    key: str
    clock: VectorClock


# ---------------------------------------------------------------------------------------------
# Effects: what a node asks its runtime to do
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Send:
    dst: str
    msg: Any


@dataclass(frozen=True)
class SetTimer:
    delay_s: float
    timer: Any


@dataclass(frozen=True)
class Note:
    """A line for the trace (what the node decided and why); has no effect on the system."""
    text: str


MESSAGE_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (
        ClientGet, ClientPut, ClientDelete, ClientReply, Forward,
        ReplicaPut, ReplicaPutAck, ReplicaGet, ReplicaGetReply, ReadRepair, Reap,
        HandoffPut, HandoffAck, Transfer, TransferAck,
        MerkleLevel, MerkleLeaves, SyncVersions,
        Gossip, AdminLeave,
    )
}
TIMER_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (
        RequestTimeout, ForwardTimeout, GossipTick, HandoffTick, AntiEntropyTick, RebalanceTick, ReapTick)
}
_NESTED: dict[str, type] = {"MemberState": MemberState}


def quick_init(cls: type) -> type:
    """Give a frozen dataclass an ``__init__`` that sets its fields in one step.

    A frozen dataclass's own ``__init__`` sets each field with ``object.__setattr__`` (its
    ``__setattr__`` refuses), a call per field: building a message cost more than handling
    it. This one has the same signature and defaults, and fills the instance's ``__dict__`` at
    once; the class stays what it was (frozen, equal by fields, ``dataclasses.replace``
    works). Only for classes whose fields are all plain ``__init__`` arguments, without
    ``__post_init__`` or default factories: anything else is refused, not silently slowed."""
    fields = dataclasses.fields(cls)
    if (not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen
            or hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__
            or any(not f.init or f.default_factory is not dataclasses.MISSING for f in fields)):
        raise TypeError(f"quick_init takes a frozen dataclass of plain fields; {cls.__name__} "
                        f"is not one")
    defaults = {f"_d_{f.name}": f.default for f in fields if f.default is not dataclasses.MISSING}
    params = ", ".join(f.name if f.default is dataclasses.MISSING else f"{f.name}=_d_{f.name}"
                       for f in fields)
    body = ", ".join(f"{f.name!r}: {f.name}" for f in fields)
    namespace = dict(defaults, _set=object.__setattr__)
    exec(f"def __init__(self, {params}):\n    _set(self, '__dict__', {{{body}}})\n", namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = cls.__init__.__annotations__
    cls.__init__ = init
    return cls


for _cls in (*MESSAGE_TYPES.values(), *TIMER_TYPES.values(), MemberState, Send, SetTimer, Note):
    quick_init(_cls)


# ---------------------------------------------------------------------------------------------
# Codec
# ---------------------------------------------------------------------------------------------

def encode(msg: Any) -> dict:
    """The JSON-ready form of a message or timer: ``{"type": name, field: value, ...}``."""
    out = {"type": type(msg).__name__}
    plain = _PLAIN_TYPES
    for field in _message_fields(msg):
        v = getattr(msg, field)
        out[field] = v if type(v) in plain else _to_wire(v)
    return out


def decode(obj: Any) -> Any:
    """Rebuild a message from :func:`encode`'s output; :class:`ProtocolError` if it is not one."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"a message is a JSON object, got {type(obj).__name__}")
    name = obj.get("type")
    cls = MESSAGE_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        cls = TIMER_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {name!r}")
    return _build(cls, obj)


# json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False), its C encoder
# built once (jsontext).
_to_json_text = jsontext.encoder()


def dumps(msg: Any) -> bytes:
    """Encode a message to compact UTF-8 JSON bytes: the JSON of :func:`encode`'s output, a
    version written from the texts it made once (its value as it was built, with sorted keys,
    as a store hands it out; its clock's canonical text)."""
    head, fields = _wire_plan(msg)
    parts = [head]
    for field, label in fields:
        parts.append(label)
        parts.append(_wire_text(getattr(msg, field)))
    parts.append("}")
    return "".join(parts).encode("utf-8")


_WIRE_PLANS: dict[type, tuple[str, tuple[tuple[str, str], ...]]] = {}


def _wire_plan(msg: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``('{"type":"Name"', ((field, ',"field":'), ...))`` for a message's class, made once."""
    plan = _WIRE_PLANS.get(type(msg))
    if plan is None:
        fields = _message_fields(msg)
        plan = _WIRE_PLANS[type(msg)] = ('{"type":' + _to_json_text(type(msg).__name__),
                                         tuple((f, f',"{f}":') for f in fields))
    return plan


def _wire_text(v: Any) -> str:
    t = type(v)
    if t is Versioned:
        wid = v.write_id
        return ('{"value":' + v.value_text() + ',"clock":' + v.clock.json_text()
                + (',"deleted":true' if v.deleted else ',"deleted":false')
                + ("}" if wid is None else ',"write_id":' + _to_json_text(wid) + "}"))
    if t is MemberState:
        # Gossip sends a node's whole view every round, mostly the same members as last
        # time: each member's text is made once (it is frozen; a change is a new object).
        text = v.__dict__.get("_wire_text")
        if text is None:
            text = _to_json_text(_to_wire(v))
            object.__setattr__(v, "_wire_text", text)
        return text
    if t is tuple:
        if _PLAIN_TYPES.issuperset(map(type, v)):
            return _to_json_text(v)          # (the encoder writes a tuple as a list)
        if any(type(x) in _NESTED_TEXT for x in v):
            return "[" + ",".join([_wire_text(x) for x in v]) + "]"
    return _to_json_text(v if t in _PLAIN_TYPES else _to_wire(v))


_NESTED_TEXT = frozenset({Versioned, MemberState, tuple})   # what _wire_text writes itself


def loads(data: bytes | str) -> Any:
    """Decode bytes from :func:`dumps`; :class:`ProtocolError` on anything malformed."""
    try:
        obj = jsontext.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"message is not valid JSON: {exc}") from None
    return decode(obj)


def round_trip(msg: Any) -> Any:
    """``decode(json(encode(msg)))``: what the receiver of ``msg`` would see on the wire."""
    return loads(dumps(msg))


_PLAIN = (str, int, float, bool, type(None), list, dict)
_PLAIN_TYPES = frozenset(_PLAIN)


def _to_wire(v: Any) -> Any:
    if type(v) in _PLAIN_TYPES:
        return v
    if isinstance(v, (VectorClock, Versioned, KeyRange)):
        return v.to_json()
    if isinstance(v, MemberState):
        return {f: _to_wire(getattr(v, f)) for f in _field_names(MemberState)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return encode(v)
    if isinstance(v, tuple):
        return [x if type(x) in _PLAIN_TYPES else _to_wire(x) for x in v]
    return v


# What the codec knows of each class, worked out once from its fields and type hints: the
# field names, and for decoding, one checking decoder per field.
_NAMES: dict[type, tuple[str, ...]] = {}
_PLANS: dict[type, tuple[frozenset, tuple]] = {}


def _message_fields(msg: Any) -> tuple[str, ...]:
    """The field names of a message or timer; TypeError for anything else."""
    name = type(msg).__name__
    if name not in MESSAGE_TYPES and name not in TIMER_TYPES:
        raise TypeError(f"{name} is not a dynamo-lab message")
    return _field_names(type(msg))


def _field_names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _plan(cls: type) -> tuple[frozenset, tuple]:
    """``(every key a message of cls may have, ((field, decoder, required), ...))``."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        steps = tuple((f.name, _decoder(hints[f.name], f"{cls.__name__}.{f.name}"),
                       f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
                      for f in fields)
        plan = _PLANS[cls] = (frozenset(f.name for f in fields) | {"type"}, steps)
    return plan


def _build(cls: type, obj: dict) -> Any:
    names, steps = _plan(cls)
    kwargs = {}
    for name, decoder, required in steps:
        if name in obj:
            kwargs[name] = decoder(obj[name])
        elif required:
            raise ProtocolError(f"{cls.__name__} is missing field {name!r}")
    if len(obj) > len(kwargs) + ("type" in obj):      # only then can a key be unknown
        extra = set(obj) - names
        raise ProtocolError(f"{cls.__name__} has unknown fields {sorted(extra)}")
    return cls(**kwargs)


def _list(v: Any, where: str) -> list:
    if not isinstance(v, list):
        raise ProtocolError(f"{where}: expected a list, got {type(v).__name__}")
    return v


def _decoder(tp: Any, where: str):
    """A function that turns the wire form of a ``tp`` field back into a value, raising
    :class:`ProtocolError` (naming ``where``) for anything that is not one."""
    if tp is Any:
        return lambda v: v
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        nullable = type(None) in args
        rest = [a for a in args if a is not type(None)]
        inner = (decode if all(dataclasses.is_dataclass(a) for a in rest)
                 else _decoder(rest[0], where))
        return lambda v: None if v is None and nullable else inner(v)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0], where)
            if args[0] in (str, int):
                # A list of nothing but that type is the tuple (checked in C); anything
                # else goes item by item, for the error that names it.
                only = frozenset({args[0]})
                return lambda v: (tuple(v) if type(v) is list and only.issuperset(map(type, v))
                                  else tuple([item(x) for x in _list(v, where)]))
            return lambda v: tuple([item(x) for x in _list(v, where)])
        if not args:
            return lambda v: tuple(_freeze(x) for x in _list(v, where))
        items = [_decoder(a, where) for a in args]

        def fixed(v):
            if len(_list(v, where)) != len(items):
                raise ProtocolError(f"{where}: expected {len(items)} items, got {len(v)}")
            return tuple(dec(x) for dec, x in zip(items, v))
        return fixed
    if tp is tuple:
        return lambda v: tuple(_freeze(x) for x in _list(v, where))
    if tp in (VectorClock, Versioned, KeyRange):
        def parse(v):
            try:
                return tp.from_json(v)
            except ProtocolError:
                raise
            except (ValueError, TypeError, KeyError) as exc:
                raise ProtocolError(f"{where}: {exc}") from None
        return parse
    if tp is MemberState:
        def member(v):
            if not isinstance(v, dict):
                raise ProtocolError(f"{where}: expected an object")
            return _build(MemberState, v)
        return member
    if tp is str:
        def text(v):
            if type(v) is str:
                return v
            if not isinstance(v, str):
                raise ProtocolError(f"{where}: expected str, got {type(v).__name__}")
            return v
        return text
    if tp is int or tp is bool:
        def exact(v):
            if type(v) is tp:              # (a bool is not an int here, nor an int a bool)
                return v
            raise ProtocolError(f"{where}: expected {tp.__name__}, got {type(v).__name__}")
        return exact
    if tp is float:
        def number(v):
            if isinstance(v, float):
                return v
            if isinstance(v, int) and not isinstance(v, bool):
                return float(v)              # (JSON writes 2.0 as 2.0, but a person may not)
            raise ProtocolError(f"{where}: expected float, got {type(v).__name__}")
        return number
    raise ProtocolError(f"{where}: cannot decode type {tp!r}")  # pragma: no cover - codec bug


def _freeze(x: Any) -> Any:
    """Lists inside an untyped tuple field come back as tuples, as they were sent."""
    if isinstance(x, list):
        return tuple(_freeze(y) for y in x)
    return x
