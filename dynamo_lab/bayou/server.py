"""The sans-I/O Bayou server.

Like the Dynamo :class:`~dynamo_lab.node.Node`, a :class:`Server` never touches a socket, a
clock, a thread, a file or the global ``random``. Its runtime hands it one input at a time:

* ``start(now)`` once, after construction (or after a restart, over the same store);
* ``on_message(src, msg, now)`` for a message from a server, a client or the operator;
* ``on_timer(timer, now)`` for a timer it set earlier;

and each call returns effects (:class:`Send`, :class:`SetTimer`, :class:`Note`). The handler
for message ``X`` is ``handle_X``; a message nobody handles raises :class:`ProtocolError`.

Rules the server keeps (Terry et al., SOSP 1995; Petersen et al., SOSP 1997):

1. A new write is stamped ``max(clock, max stamp seen + 1)`` (:func:`~.writes.new_stamp`).
2. The log is in log order (committed by CSN, then tentative by (stamp, server)); the database
   is the log applied in that order. An arriving write that sorts before applied writes rolls
   them back; they are redone after it.
3. It takes writes only in an order that keeps the **prefix property** (it holds a prefix of
   each server's writes by stamp) and commit information only in CSN order; a session reply
   that would break either is refused from that point on, and noted.
4. Only the primary gives CSNs, to what it holds, in its log order.
5. Committed writes may be truncated; the checkpoint, omitted vector and OSN stand for them.

The durable part (:class:`BayouStore`) survives a crash; the database, undo records and
version vector are rebuilt from it by ``start``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from ..errors import ConfigError, ProtocolError
from ..messages import Note, Send, SetTimer
from . import anti_entropy, log as log_order
from .database import JSON, Outcome, Undo, execute, replay, undo
from .messages import (ClientRead, ClientWrite, CommitNow, CommitTick, ReadReply,
                       SessionReply, SessionRequest, SessionTick, StartSession, Truncate,
                       WriteAccepted)
from .truncation import Checkpoint, truncate
from .writes import Commit, Write, new_stamp


@dataclass(frozen=True)
class ServerConfig:
    """``tick_s``: one unit of the accept-stamp clock, in seconds of the server's time.
    ``session_interval_s``: receive from a random peer that often (None: only on demand).
    ``commit_interval_s``: the primary commits what it holds that often (None: on demand).
    ``truncate_keep``: after taking commits, keep at most that many committed writes in the
    log (None: never truncate on its own)."""
    tick_s: float = 1.0
    session_interval_s: Optional[float] = None
    commit_interval_s: Optional[float] = None
    truncate_keep: Optional[int] = None

    def __post_init__(self):
        if not self.tick_s > 0:
            raise ConfigError("tick_s must be positive")
        for name in ("session_interval_s", "commit_interval_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ConfigError(f"{name} must be positive or None")
        if self.truncate_keep is not None and self.truncate_keep < 0:
            raise ConfigError("truncate_keep must be >= 0 or None")


@dataclass
class BayouStore:
    """What survives a crash: the log (in log order), and for its truncated head the checkpoint
    (database as of the OSN), the omitted vector and the OSN."""
    log: list[Write] = field(default_factory=list)
    checkpoint: dict[str, JSON] = field(default_factory=dict)
    omitted: dict[str, int] = field(default_factory=dict)
    osn: int = 0


@dataclass(frozen=True)
class Parts:
    """The techniques a server uses, one function each; a lab swaps one at a time.

    ``new_stamp(clock, vector) -> int``; ``position(log, write) -> index``;
    ``writes_to_send(log, receiver_vector, receiver_csn) -> items``;
    ``commit(log, csn) -> commit notices`` (the primary's)."""
    new_stamp: Callable[[int, Mapping[str, int]], int] = new_stamp
    position: Callable[[Sequence[Write], Write], int] = log_order.position
    writes_to_send: Callable[..., tuple] = anti_entropy.writes_to_send
    commit: Callable[[Sequence[Write], int], tuple] = anti_entropy.commit


class Server:
    """One Bayou server. See the module docstring for the runtime contract."""

    def __init__(self, server_id: str, servers: Sequence[str], store: BayouStore,
                 rng: random.Random, config: ServerConfig | None = None, *, primary: str,
                 parts: Parts | None = None):
        if server_id not in servers or primary not in servers:
            raise ConfigError(f"{server_id!r} and the primary {primary!r} must be among "
                              f"the servers {list(servers)}")
        self.id = server_id
        self.servers = list(servers)
        self.store = store
        self.rng = rng
        self.config = config or ServerConfig()
        self.primary = primary
        self.parts = parts or Parts()
        self.now = 0.0
        self._out: list = []
        # volatile, rebuilt by start(): the database is the log applied in order
        self.db: dict[str, JSON] = {}
        self.vector: dict[str, int] = {}
        self._undo: list[Undo] = []          # one per applied entry, in log order
        self.applied = 0                     # how many entries of the log the database holds
        self.outcomes: dict[tuple[int, str], Outcome] = {}
        self.stats = {"executed": 0, "rolled_back": 0, "outcome_changes": 0, "sessions": 0,
                      "received": 0, "full_transfers": 0, "refused": 0, "truncated": 0}
        self.done_sessions: set[str] = set()
        self._sessions = 0

    # -- what the server holds ----------------------------------------------------------------

    @property
    def log(self) -> list[Write]:
        return self.store.log

    @property
    def is_primary(self) -> bool:
        return self.id == self.primary

    @property
    def csn(self) -> int:
        """The highest CSN this server knows (0 when none): its committed writes are
        CSN 1..csn, those up to the OSN truncated."""
        return self.store.osn + log_order.committed_count(self.log)

    def committed_database(self) -> dict[str, JSON]:
        """What the committed writes alone give (the stable part of what users see)."""
        return replay(self.store.checkpoint, self.log[:log_order.committed_count(self.log)])

    # -- runtime entry points -----------------------------------------------------------------

    def start(self, now: float) -> list:
        """Begin, or resume after a restart: rebuild the database from the store, set timers."""
        self.now = now
        self.db = dict(self.store.checkpoint)
        self._undo, self.applied = [], 0
        self.vector = log_order.version_vector(self.log, self.store.omitted, self.servers)
        self._roll_forward()
        if self.config.session_interval_s:
            self._timer(self.rng.uniform(0, self.config.session_interval_s), SessionTick())
        if self.is_primary and self.config.commit_interval_s:
            self._timer(self.config.commit_interval_s, CommitTick())
        return self._flush()

    def on_message(self, src: str, msg: Any, now: float) -> list:
        """Handle one message from ``src`` (a server, a client or the operator)."""
        self.now = now
        handler = getattr(self, f"handle_{type(msg).__name__}", None)
        if handler is None:
            raise ProtocolError(f"server {self.id} got a message it does not handle: {msg!r}")
        handler(src, msg)
        return self._flush()

    def on_timer(self, timer: Any, now: float) -> list:
        self.now = now
        if isinstance(timer, SessionTick):
            peers = [s for s in self.servers if s != self.id]
            if peers:
                self._open_session(self.rng.choice(peers), "")
            self._timer(self.config.session_interval_s * self.rng.uniform(0.5, 1.5),
                        SessionTick())
        elif isinstance(timer, CommitTick):
            self._commit()
            self._timer(self.config.commit_interval_s, CommitTick())
        else:
            raise ProtocolError(f"server {self.id} got a timer it does not handle: {timer!r}")
        return self._flush()

    # -- clients ------------------------------------------------------------------------------

    def handle_ClientWrite(self, src: str, msg: ClientWrite) -> None:
        clock = math.floor(self.now / self.config.tick_s)
        stamp = self.parts.new_stamp(clock, self.vector)
        w = Write(stamp, self.id, msg.op)
        self._place(w)
        self._roll_forward()
        self._note(f"accepted {w} (clock {clock})")
        self._send(src, WriteAccepted(msg.req_id, stamp, self.id))

    def handle_ClientRead(self, src: str, msg: ClientRead) -> None:
        self._send(src, ReadReply(msg.req_id, msg.key, self.db.get(msg.key),
                                  self.committed_database().get(msg.key)))

    # -- anti-entropy -------------------------------------------------------------------------

    def handle_StartSession(self, src: str, msg: StartSession) -> None:
        if msg.peer == self.id or msg.peer not in self.servers:
            raise ProtocolError(f"{self.id} cannot hold a session with {msg.peer!r}")
        self._open_session(msg.peer, msg.session)

    def _open_session(self, peer: str, session: str) -> None:
        self._sessions += 1
        session = session or f"{self.id}.{self._sessions}"
        self._send(peer, SessionRequest(session, tuple(self.vector.items()), self.csn))

    def handle_SessionRequest(self, src: str, msg: SessionRequest) -> None:
        vector, csn = dict(msg.vector), msg.csn
        checkpoint = None
        if anti_entropy.needs_checkpoint(self.store.osn, csn):
            checkpoint = Checkpoint.of(self.store.osn, self.store.omitted, self.store.checkpoint)
        items = self.parts.writes_to_send(self.log, vector, csn)
        self._send(src, SessionReply(msg.session, tuple(items), checkpoint))

    def handle_SessionReply(self, src: str, msg: SessionReply) -> None:
        before = self.stats["rolled_back"]
        if msg.checkpoint is not None and msg.checkpoint.osn > self.csn:
            self._install(msg.checkpoint)
        taken = 0
        for item in msg.items:
            why = self._take(item)
            if why:
                self.stats["refused"] += 1
                self._note(f"session {msg.session} from {src}: refused the rest at "
                           f"{item.stamp}:{item.server}: {why}")
                break
            taken += 1
        self._roll_forward()
        self.stats["sessions"] += 1
        self.done_sessions.add(msg.session)
        self._note(f"session {msg.session} from {src}: {taken} of {len(msg.items)} items, "
                   f"rolled back {self.stats['rolled_back'] - before}")
        self._auto_truncate()

    def _take(self, item: Union[Write, Commit]) -> str:
        """Put one item of a session reply in the log; '' if taken, else why it was refused."""
        held = item.stamp <= self.vector.get(item.server, 0)
        if item.csn is None:                        # a tentative write
            if not held:
                self._place(item)
            return ""
        if item.csn <= self.csn:                    # commit information we already have
            return ""
        if item.csn != self.csn + 1:
            return f"CSN {item.csn} after {self.csn}: commits must arrive in order"
        if held:
            j = log_order.find(self.log, item.wid)
            if j < 0 or self.log[j].csn is not None:
                return "the version vector says it is held, but not as a tentative write"
            self._commit_entry(j, item.csn)
        elif isinstance(item, Commit):
            return "a commit notice for a write this server does not hold"
        else:
            self._place(item)
        return ""

    def _install(self, cp: Checkpoint) -> None:
        """A full database transfer: the sender's checkpoint replaces this server's committed
        writes; its tentative writes that the checkpoint does not cover are redone on top."""
        self._rollback_to(0)
        omitted = dict(cp.omitted)
        self.store.log[:] = [w for w in self.log
                             if w.csn is None and w.stamp > omitted.get(w.server, 0)]
        self.store.checkpoint = dict(cp.database)
        self.store.omitted, self.store.osn = omitted, cp.osn
        self.db = dict(cp.database)
        for s, t in omitted.items():
            self.vector[s] = max(self.vector.get(s, 0), t)
        self.stats["full_transfers"] += 1
        self._note(f"full database transfer: checkpoint at OSN {cp.osn}")

    # -- the primary --------------------------------------------------------------------------

    def handle_CommitNow(self, src: str, msg: CommitNow) -> None:
        if not self.is_primary:
            raise ProtocolError(f"{self.id} is not the primary ({self.primary} is): "
                                f"only the primary commits")
        self._commit()

    def _commit(self) -> None:
        first = self.csn + 1
        for notice in self.parts.commit(self.log, self.csn):
            why = self._take(notice)
            if why:
                raise ProtocolError(f"the primary's commit of {notice} is wrong: {why}")
        self._roll_forward()
        if self.csn >= first:
            self._note(f"committed CSN {first}..{self.csn}")
        self._auto_truncate()

    # -- truncation ---------------------------------------------------------------------------

    def handle_Truncate(self, src: str, msg: Truncate) -> None:
        self._truncate(msg.keep)

    def _auto_truncate(self) -> None:
        if self.config.truncate_keep is not None:
            self._truncate(self.config.truncate_keep)

    def _truncate(self, keep: int) -> None:
        s = self.store
        old_log = s.log
        s.log, s.checkpoint, s.omitted, s.osn = truncate(old_log, s.checkpoint, s.omitted,
                                                         s.osn, keep)
        drop = len(old_log) - len(s.log)
        if drop:
            for w in old_log[:drop]:           # committed: never executed again
                self.outcomes.pop(w.wid, None)
            del self._undo[:drop]              # every entry is applied between two inputs
            self.applied -= drop
            self.stats["truncated"] += drop
            self._note(f"truncated {drop} committed writes (OSN {s.osn})")

    # -- the log and the database -------------------------------------------------------------

    def _place(self, w: Write) -> None:
        """Insert a write the server does not hold, rolling back what sorts after it."""
        p = self.parts.position(self.log, w)
        self._rollback_to(p)
        self.log.insert(p, w)
        if w.stamp > self.vector.get(w.server, 0):
            self.vector[w.server] = w.stamp
        if w.server != self.id:
            self.stats["received"] += 1

    def _commit_entry(self, j: int, csn: int) -> None:
        """The tentative entry at ``j`` is committed with ``csn``: it moves to the end of the
        committed writes; the tentative writes it passes are rolled back."""
        c = log_order.committed_count(self.log)
        w = replace(self.log[j], csn=csn)
        if j == c:                      # already in place: nothing before it changes
            self.log[j] = w
            return
        self._rollback_to(c)
        del self.log[j]
        self.log.insert(c, w)

    def _rollback_to(self, p: int) -> None:
        """Undo applied entries from the last down to index ``p``."""
        while self.applied > p:
            self.applied -= 1
            undo(self.db, self._undo.pop())
            self.stats["rolled_back"] += 1

    def _roll_forward(self) -> None:
        """Redo (or do) every entry not yet applied, in log order."""
        while self.applied < len(self.log):
            w = self.log[self.applied]
            record, outcome = execute(w, self.db)
            self._undo.append(record)
            self.applied += 1
            self.stats["executed"] += 1
            old = self.outcomes.get(w.wid)
            if old is not None and old != outcome:
                self.stats["outcome_changes"] += 1
            self.outcomes[w.wid] = outcome

    # -- effects ------------------------------------------------------------------------------

    def _send(self, dst: str, msg: Any) -> None:
        self._out.append(Send(dst, msg))

    def _timer(self, delay_s: float, timer: Any) -> None:
        self._out.append(SetTimer(delay_s, timer))

    def _note(self, text: str) -> None:
        self._out.append(Note(text))

    def _flush(self) -> list:
        out, self._out = self._out, []
        return out

    def __repr__(self) -> str:
        return (f"Server({self.id}, {len(self.log)} writes, csn={self.csn}, "
                f"osn={self.store.osn}, vector={self.vector})")
