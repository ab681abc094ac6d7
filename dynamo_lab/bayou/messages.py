"""Every message and timer a Bayou server handles, and their trip through the wire codec.

Messages are frozen dataclasses of plain data, like the Dynamo node's; the nested ones (writes,
operations, commit notices, checkpoints) are frozen dataclasses too. They cross the *same*
JSON codec (:mod:`dynamo_lab.codec`): :func:`round_trip` makes the Bayou types known to it
for the duration of the call only, so the Dynamo registry that the TCP runtime and the
Dynamo tests enumerate never lists them, and a Bayou message sent to a Dynamo node is still an
unknown message there.

The cluster round-trips everything a server sends (and every timer it sets) through
:func:`round_trip`, so nothing works in the simulator that would break on a wire.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Optional, Union

from .. import codec, messages as wire
from ..errors import ProtocolError
from .truncation import Checkpoint
from .writes import OPERATIONS, Add, Book, Commit, Delete, Put, Write

JSON = Any
Operation = Union[Put, Delete, Add, Book]


# -- client <-> server ------------------------------------------------------------------------

@dataclass(frozen=True)
class ClientWrite:
    """Accept this operation as a new write."""
    req_id: str
    op: Operation


@dataclass(frozen=True)
class WriteAccepted:
    req_id: str
    stamp: int
    server: str


@dataclass(frozen=True)
class ClientRead:
    req_id: str
    key: str


@dataclass(frozen=True)
class ReadReply:
    """``value``: what the server's database shows (tentative writes included);
    ``committed_value``: what its committed writes alone give."""
    req_id: str
    key: str
    value: JSON
    committed_value: JSON


# -- the operator (on-demand actions; the same happen on timers) -------------------------------

@dataclass(frozen=True)
class StartSession:
    """Run one anti-entropy session now, receiving from ``peer``."""
    peer: str
    session: str = ""


@dataclass(frozen=True)
class CommitNow:
    """(To the primary) commit every tentative write held now."""


@dataclass(frozen=True)
class Truncate:
    """Discard committed writes from the head of the log, keeping at most ``keep``."""
    keep: int = 0


# -- server <-> server (anti-entropy) ----------------------------------------------------------

@dataclass(frozen=True)
class SessionRequest:
    """The receiver opens a session: what it holds (version vector) and knows committed (CSN)."""
    session: str
    vector: tuple[tuple[str, int], ...]
    csn: int


@dataclass(frozen=True)
class SessionReply:
    """What the receiver lacks, in the sender's log order, after the sender's checkpoint when
    the receiver is behind the sender's truncation point (a full database transfer)."""
    session: str
    items: tuple[Union[Write, Commit], ...]
    checkpoint: Optional[Checkpoint] = None


# -- timers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionTick:
    """Time for an anti-entropy session with a peer chosen at random."""


@dataclass(frozen=True)
class CommitTick:
    """(At the primary) time to commit what it holds."""


MESSAGE_TYPES: dict[str, type] = {c.__name__: c for c in (
    ClientWrite, WriteAccepted, ClientRead, ReadReply, StartSession, CommitNow, Truncate,
    SessionRequest, SessionReply)}
TIMER_TYPES: dict[str, type] = {c.__name__: c for c in (SessionTick, CommitTick)}
NESTED_TYPES: dict[str, type] = {c.__name__: c for c in (Write, Commit, Checkpoint, *OPERATIONS)}
_ALL = {**MESSAGE_TYPES, **TIMER_TYPES, **NESTED_TYPES}


@contextlib.contextmanager
def _known_to_the_codec():
    """Make the Bayou types known to the codec (the registry in :mod:`dynamo_lab.messages`) for
    the duration of a call."""
    clash = [n for n, c in _ALL.items() if wire.MESSAGE_TYPES.get(n, c) is not c
             or n in wire.TIMER_TYPES]
    if clash:
        raise TypeError(f"Bayou message names clash with Dynamo's: {clash}")
    added = [n for n in _ALL if n not in wire.MESSAGE_TYPES]
    wire.MESSAGE_TYPES.update({n: _ALL[n] for n in added})
    try:
        yield
    finally:
        for n in added:
            del wire.MESSAGE_TYPES[n]


def dumps(msg: Any) -> bytes:
    """Encode a Bayou message (or timer) to JSON bytes with the project's codec."""
    if type(msg).__name__ not in _ALL:
        raise TypeError(f"{type(msg).__name__} is not a Bayou message")
    with _known_to_the_codec():
        return codec.dumps(msg)


def loads(data: bytes | str) -> Any:
    """Decode :func:`dumps`'s output; :class:`ProtocolError` on anything malformed."""
    with _known_to_the_codec():
        msg = codec.loads(data)
    if type(msg).__name__ not in MESSAGE_TYPES and type(msg).__name__ not in TIMER_TYPES:
        raise ProtocolError(f"{type(msg).__name__} is not a Bayou message")
    return msg


def round_trip(msg: Any) -> Any:
    """What the receiver of ``msg`` would see after a trip over a wire."""
    return loads(dumps(msg))
