"""One ``Cluster`` interface, two runtimes: :class:`SimCluster` (the deterministic simulator)
and :class:`dynamo_lab.tcp.TcpCluster` (real processes on 127.0.0.1).

::

    cluster = dl.SimCluster(nodes=5, n=3, r=2, w=2, vnodes=8, seed=7)
    alice = cluster.client("alice")
    res = alice.get("cart")
    alice.put("cart", ["book"], context=res.context, via="B")
    cluster.crash("C"); cluster.run_for(5); cluster.restart("C")
    cluster.partition({"A", "B"}, {"C", "D", "E"}); cluster.heal()
    cluster.replicas("cart")          # what each replica holds now
"""

from __future__ import annotations

import string
from typing import Any, Iterable, Optional

from .checker import History, check_history
from .client import Client, Operation, result_from_reply, validate_request
from .errors import ConfigError, QuorumError
from .faults import FaultConfig
from .messages import ClientReply
from .node import Node, NodeConfig, Parts
from .node.common import default_tokens
from .ring import Ring
from .runtime import client_request, client_timeout_s, no_reply
from .sim.simulator import NodeHost, Simulator
from .storage import MemoryStore, SqliteStore, Store
from .versions import Versioned


def node_names(count: int) -> list[str]:
    """A, B, C, ... Z, then N26, N27, ..."""
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else f"N{i}" for i in range(count)]


class Cluster:
    """What every cluster offers. See the module docstring. Subclasses provide ``nodes``,
    ``now``, ``history``, ``config``, ``replicas`` and ``_require(name)``."""

    config: NodeConfig
    parts: Optional[Parts] = None

    def client(self, name: str = "client") -> Client:
        return Client(self, name)

    def ring(self):
        """The ring all current members form (what every node's view converges to), built by
        the same ring factory the nodes use (a student's, when one is plugged in)."""
        members = {n: default_tokens(n, self.config.vnodes) for n in self.nodes}
        if self.parts is not None:
            return self.parts.ring_factory(members)
        return Ring.from_tokens(members)

    def preference_list(self, key: str) -> list[str]:
        return self.ring().preference_list(key, min(self.config.n, len(self.nodes)))

    def _partition_groups(self, groups) -> list[list[str]]:
        """Check the groups of a partition: at least two, known nodes, each in one group."""
        if len(groups) < 2:
            raise ConfigError("partition needs at least two groups, e.g. "
                              "partition({'A','B'}, {'C','D','E'})")
        seen: set[str] = set()
        out = []
        for g in groups:
            g = sorted(set(g))
            for x in g:
                self._require(x)
                if x in seen:
                    raise ConfigError(f"node {x} is in two groups")
                seen.add(x)
            out.append(g)
        return out

    def _pick_via(self, op: Operation) -> None:
        """The node that receives the request: ``via=`` if given (it must exist), else one chosen
        at random among the running nodes, like a load balancer that health-checks."""
        if op.via:
            self._require(op.via)
            return
        up = self.up()
        if not up:
            raise QuorumError(op.kind, op.key, 1, 0, False, "every node is down")
        op.via = self._lb.choice(up)

    def _complete(self, op: Operation, reply: Optional[ClientReply], error) -> None:
        """An operation ended: its result (or error), the history, the callbacks."""
        if error is None:
            try:
                op.reply = result_from_reply(op, reply)
            except Exception as exc:  # QuorumError or ClientError: it belongs to the caller
                error = exc
        op.error = error
        op.finished = self.now
        self.history.end(op.record, op.finished, reply, error)
        for cb in op.callbacks:
            cb(op)

    def _validate(self, kind, key, value, context) -> None:
        validate_request(kind, key, value, context, self.config.cluster_key,
                         self.config.max_value_bytes)

    def check(self, keys: Optional[Iterable[str]] = None):
        """Run the checker over this cluster's history against what the replicas hold now."""
        keys = self.history.keys() if keys is None else list(keys)
        return check_history(self.history, {k: self.replicas(k) for k in keys})


class _ClientEndpoint:
    """A client's address on the simulated network: it only receives replies."""

    def __init__(self, cluster: "SimCluster", name: str):
        self.cluster = cluster
        self.name = name
        self.pending: dict[str, Operation] = {}

    def deliver(self, src: str, msg: Any, carried=None) -> None:
        sim = self.cluster.sim
        sim.trace.add(sim.now, "deliver", self.name, src, msg, carried=carried)
        if not isinstance(msg, ClientReply):
            return
        op = self.pending.pop(msg.req_id, None)
        if op is not None:
            self.cluster._finish(op, msg, None)


