"""Every message and timer a Dynamo node handles, and the effects a node asks its runtime for.

Messages are frozen dataclasses. Their fields hold only JSON-friendly things (str, int, float,
bool, None, tuples of them, a JSON value) or the few domain types the codec knows
(:class:`VectorClock`, :class:`Versioned`, :class:`KeyRange`, :class:`MemberState`). The
simulator pushes every message through the one codec (:mod:`dynamo_lab.codec`) in tests, so
nothing can work in the simulator that would break on the wire.

Naming: a request is named for what it asks (``ReplicaPut``), its answer for what it says
(``ReplicaPutAck``); the node's handler for ``X`` is ``handle_X``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Union

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
