"""Bayou's promises, checked from outside the servers after every step of a run.

The checker reads each server's log, version vector, database and truncation state (never its
private bookkeeping), and learns the ground truth as it goes: every write is seen in its
accepting server's log in the very step that accepted it, with what that server held then (its
causal past). Each promise has a name, which failures carry:

``log-order``           committed writes first, by consecutive CSNs from OSN + 1; then
                        tentative ones by (stamp, server); each server's writes by stamp
``prefix-property``     a server holds exactly X's writes stamped up to its ``vector[X]``
``committed-prefix``    CSN k names the same write on every server, forever, and a write has
                        one CSN; checkpoints of one OSN are equal everywhere, and are exactly
                        the committed writes up to it (where the checker saw them all: a
                        primary that truncates as it commits shows them to nobody)
``causal-order``        a write is stamped above, held after, and ordered after every write
                        its server held when it accepted it
``database-is-the-log`` the database equals the checkpoint with the log applied in order
``converged``           (after heal and quiet) every server holds every write, all committed,
                        with identical databases
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from . import log as log_order
from .database import replay
from .writes import Write


@dataclass(frozen=True)
class Violation:
    promise: str
    server: str
    time: float
    detail: str

    def __str__(self) -> str:
        return f"{self.promise} at {self.server} (T={self.time:.3f}): {self.detail}"


class BayouChecker:
    """Call :meth:`observe` with every live server after every step (the cluster does)."""

    def __init__(self, servers: Iterable[str], max_violations: int = 20):
        self.servers = list(servers)
        self.accepted: dict[str, list[int]] = {s: [] for s in self.servers}
        self.writes: dict[tuple[int, str], Write] = {}
        self.deps: dict[tuple[int, str], dict[str, int]] = {}
        self.committed: dict[int, tuple[int, str]] = {}     # CSN -> write, as first seen
        self.csn_of: dict[tuple[int, str], int] = {}
        self._checkpoints: dict[int, tuple[dict, dict]] = {}  # OSN -> (omitted, database)
        self.violations: list[Violation] = []
        self.max_violations = max_violations
        self.checks = 0
        self._seen: dict[str, tuple] = {}
        self._states: dict[int, tuple[dict, dict]] = {}

    @property
    def ok(self) -> bool:
        return not self.violations

    def _fail(self, promise: str, server: str, now: float, detail: str) -> None:
        if len(self.violations) < self.max_violations:
            self.violations.append(Violation(promise, server, now, detail))

    # -- every step ---------------------------------------------------------------------------

    def observe(self, server: Any, now: float) -> None:
        """Check ``server`` if anything it holds changed since it was last checked."""
        mark = (id(server), len(server.log), server.csn, server.store.osn,
                tuple(server.vector.items()), server.stats["executed"],
                server.stats["rolled_back"])
        if self._seen.get(server.id) == mark:
            return
        self._seen[server.id] = mark
        self.checks += 1
        self._learn(server, now)
        for check in (self._log_order, self._prefix, self._committed_prefix, self._causal,
                      self._database):
            if not check(server, now):
                break                           # later checks assume the earlier ones

    def _learn(self, s: Any, now: float) -> None:
        """New writes of the server itself: record them and their causal past."""
        mine = self.accepted[s.id]
        last = mine[-1] if mine else 0
        for w in s.log:
            if w.server == s.id and w.stamp > last:
                deps = dict(s.vector)
                deps[s.id] = mine[-1] if mine else 0
                mine.append(w.stamp)
                self.writes[w.wid] = w
                self.deps[w.wid] = deps
                if w.stamp <= max(deps.values(), default=0):
                    self._fail("causal-order", s.id, now,
                               f"{w} is stamped {w.stamp}, not above every write its server "
                               f"held ({deps}): a later write could sort before it")
        # stamps of one server are checked in increasing order below (log-order)

    def _log_order(self, s: Any, now: float) -> bool:
        log = s.log
        if not log_order.in_log_order(log):
            self._fail("log-order", s.id, now, "the log is not committed-by-CSN then "
                       "tentative-by-(stamp, server): " + " ".join(w.label() for w in log))
            return False
        first = next((w.csn for w in log if w.csn is not None), None)
        if first is not None and first != s.store.osn + 1:
            self._fail("log-order", s.id, now, f"first CSN in the log is {first}, after "
                       f"OSN {s.store.osn}")
            return False
        last: dict[str, int] = {}
        for w in log:
            if w.stamp <= last.get(w.server, 0):
                self._fail("log-order", s.id, now, f"{w} comes after {w.server}'s write "
                           f"stamped {last.get(w.server, 0)}: a server's writes must keep their "
                           f"accept order")
                return False
            last[w.server] = w.stamp
        return True

    def _prefix(self, s: Any, now: float) -> bool:
        omitted = s.store.omitted
        for x in self.servers:
            stamps = self.accepted[x]
            v, o = s.vector.get(x, 0), omitted.get(x, 0)
            lo, hi = bisect.bisect_right(stamps, o), bisect.bisect_right(stamps, v)
            expected = stamps[lo:hi]
            held = [w.stamp for w in s.log if w.server == x]
            if held != expected or (v and v not in stamps) or (o and o not in stamps):
                missing = sorted(set(expected) - set(held))
                self._fail("prefix-property", s.id, now,
                           f"vector says {x}:{v} (omitted {o}) but the log holds {x}'s "
                           f"writes {held}" + (f"; missing {missing}" if missing else ""))
                return False
        return True

    def _committed_prefix(self, s: Any, now: float) -> bool:
        for w in s.log:
            if w.csn is None:
                break
            known = self.committed.get(w.csn)
            if known is None:
                if w.wid in self.csn_of:
                    self._fail("committed-prefix", s.id, now, f"{w} was committed before as "
                               f"CSN {self.csn_of[w.wid]}")
                    return False
                self.committed[w.csn], self.csn_of[w.wid] = w.wid, w.csn
            elif known != w.wid:
                self._fail("committed-prefix", s.id, now, f"CSN {w.csn} is {w.label()} here "
                           f"but {known[0]}:{known[1]} elsewhere")
                return False
            if w.wid not in self.writes or self.writes[w.wid].op != w.op:
                self._fail("committed-prefix", s.id, now, f"{w} is not the write its "
                           f"server accepted")
                return False
        return self._checkpoint(s, now)

    def _checkpoint(self, s: Any, now: float) -> bool:
        """The truncated head: the same at every server for one OSN, and, where every write
        up to it was seen committed, exactly those writes applied."""
        osn = s.store.osn
        if not osn:
            return True
        omitted = {k: v for k, v in s.store.omitted.items() if v}
        seen = self._checkpoints.setdefault(osn, (omitted, s.store.checkpoint))
        if seen != (omitted, s.store.checkpoint):
            self._fail("committed-prefix", s.id, now, f"the checkpoint at OSN {osn} differs "
                       f"from another server's at the same OSN")
            return False
        expected = self._state_at(osn)
        if expected is not None and expected != (omitted, s.store.checkpoint):
            self._fail("committed-prefix", s.id, now, f"the checkpoint at OSN {osn} is not "
                       f"the committed writes 1..{osn} applied")
            return False
        return True

    def _state_at(self, k: int):
        """(omitted vector, database) of the committed writes 1..k, if all were seen."""
        if k not in self._states:
            wids = [self.committed.get(c) for c in range(1, k + 1)]
            if None in wids:
                return None
            omitted: dict[str, int] = {}
            for stamp, x in wids:
                omitted[x] = max(omitted.get(x, 0), stamp)
            self._states[k] = (omitted, replay({}, (self.writes[w] for w in wids)))
        return self._states[k]

    def _causal(self, s: Any, now: float) -> bool:
        index = {w.wid: i for i, w in enumerate(s.log)}
        for i, w in enumerate(s.log):
            deps = self.deps.get(w.wid, {})
            for x, t in deps.items():
                if t > s.vector.get(x, 0):
                    self._fail("causal-order", s.id, now, f"holds {w} but not {x}'s write "
                               f"stamped {t}, which its server held when it accepted it")
                    return False
                j = index.get((t, x))
                if j is not None and j > i:
                    self._fail("causal-order", s.id, now, f"{s.log[j]} sorts after {w}, "
                               f"which was accepted after it was seen")
                    return False
        return True

    def _database(self, s: Any, now: float) -> bool:
        if s.db != replay(s.store.checkpoint, s.log):
            self._fail("database-is-the-log", s.id, now, "the database is not the log "
                       "applied in order (a rollback or a redo went wrong)")
            return False
        return True

    # -- after heal and quiet -----------------------------------------------------------------

    def convergence_problems(self, servers: Mapping[str, Any]) -> dict[str, str]:
        """What keeps ``servers`` from having converged: per server, what is missing."""
        total = sum(len(v) for v in self.accepted.values())
        want = {x: (self.accepted[x][-1] if self.accepted[x] else 0) for x in self.servers}
        out, ref = {}, None
        for name in sorted(servers):
            s = servers[name]
            problems = []
            if dict(s.vector) != want:
                problems.append(f"vector {dict(s.vector)}, not {want}")
            if s.csn != total:
                problems.append(f"{s.csn} of {total} writes committed")
            if ref is not None and s.db != ref[1]:
                problems.append(f"database differs from {ref[0]}'s")
            if problems:
                out[name] = "; ".join(problems)
            ref = ref or (name, s.db)
        return out

    def check_converged(self, servers: Mapping[str, Any], now: float) -> bool:
        """Every server holds every accepted write, all committed, and shows one database;
        each failure is recorded as a ``converged`` violation."""
        problems = self.convergence_problems(servers)
        for name, text in problems.items():
            self._fail("converged", name, now, text)
        return not problems