class SimCluster(Cluster):
    """A Dynamo cluster inside the deterministic simulator.

    ``nodes``: a count (named A, B, C, ...) or a list of names. ``n, r, w, vnodes``: the
    replication parameters. ``seed``: every random choice flows from it. ``faults``: a
    :class:`FaultConfig`. ``parts``: a :class:`Parts` to swap in a student's implementation of
    one technique. Other keyword arguments set :class:`NodeConfig` fields
    (``request_timeout_s=...``, ``anti_entropy=False``, ...). ``store="sqlite"`` with
    ``data_dir`` keeps each node's data in a SQLite file instead of memory.
    """

    def __init__(self, nodes: int | Iterable[str] = 5, n: int = 3, r: int = 2, w: int = 2,
                 vnodes: int = 8, seed: int = 0, *, faults: FaultConfig | None = None,
                 parts: Parts | None = None, wire_check: bool = True, trace: bool = True,
                 trace_limit: Optional[int] = None, store: str = "memory",
                 data_dir: Optional[str] = None, **config):
        names = node_names(nodes) if isinstance(nodes, int) else list(nodes)
        if len(set(names)) != len(names) or not all(isinstance(x, str) and x for x in names):
            raise ConfigError("node names must be distinct non-empty strings")
        if len(names) < n:
            raise ConfigError(f"N={n} replicas need at least {n} nodes; got {len(names)}. "
                              f"Use more nodes or a smaller n.")
        if store not in ("memory", "sqlite") or (store == "sqlite" and not data_dir):
            raise ConfigError("store is 'memory', or 'sqlite' with data_dir=... for the files")
        self.config = NodeConfig(n=n, r=r, w=w, vnodes=vnodes, **config)
        self.seed = seed
        self.sim = Simulator(seed, faults, wire_check=wire_check, trace=trace,
                             trace_limit=trace_limit)
        self.parts = parts
        self.store_kind, self.data_dir = store, data_dir
        self.history = History(self.config.cluster_key)
        self.hosts: dict[str, NodeHost] = {}
        self.stores: dict[str, Store] = {}
        self._clients: dict[str, _ClientEndpoint] = {}
        self._lb = self.sim.rng("load-balancer")
        self._skew = self.sim.rng("clock-skew")
        self._req = 0
        self.removed: set[str] = set()
        for name in names:
            self._add_host(name, members=names, seeds=names[:3])
        for name in names:
            self.hosts[name].boot()

    def __repr__(self) -> str:
        return (f"SimCluster(nodes={self.nodes}, n={self.config.n}, r={self.config.r}, "
                f"w={self.config.w}, seed={self.seed}, t={self.sim.now:.3f})")

    # -- nodes ---------------------------------------------------------------------------------

    def _add_host(self, name: str, members, seeds) -> NodeHost:
        if self.store_kind == "sqlite":
            import os
            store: Store = SqliteStore(os.path.join(self.data_dir, f"{name}.sqlite3"))
        else:
            store = MemoryStore()
        self.stores[name] = store
        skew = self.sim.faults.clock_offset_s(self._skew)

        def make(incarnation: int, name=name, store=store) -> Node:
            return Node(name, store, self.sim.rng(f"node/{name}/{incarnation}"), self.config,
                        members=members, seeds=seeds, parts=self.parts)

        host = NodeHost(self.sim, name, make, skew)
        self.hosts[name] = host
        self.sim.add_endpoint(name, host)
        return host

    @property
    def nodes(self) -> list[str]:
        """Every node that is part of the cluster (running or crashed), in order of creation."""
        return [n for n in self.hosts if n not in self.removed]

    def up(self) -> list[str]:
        return [n for n in self.nodes if self.hosts[n].alive]

    def node(self, name: str) -> Node:
        """The live node object (to inspect its state); ``ValueError`` if it is down."""
        host = self._require(name)
        if host.node is None:
            raise ConfigError(f"node {name} is down; restart it first (cluster.restart({name!r}))")
        return host.node

    def _require(self, name: str) -> NodeHost:
        if name not in self.hosts or name in self.removed:
            raise ConfigError(f"no node {name!r} in this cluster; nodes are {self.nodes}")
        return self.hosts[name]

    def crash(self, name: str) -> None:
        """Kill a node: its volatile state is lost, its store (the disk) is kept."""
        host = self._require(name)
        if host.alive:
            host.crash()

    def restart(self, name: str) -> None:
        """Bring a crashed node back from its store."""
        host = self._require(name)
        if not host.alive:
            host.boot()
            self.sim.trace.add(self.sim.now, "restart", name, detail=f"incarnation {host.incarnation}")

    def wipe(self, name: str) -> None:
        """Lose a node's disk (its store and hints) while it is down, as if replaced."""
        host = self._require(name)
        if host.alive:
            raise ConfigError(f"crash {name} before wiping its store")
        self.stores[name].wipe()
        self.sim.trace.add(self.sim.now, "wipe", name, detail="store wiped")

    def partition(self, *groups: Iterable[str], one_way: bool = False) -> None:
        """Split the network: nodes in different groups cannot reach each other. With
        ``one_way=True`` only messages from the first group to the others are lost."""
        self.sim.partition(self._partition_groups(groups), one_way=one_way)

    def heal(self) -> None:
        """Restore every link."""
        self.sim.heal()

    def add_node(self, name: str, seeds: Optional[Iterable[str]] = None) -> None:
        """Start a new node that joins through gossip with ``seeds`` (by default the first
        three nodes); it takes its keys from their old owners over the next rounds."""
        if not isinstance(name, str) or not name or name in self.hosts:
            raise ConfigError(f"{name!r} is not a new node name")
        seeds = list(seeds) if seeds is not None else self.nodes[:3]
        host = self._add_host(name, members=(), seeds=seeds)
        host.boot()
        self.sim.trace.add(self.sim.now, "join", name, detail=f"seeds {seeds}")

    def remove_node(self, name: str, timeout_s: float = 300.0) -> None:
        """Make a node leave for good: it hands its keys and hints to their new owners, says
        "left", and is then stopped. Runs the simulation until that is done."""
        from .messages import AdminLeave
        host = self._require(name)
        if not host.alive:
            raise ConfigError(f"{name} is down: restart it so it can hand off its data first")
        self.sim.trace.add(self.sim.now, "leave", name)
        host.step("admin leave", host.node.on_message, "admin", AdminLeave())
        finished = self.sim.run_until(self.sim.now + timeout_s,
                                      stop=lambda: host.node is None or host.node.left)
        if not finished:
            raise QuorumError("leave", name, 1, 0, True,
                              f"{name} could not hand off all its data in {timeout_s} s "
                              f"(are its keys' owners down?)")
        self.run_for(2 * self.config.gossip_interval_s)
        host.crash()
        self.removed.add(name)

    # -- time ----------------------------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        """Let virtual time pass: gossip, hinted handoff and anti-entropy do their work."""
        self.sim.run_for(seconds)

    @property
    def now(self) -> float:
        return self.sim.now

    # -- client plumbing -----------------------------------------------------------------------

    def _endpoint(self, name: str) -> _ClientEndpoint:
        addr = f"client:{name}"
        ep = self._clients.get(addr)
        if ep is None:
            ep = self._clients[addr] = _ClientEndpoint(self, addr)
            self.sim.add_endpoint(addr, ep, faulty=False)
        return ep

    def _start(self, client: Client, op: Operation) -> None:
        ep = self._endpoint(client.name)
        self._pick_via(op)
        self._req += 1
        op.req_id = f"{client.name}#{self._req}"
        op.started = self.sim.now
        op.record = self.history.start(client.name, op.kind, op.key, op.value, self.sim.now)
        ep.pending[op.req_id] = op
        msg = client_request(op.kind, op.req_id, op.key, op.value, op.context)
        if self.sim.trace.enabled:
            self.sim.trace.add(self.sim.now, "client_start", ep.name,
                               detail=f"{op.kind} {op.key!r} via {op.via}")
        self.sim.send(ep.name, op.via, msg)
        self.sim.schedule(client_timeout_s(self.config), lambda: self._timeout(ep, op))

    def _timeout(self, ep: _ClientEndpoint, op: Operation) -> None:
        if ep.pending.pop(op.req_id, None) is None:
            return
        self._finish(op, None, no_reply(op.kind, op.key, op.via, "down or unreachable"))

    def _finish(self, op: Operation, reply: Optional[ClientReply], error) -> None:
        if self.sim.trace.enabled:
            self.sim.trace.add(self.sim.now, "client_end", f"client:{op.client}",
                               detail=f"{op.kind} {op.key!r} -> " + (
                                   "ok" if error is None and reply.ok else
                                   type(error).__name__ if error else reply.error_kind))
        self._complete(op, reply, error)

    def wait(self, *ops: Operation, timeout_s: float = 600.0) -> list[Operation]:
        """Run the simulation until every operation has finished (they run concurrently)."""
        done = self.sim.run_until(self.sim.now + timeout_s, stop=lambda: all(o.done for o in ops))
        if not done and not all(o.done for o in ops):
            raise RuntimeError(f"operations still unfinished after {timeout_s} s of virtual time "
                               f"(seed={self.seed})")
        return list(ops)

    # -- looking inside ------------------------------------------------------------------------

    def replicas(self, key: str) -> dict[str, list[Versioned]]:
        """What each node of the key's preference list holds now (its own data, not hints),
        read straight from the stores. The ring is the one all current members form."""
        return {n: list(self.stores[n].get(key)) for n in self.preference_list(key)}

    def holders(self, key: str) -> dict[str, list[Versioned]]:
        """Every node that holds ``key`` in its own data, whether or not it should."""
        return {n: list(self.stores[n].get(key)) for n in self.nodes if key in self.stores[n]}

    def hints(self) -> dict[str, int]:
        """How many hinted replicas each node keeps for others."""
        return {n: self.stores[n].hint_count() for n in self.nodes}

    def trace_lines(self, last: Optional[int] = None) -> list[str]:
        lines = self.sim.trace.lines()
        return lines[-last:] if last else lines

    def shiviz(self) -> str:
        return self.sim.trace.shiviz()

    def settle(self, seconds: float = 60.0) -> None:
        """Heal, restart every crashed node and let the cluster converge."""
        self.heal()
        for name in self.nodes:
            self.restart(name)
        self.run_for(seconds)
