"""A Bayou system inside the deterministic simulator (the same :class:`Simulator`,
:class:`NodeHost` and trace as the Dynamo :class:`~dynamo_lab.cluster.SimCluster`).

::

    from dynamo_lab.bayou import BayouCluster, Put
    bayou = BayouCluster(["P", "A", "B"], primary="P", seed=7)
    bayou.write("A", Put("X", 3))          # a client writes at A; returns the accepted Write
    bayou.session("A", "B")                # anti-entropy both ways, on demand
    bayou.commit()                         # the primary commits what it holds
    bayou.partition({"P"}, {"A", "B"}); bayou.crash("B"); bayou.restart("B"); bayou.heal()
    print(bayou.render("A"))               # the slides' table of A's log

Clients write to a server over the network (latency, no faults); the operator's commands
(sessions, commits, truncation) reach a server at once, as on its console. Servers talk to each
other through the simulator's faulty network. With ``check=True`` the
:class:`~.checker.BayouChecker` looks at every server after every step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Mapping, Optional

from ..errors import ConfigError
from ..messages import Send, SetTimer
from ..faults import FaultConfig
from ..sim.simulator import NodeHost, Simulator
from .checker import BayouChecker
from .messages import (ClientRead, ClientWrite, CommitNow, ReadReply, StartSession,
                       Truncate, WriteAccepted, round_trip)
from .server import BayouStore, Parts, Server, ServerConfig
from .tables import Table, render, table
from .writes import Operation, Write


class WireChecked:
    """Runs a server so that every message it sends and every timer it sets crosses the wire
    codec first: what the receiver gets is what a real wire would carry."""

    def __init__(self, server: Server):
        self.server = server

    def start(self, now: float) -> list:
        return self._wire(self.server.start(now))

    def on_message(self, src: str, msg: Any, now: float) -> list:
        return self._wire(self.server.on_message(src, msg, now))

    def on_timer(self, timer: Any, now: float) -> list:
        return self._wire(self.server.on_timer(timer, now))

    @staticmethod
    def _wire(effects: list) -> list:
        out = []
        for e in effects:
            if isinstance(e, Send):
                e = replace(e, msg=round_trip(e.msg))
            elif isinstance(e, SetTimer):
                e = replace(e, timer=round_trip(e.timer))
            out.append(e)
        return out


class _Client:
    """Clients' address on the simulated network: collects the servers' answers."""

    def __init__(self, cluster: "BayouCluster", name: str):
        self.cluster, self.name = cluster, name
        self.replies: dict[str, Any] = {}

    def deliver(self, src: str, msg: Any, carried=None) -> None:
        sim = self.cluster.sim
        sim.trace.add(sim.now, "deliver", self.name, src, msg, carried=carried)
        if isinstance(msg, (WriteAccepted, ReadReply)):
            self.replies[msg.req_id] = msg


class BayouCluster:
    """Bayou servers in the simulator. ``servers``: names (the slides' ``P``, ``A``, ``B``);
    ``primary``: the one that commits (default the first). ``config``: a :class:`ServerConfig`
    for every server, or ``configs`` one per name. ``parts``: a :class:`Parts` to swap in a
    technique. ``check``: run the checker after every step; ``stop_on_violation``: stop
    running at the first broken promise (False: record it and go on, to see what follows)."""

    def __init__(self, servers: Iterable[str] = ("P", "A", "B"), *, primary: Optional[str] = None,
                 seed: int = 0, faults: FaultConfig | None = None,
                 config: ServerConfig | None = None,
                 configs: Optional[Mapping[str, ServerConfig]] = None,
                 parts: Parts | None = None, check: bool = True, wire_check: bool = True,
                 trace: bool = True, trace_limit: Optional[int] = None,
                 stop_on_violation: bool = True):
        names = list(servers)
        if len(names) < 1 or len(set(names)) != len(names) or not all(
                isinstance(n, str) and n.isidentifier() for n in names):
            raise ConfigError(f"servers must be distinct names like 'P', 'A'; got {names}")
        self.names = names
        self.primary = primary or names[0]
        if self.primary not in names:
            raise ConfigError(f"the primary {self.primary!r} is not one of {names}")
        self.seed = seed
        # The Dynamo codec does not know Bayou's types; WireChecked does the wire check.
        self.sim = Simulator(seed, faults, wire_check=False, trace=trace, trace_limit=trace_limit)
        self.parts = parts
        self.wire_check = wire_check
        self.checker = BayouChecker(names) if check else None
        self.stop_on_violation = stop_on_violation
        self.stores: dict[str, BayouStore] = {}
        self.hosts: dict[str, NodeHost] = {}
        configs = dict(configs or {})
        skew = self.sim.rng("clock-skew")
        for name in names:
            cfg = configs.get(name, config or ServerConfig())
            self.stores[name] = BayouStore()
            self.hosts[name] = NodeHost(self.sim, name, self._maker(name, cfg),
                                        skew.uniform(-1, 1) * self.sim.faults.skew_s)
            self.sim.add_endpoint(name, self.hosts[name])
        self.client = _Client(self, "client")
        self.sim.add_endpoint(self.client.name, self.client, faulty=False)
        self._req = 0
        for name in names:
            self.hosts[name].boot()
            self._observe()

    def _maker(self, name: str, cfg: ServerConfig):
        def make(incarnation: int):
            server = Server(name, self.names, self.stores[name],
                            self.sim.rng(f"bayou/{name}/{incarnation}"), cfg,
                            primary=self.primary, parts=self.parts)
            return WireChecked(server) if self.wire_check else server
        return make

    def __repr__(self) -> str:
        return f"BayouCluster({self.names}, primary={self.primary}, seed={self.seed}, t={self.now:.3f})"

    # -- looking inside -----------------------------------------------------------------------

    def server(self, name: str) -> Server:
        """The live server object (to inspect its state); ``ConfigError`` if it is down."""
        node = self._host(name).node
        if node is None:
            raise ConfigError(f"server {name} is down; restart it first")
        return node.server if isinstance(node, WireChecked) else node

    def up(self) -> list[str]:
        return [n for n in self.names if self.hosts[n].alive]

    def table(self, name: str) -> Table:
        return table(self.server(name))

    def tables(self) -> dict[str, Table]:
        return {n: self.table(n) for n in self.up()}

    def render(self, name: Optional[str] = None) -> str:
        """The slides' table of one server's log, or of every live server's."""
        names = [name] if name else self.up()
        return "\n\n".join(render(self.table(n)) for n in names)

    def databases(self) -> dict[str, dict]:
        return {n: dict(self.server(n).db) for n in self.up()}

    def trace_lines(self, last: Optional[int] = None) -> list[str]:
        lines = self.sim.trace.lines()
        return lines[-last:] if last else lines

    @property
    def now(self) -> float:
        return self.sim.now

    def _host(self, name: str) -> NodeHost:
        if name not in self.hosts:
            raise ConfigError(f"no server {name!r}; servers are {self.names}")
        return self.hosts[name]

    # -- time and the checker -----------------------------------------------------------------

    def _observe(self) -> bool:
        """Check every live server that changed; True once something is broken."""
        if self.checker is None:
            return False
        for name in self.names:
            if self.hosts[name].alive:
                self.checker.observe(self.server(name), self.sim.now)
        return self.stop_on_violation and not self.checker.ok

    def run_until(self, t: float, stop=None) -> bool:
        """Run to virtual time ``t`` (or until ``stop()``, or the first broken promise)."""
        return self.sim.run_until(t, stop=lambda: self._observe() or bool(stop and stop()))

    def run_for(self, seconds: float) -> None:
        self.run_until(self.sim.now + seconds)

    # -- clients ------------------------------------------------------------------------------

    def submit_write(self, server: str, op: Operation) -> str:
        """Send a client's write to ``server``; returns its request id (see :meth:`reply`)."""
        self._host(server)
        self._req += 1
        req = f"w{self._req}"
        self.sim.send(self.client.name, server, round_trip(ClientWrite(req, op)))
        return req

    def reply(self, req: str) -> Any:
        """The server's answer to a request, or None while there is none."""
        return self.client.replies.get(req)

    def write(self, server: str, op: Operation, timeout_s: float = 5.0) -> Optional[Write]:
        """A client's write at ``server``: the accepted :class:`Write` (tentative), or None if
        the server did not answer (it is down)."""
        req = self.submit_write(server, op)
        self.run_until(self.now + timeout_s, stop=lambda: req in self.client.replies)
        ack = self.client.replies.get(req)
        return None if ack is None else Write(ack.stamp, ack.server, op)

    def read(self, server: str, key: str, timeout_s: float = 5.0) -> Optional[ReadReply]:
        self._req += 1
        req = f"r{self._req}"
        self.sim.send(self.client.name, server, round_trip(ClientRead(req, key)))
        self.run_until(self.now + timeout_s, stop=lambda: req in self.client.replies)
        return self.client.replies.get(req)

    # -- the operator -------------------------------------------------------------------------

    def _command(self, name: str, msg: Any) -> None:
        self._host(name).deliver("operator", round_trip(msg))
        self._observe()

    def start_session(self, receiver: str, sender: str) -> str:
        """``receiver`` opens an anti-entropy session with ``sender`` now; returns its id."""
        self._req += 1
        session = f"s{self._req}:{sender}>{receiver}"
        self._command(receiver, StartSession(sender, session))
        return session

    def receive(self, receiver: str, sender: str, timeout_s: float = 5.0) -> bool:
        """One one-way session: ``sender`` sends ``receiver`` what it lacks. True if done."""
        session = self.start_session(receiver, sender)
        return self._wait_sessions({receiver: session}, timeout_s)

    def session(self, a: str, b: str, timeout_s: float = 5.0) -> bool:
        """The slides' "anti-entropy session A & B": each receives from the other (both
        sessions start at once). True if both finished within ``timeout_s``."""
        sessions = {a: self.start_session(a, b), b: self.start_session(b, a)}
        return self._wait_sessions(sessions, timeout_s)

    def _wait_sessions(self, sessions: Mapping[str, str], timeout_s: float) -> bool:
        def done() -> bool:
            return all(self.hosts[r].alive and s in self.server(r).done_sessions
                       for r, s in sessions.items())
        self.run_until(self.now + timeout_s, stop=done)
        return done()

    def commit(self) -> None:
        """The primary commits every write it holds, now."""
        self._command(self.primary, CommitNow())

    def truncate(self, name: str, keep: int = 0) -> None:
        """``name`` discards its committed writes but the last ``keep``."""
        self._command(name, Truncate(keep))

    # -- faults -------------------------------------------------------------------------------

    def crash(self, name: str) -> None:
        """Stop a server: its volatile state (database, undo records) is lost, its store kept."""
        host = self._host(name)
        if host.alive:
            host.crash()

    def restart(self, name: str) -> None:
        """Bring a crashed server back: it rebuilds its database from its store."""
        host = self._host(name)
        if not host.alive:
            host.boot()
            self.sim.trace.add(self.sim.now, "restart", name, detail=f"incarnation {host.incarnation}")
            self._observe()

    def partition(self, *groups: Iterable[str], one_way: bool = False) -> None:
        """Split the network between servers: different groups cannot reach each other."""
        groups = [sorted(set(g)) for g in groups]
        seen = [x for g in groups for x in g]
        if len(groups) < 2 or len(seen) != len(set(seen)):
            raise ConfigError("partition needs two or more disjoint groups of servers")
        for x in seen:
            self._host(x)
        self.sim.partition(groups, one_way=one_way)

    def heal(self) -> None:
        self.sim.heal()

    def settle(self, seconds: float = 30.0) -> None:
        """Heal, restart every crashed server, stop message faults, and let time pass."""
        self.heal()
        self.sim.faults = replace(self.sim.faults, drop=0.0, duplicate=0.0, reorder=0.0)
        for name in self.names:
            self.restart(name)
        self.run_for(seconds)

    def converged(self) -> bool:
        """After :meth:`settle`: does every server hold every write, committed, with one
        database? (Recorded as ``converged`` violations by the checker when not.)"""
        servers = {n: self.server(n) for n in self.up()}
        if self.checker is not None:
            return self.checker.check_converged(servers, self.now)
        first = servers[min(servers)]           # without the checker: compare the servers
        return all(s.vector == first.vector and s.csn == first.csn and s.db == first.db
                   and all(w.csn is not None for w in s.log) for s in servers.values())
