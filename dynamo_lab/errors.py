"""Errors, split the way h11 splits them.

* :class:`ClientError` (a ``ValueError``): *you* misused the API -- a bad key, an oversize
  value, a context this cluster never produced. The message says what to do. Nothing was
  written.
* :class:`QuorumError`: the cluster could not gather its quorum in time. It says whether the
  write may still have been applied, because with sloppy quorums a failed put is not a no-op.
* :class:`ProtocolError`: a *peer* broke the protocol (unknown message, malformed frame).
"""

from __future__ import annotations


class DynamoError(Exception):
    """Base class of every error dynamo-lab raises on purpose."""


class ClientError(DynamoError, ValueError):
    """Bad input from a user of the API. Nothing was written."""


class InvalidKey(ClientError):
    """A key that is not a non-empty string, or is too long."""


class InvalidValue(ClientError):
    """A value that is not JSON, or is larger than the cluster accepts."""


class InvalidContext(ClientError):
    """A context string that is corrupt or was produced by another cluster."""


class ConfigError(ClientError):
    """Inconsistent parameters (for example R > N, or more replicas than nodes)."""


class QuorumError(DynamoError):
    """A get or put that could not gather R (or W) replies before its timeout.

    ``may_have_applied`` is True when at least one replica may hold the write: a later get can
    still return it, so the caller must not assume it was rolled back.
    """

    def __init__(self, op: str, key: str, needed: int, got: int, may_have_applied: bool,
                 detail: str = ""):
        self.op, self.key, self.needed, self.got = op, key, needed, got
        self.may_have_applied = may_have_applied
        applied = ("the write MAY have been applied on some replicas; a later get can return it"
                   if may_have_applied else "the write was not applied anywhere")
        if op == "get":
            applied = "nothing was changed"
        msg = f"{op} {key!r}: quorum not reached ({got} of {needed} replies); {applied}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class ProtocolError(DynamoError):
    """A peer sent something this node cannot accept (unknown message type, bad frame)."""
