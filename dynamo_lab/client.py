"""The client API: get, put and delete with the paper's opaque context.

``Client`` talks to any cluster through a small transport interface, so the same code runs on
the simulator and over TCP::

    res = client.get("cart")                 # res.values: the siblings; res.context: opaque
    client.put("cart", ["book"], context=res.context)
    client.delete("cart", context=res.context)

Each call has a concurrent form (``submit_get`` / ``submit_put`` / ``submit_delete``) that
returns an :class:`Operation` at once, so several clients can truly race; ``cluster.wait(*ops)``
runs the cluster until they have all finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import ClientError, InvalidContext, QuorumError
from .hashing import check_key
from .vclock import VectorClock
from .versions import check_value, decode_context


@dataclass(frozen=True)
class GetResult:
    """What a get returns: the siblings' values (one value when there is no conflict, none when
    the key is absent or deleted) and the context to pass to the next put."""
    key: str
    values: list
    context: Optional[str]
    coordinator: str = ""
    replies: tuple = ()

    @property
    def found(self) -> bool:
        return bool(self.values)

    @property
    def value(self) -> Any:
        """The single value; a ``ValueError`` that explains siblings when there are several."""
        if len(self.values) == 1:
            return self.values[0]
        if not self.values:
            raise LookupError(f"{self.key!r} has no value")
        raise ValueError(f"{self.key!r} has {len(self.values)} concurrent siblings: reconcile "
                         f"them (for a cart, merge the items) and put the result with this context")


@dataclass(frozen=True)
class PutResult:
    """A put or delete that reached W replicas. ``context`` holds the clock of the new version."""
    key: str
    context: Optional[str]
    coordinator: str = ""
    replies: tuple = ()


@dataclass
class Operation:
    """A client request in flight (the concurrent form)."""
    client: str
    kind: str
    key: str
    value: Any = None
    context: Optional[str] = None
    via: str = ""
    req_id: str = ""
    started: float = 0.0
    finished: Optional[float] = None
    reply: Any = None
    error: Optional[BaseException] = None
    record: Any = None
    callbacks: list = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.finished is not None

    def result(self):
        """The result, or raise what the request raised (``QuorumError``, ``ClientError``)."""
        if not self.done:
            raise RuntimeError("operation still in flight: run the cluster (cluster.wait(op))")
        if self.error is not None:
            raise self.error
        return self.reply


def validate_request(kind: str, key: Any, value: Any, context: Any, cluster_key: str,
                     max_value_bytes: int) -> Optional[VectorClock]:
    """Check a request before it leaves the client; raise a :class:`ClientError` saying why."""
    check_key(key)
    if kind == "put":
        check_value(value, max_value_bytes)
    if kind != "get":
        if context is not None and not isinstance(context, str):
            raise InvalidContext("context must be the string a get returned (res.context), "
                                 f"or None for a blind write; got {type(context).__name__}")
        return decode_context(context, cluster_key)
    return None


def result_from_reply(op: Operation, reply) -> Any:
    """Turn a node's ``ClientReply`` into a result or the error it reports."""
    if reply.ok:
        if op.kind == "get":
            return GetResult(op.key, list(reply.values), reply.context, reply.coordinator,
                             tuple(reply.replies))
        return PutResult(op.key, reply.context, reply.coordinator, tuple(reply.replies))
    if reply.error_kind == "invalid":
        raise ClientError(reply.error or "invalid request")
    raise QuorumError(op.kind, op.key, reply.needed, reply.got, reply.may_have_applied,
                      f"coordinator {reply.coordinator}: {reply.error}")


class Client:
    """A named client of a cluster. ``via`` picks the node that receives the request (the
    default is one chosen at random among the running nodes, like a load balancer)."""

    def __init__(self, cluster, name: str):
        if not isinstance(name, str) or not name:
            raise ClientError("a client needs a non-empty name, e.g. cluster.client('alice')")
        self.cluster = cluster
        self.name = name

    def __repr__(self) -> str:
        return f"Client({self.name!r})"

    def get(self, key: str, *, via: Optional[str] = None) -> GetResult:
        """Read ``key``: its siblings and a context. Raises :class:`QuorumError` if fewer than R
        replicas answer in time, :class:`InvalidKey` for a bad key."""
        return self.cluster.wait(self.submit_get(key, via=via))[0].result()

    def put(self, key: str, value: Any, context: Optional[str] = None, *,
            via: Optional[str] = None) -> PutResult:
        """Write ``value`` (any JSON value) as a new version descending ``context`` (the
        context of the get it is based on; None for a blind write)."""
        return self.cluster.wait(self.submit_put(key, value, context, via=via))[0].result()

    def delete(self, key: str, context: Optional[str] = None, *,
               via: Optional[str] = None) -> PutResult:
        """Delete ``key``: a tombstone descending ``context``. A concurrent put survives it."""
        return self.cluster.wait(self.submit_delete(key, context, via=via))[0].result()

    def submit_get(self, key: str, *, via: Optional[str] = None) -> Operation:
        return self._submit("get", key, None, None, via)

    def submit_put(self, key: str, value: Any, context: Optional[str] = None, *,
                   via: Optional[str] = None) -> Operation:
        return self._submit("put", key, value, context, via)

    def submit_delete(self, key: str, context: Optional[str] = None, *,
                      via: Optional[str] = None) -> Operation:
        return self._submit("delete", key, None, context, via)

    def _submit(self, kind, key, value, context, via) -> Operation:
        self.cluster._validate(kind, key, value, context)
        op = Operation(self.name, kind, key, value, context, via or "")
        self.cluster._start(self, op)
        return op
