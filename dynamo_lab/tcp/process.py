"""One node process: the sans-I/O node driven by asyncio, with its transport and HTTP API.

:class:`NodeRuntime` is the TCP runtime's :class:`~dynamo_lab.runtime.Driver` (the simulator's
is :class:`~dynamo_lab.sim.simulator.NodeHost`): the same loop hands the node one input at a
time (a message, a timer, a client request) and carries out its effects:

* ``Send`` to a node id goes to the :class:`Transport`; ``Send`` to a client address
  (``"http:<n>"``) resolves the HTTP request waiting for that reply;
* ``SetTimer`` becomes ``loop.call_later`` (every handle kept, cancelled at shutdown);
* ``Note``, like every send, delivery, drop and timer, goes to the node's trace file when it
  has one (``trace_file``: JSON lines that ``TcpCluster.trace()`` merges into the simulator's
  trace format), and to the debug log.

The store is a :class:`SqliteStore` (``synchronous=FULL``) whose writes are committed in
groups (see "Group commit" on :class:`NodeRuntime`): one fsync for every input that arrived
during the previous one, and no effect of an input (an ack, a reply) leaves before the commit
of its group returned, so a write is on disk before any acknowledgement of it is sent. The
node's clock is ``time.time()`` (plus ``clock_skew_s``). The node runs on the event loop
thread, one input at a time; only a group's commit runs on a thread of its own.

A node's options (:class:`NodeOptions`) travel as one JSON file (``dynamo-lab node --options
FILE``, what ``TcpCluster`` writes); each option is one field there, which is also a flag of
``dynamo-lab node``. Its parts come by reference or as a description of code
(:mod:`dynamo_lab.shipping`), never pickled. :func:`serve` runs a node until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

from ..errors import ConfigError, DynamoError, ProtocolError
from ..faults import FaultConfig, LinkFaults
from ..messages import AdminLeave, ClientReply
from ..node import Node, NodeConfig
from ..runtime import Driver, client_request, client_timeout_s
from ..sim.trace import record_line
from ..storage import SqliteStore
from .framing import MAX_FRAME_BYTES, split_address
from .transport import ACCEPT_BACKLOG, Transport

CLIENT_PREFIX = "http:"
#: Environment variables that carry a node's secrets (never its command line: ``ps`` shows that,
#: nor its options file).
SECRET_ENV = "DYNAMO_LAB_SECRET"
TOKEN_ENV = "DYNAMO_LAB_TOKEN"
CLUSTER_KEY_ENV = "DYNAMO_LAB_CLUSTER_KEY"


# -- the options ------------------------------------------------------------------------------

def _opt(default: Any = MISSING, help: str = "", *, flag: str = "", kind: str = "",
         metavar: Optional[str] = None, cli: bool = True, secret: bool = False):
    """One option: its default, and how ``dynamo-lab node`` offers it (``cli=False``: only in
    the options file; ``secret``: neither in the file nor on the command line)."""
    if not kind:
        kind = {bool: "bool", int: "int", float: "float", str: "str", list: "list",
                dict: "dict"}.get(type(default), "str")
    meta = {"help": help, "flag": flag, "kind": kind, "metavar": metavar,
            "cli": cli and not secret, "secret": secret}
    if isinstance(default, (list, dict)):
        return field(default_factory=type(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class NodeOptions:
    """Everything a node process needs to start. See the module docstring; the secrets
    (``secret``, ``token``, the cluster key) come from the environment or ``--secret-file``."""
    node_id: str = _opt(help="the node's name, e.g. A", flag="--id")
    data_dir: str = _opt(help="where the store lives (DIR/ID.sqlite3)", metavar="DIR")
    host: str = _opt("127.0.0.1", "address to bind (default 127.0.0.1)")
    port: int = _opt(0, "peer port (default 0: the OS picks)")
    http_port: int = _opt(0, "HTTP port (default 0: the OS picks)")
    members: list = _opt([], "the initial ring (omit to join via --seeds)", metavar="A,B,C")
    seeds: list = _opt([], "nodes to gossip with first (name, or name=address)",
                       metavar="A=HOST:PORT,...")
    peers: dict = _opt({}, "addresses of other nodes", metavar="A=HOST:PORT,...")
    config: NodeConfig = _opt(NodeConfig(), "NodeConfig fields (flags --n --r --w --vnodes --set)",
                              kind="config")
    seed: int = _opt(0, "seed of the node's random choices")
    cluster: str = _opt("dynamo-lab", "cluster name checked in every hello (nodes of another "
                                      "cluster are refused)")
    parts: Any = _opt(None, "the node's parts: module:NAME or path/to/file.py:NAME naming a "
                            "dynamo_lab.Parts or a function returning one", kind="parts",
                      metavar="REF")
    faults: FaultConfig = _opt(FaultConfig.none(), "the fault model (FaultConfig fields)",
                               kind="faults", cli=False)
    blocked: list = _opt([], "links cut now, [[src, dst], ...]", kind="links", cli=False)
    clock_skew_s: float = _opt(0.0, "this node's clock runs S seconds off", metavar="S")
    trace_file: str = _opt("", "append every send, delivery, drop, timer and note to FILE "
                               "(JSON lines)", metavar="FILE")
    ready_file: str = _opt("", "write the ports as JSON here once ready", metavar="FILE")
    port_fallback: bool = _opt(False, "if --port/--http-port is taken, take a port the OS picks")
    exit_with_parent: bool = _opt(False, "stop when the process that started this one dies")
    hello_timeout_s: float = _opt(5.0, "close a peer connection that says nothing for S seconds",
                                  flag="--hello-timeout", metavar="S")
    max_frame_bytes: int = _opt(MAX_FRAME_BYTES, "largest frame a peer may send")
    max_inflight: int = _opt(16, "client requests this node coordinates at once; more get a "
                                 "fast 503 'overloaded' instead of a queue", metavar="N")
    http_idle_timeout_s: float = _opt(10.0, "close an HTTP connection with no complete request "
                                            "after S seconds", metavar="S")
    http_body_timeout_s: float = _opt(10.0, "a body that has not arrived after S seconds: 408",
                                      metavar="S")
    max_http_connections: int = _opt(0, "0: from the descriptor limit", metavar="N")
    max_peer_connections: int = _opt(0, "inbound peer connections; 0: from the descriptor limit",
                                     metavar="N")
    log_level: str = _opt("INFO", "DEBUG, INFO, WARNING or ERROR")
    secret: str = _opt("", secret=True)        # peers prove they hold it
    token: str = _opt("", secret=True)         # every admin request must carry it

    @property
    def store_path(self) -> Path:
        return Path(self.data_dir) / f"{self.node_id}.sqlite3"

    def to_json(self) -> dict:
        """The options file's content (no secrets)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.metadata["secret"]:
                continue
            out[f.name] = v.to_json() if f.metadata["kind"] in ("config", "faults") else v
        return out

    @classmethod
    def from_json(cls, obj: Any, *, secret: str = "",
                  environ: Optional[dict] = None) -> "NodeOptions":
        """Options from :meth:`to_json`'s form (any subset, over the defaults), checked; the
        token and cluster key are read from ``environ``. :class:`ConfigError` says what is
        wrong."""
        known = {f.name: f for f in fields(cls) if not f.metadata["secret"]}
        if not isinstance(obj, dict):
            raise ConfigError(f"node options are a JSON object; got {type(obj).__name__}")
        unknown = sorted(set(obj) - set(known))
        if unknown:
            raise ConfigError(f"unknown node options {unknown}; the options are {sorted(known)} "
                              f"(secrets never go in the file: set {SECRET_ENV})")
        for name in ("node_id", "data_dir"):
            if not obj.get(name):
                raise ConfigError(f"node options need {name} (--{name.replace('_', '-')})"
                                  if name != "node_id" else "node options need node_id (--id)")
        values = {name: _checked(known[name], v) for name, v in obj.items()}
        environ = os.environ if environ is None else environ
        peers = dict(values.get("peers", {}))
        seeds = []
        for item in values.get("seeds", []):
            name, sep, address = item.partition("=")
            seeds.append(name)
            if sep:
                peers[name] = _address(address, "seeds")
        values["seeds"], values["peers"] = seeds, peers
        if not values.get("members") and not seeds:
            values["members"] = [values["node_id"]]    # a cluster of one, which others can join
        cfg = values.get("config", NodeConfig())
        values["config"] = replace(cfg, cluster_key=environ.get(CLUSTER_KEY_ENV, cfg.cluster_key))
        return cls(**values, secret=secret, token=environ.get(TOKEN_ENV, ""))

    # -- the command line: one flag per option ---------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The flags of ``dynamo-lab node``: ``--options FILE``, then one per option."""
        parser.add_argument("--options", metavar="FILE",
                            help="the node's options as one JSON file (what TcpCluster writes); "
                                 "flags given beside it override its fields")
        parser.add_argument("--secret-file", metavar="FILE",
                            help=f"file whose first line is the cluster's secret, which peers "
                                 f"prove they hold (default: ${SECRET_ENV}; never pass the "
                                 f"secret itself)")
        S = argparse.SUPPRESS           # a flag not given does not override the file
        for f in fields(cls):
            m = f.metadata
            if not m["cli"]:
                continue
            flag = m["flag"] or "--" + f.name.replace("_", "-")
            kw = {"help": m["help"], "dest": f.name, "default": S}
            if m["kind"] == "bool":
                parser.add_argument(flag, action="store_true", **kw)
            elif m["kind"] == "config":
                for name, what in (("n", "replicas per key, N"), ("r", "read quorum, R"),
                                   ("w", "write quorum, W"), ("vnodes", "virtual nodes")):
                    parser.add_argument(f"--{name}", type=int, help=what, default=S)
                parser.add_argument("--set", action="append", metavar="NAME=VALUE", default=S,
                                    help="one NodeConfig field (repeatable)")
            else:
                kw["type"] = {"int": int, "float": float}.get(m["kind"], str)
                parser.add_argument(flag, metavar=m["metavar"], **kw)

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Optional[dict] = None) -> "NodeOptions":
        """The options of ``dynamo-lab node``: the ``--options`` file, then the flags."""
        obj: dict = {}
        if getattr(args, "options", None):
            try:
                obj = json.loads(Path(args.options).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read the options file {args.options}: {exc}") from None
            if not isinstance(obj, dict):
                raise ConfigError(f"the options file {args.options} must hold a JSON object")
        given = vars(args)
        settings = config_settings(given.get("set", []))
        settings.update({k: given[k] for k in ("n", "r", "w", "vnodes") if k in given})
        if settings:
            obj["config"] = {**obj.get("config", {}), **settings}
        for f in fields(cls):
            if f.metadata["cli"] and f.metadata["kind"] != "config" and f.name in given:
                text = given[f.name]
                kind = f.metadata["kind"]
                obj[f.name] = ([x for x in (y.strip() for y in text.split(",")) if x]
                               if kind == "list" else _book(text) if kind == "dict" else text)
        environ = os.environ if environ is None else environ
        return cls.from_json(obj, secret=read_secret(getattr(args, "secret_file", None),
                                                     environ), environ=environ)


def _checked(f, v: Any) -> Any:
    """An option's value from JSON, checked against its kind."""
    kind, name = f.metadata["kind"], f.name
    ok = {"str": isinstance(v, str), "bool": isinstance(v, bool),
          "int": isinstance(v, int) and not isinstance(v, bool),
          "float": isinstance(v, (int, float)) and not isinstance(v, bool),
          "list": isinstance(v, list) and all(isinstance(x, str) for x in v),
          "dict": isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
          "links": isinstance(v, list) and all(isinstance(x, list) and len(x) == 2 and all(
              isinstance(y, str) for y in x) for x in v),
          "parts": v is None or isinstance(v, (str, dict)),
          "config": isinstance(v, dict), "faults": isinstance(v, dict)}[kind]
    if not ok:
        raise ConfigError(f"node option {name} must be {kind}-valued; got {v!r}")
    if kind == "config":
        try:
            return NodeConfig(**v)
        except TypeError as exc:
            raise ConfigError(f"config: {exc}") from None
    if kind == "faults":
        return FaultConfig.from_json(v)
    if kind == "dict":
        return {k: _address(a, name) for k, a in v.items()}
    if name == "max_inflight" and v < 1:
        raise ConfigError(f"max_inflight must be a whole number >= 1, got {v!r}")
    if name == "log_level" and v.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log_level is DEBUG, INFO, WARNING or ERROR; got {v!r}")
    return float(v) if kind == "float" else v


def _address(address: str, what: str) -> str:
    try:
        split_address(address)
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    return address


def _book(text: str) -> dict[str, str]:
    """``"A=127.0.0.1:7001,B=127.0.0.1:7002"`` -> a mapping."""
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, sep, address = item.partition("=")
        if not name or not sep:
            raise ConfigError(f"expected NAME=HOST:PORT entries separated by commas; got {item!r}")
        out[name] = address
    return out


def config_settings(items: list[str]) -> dict:
    """``["gossip_interval_s=0.5", "read_repair=false"]`` -> NodeConfig keyword arguments
    (the ``--set`` flags)."""
    known = {f.name for f in fields(NodeConfig)} - {"n", "r", "w", "vnodes", "cluster_key"}
    out = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in known:
            raise ConfigError(f"--set takes NAME=VALUE with NAME one of {sorted(known)}; "
                              f"got {item!r}")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


def read_secret(path: Optional[str], environ: dict) -> str:
    """The cluster's secret: the first line of ``path``, else ``$DYNAMO_LAB_SECRET``. Never
    an argument: every user of the machine can read a command line in ``ps``."""
    how = (f"put it in a file only you can read (umask 077; echo SECRET > FILE) and pass "
           f"--secret-file FILE, or set {SECRET_ENV}; every node of a cluster needs the same one")
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                secret = fh.readline().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --secret-file {path}: {exc.strerror or exc}") from None
        if not secret:
            raise ConfigError(f"--secret-file {path} is empty; {how}")
        return secret
    secret = environ.get(SECRET_ENV, "").strip()
    if not secret:
        raise ConfigError(f"a node needs the cluster's secret to authenticate its peers: {how}")
    return secret


# -- the runtime ------------------------------------------------------------------------------

class NodeRuntime(Driver):
    """Runs one :class:`Node` on the running asyncio loop. See the module docstring.

    **Group commit.** The node writes to its store as it handles an input; an effect of that
    input may leave only once those writes are on disk. Instead of one commit (one fsync)
    per input, inputs are handled in groups:

    1. an input that arrives while no commit runs is handled at once: its writes join the
       store's open transaction, its effects are held (:meth:`apply`);
    2. at the end of the event loop's turn (every input ready in that turn has joined), the
       group is committed on the commit thread (:meth:`_flush`); a group that wrote nothing
       has nothing to wait for, and its effects leave at once;
    3. every input that arrives while a commit runs waits, in arrival order (:meth:`_input`),
       and the node's store is left alone meanwhile;
    4. when the commit returns, the group's effects leave; then the inputs that waited are
       handled, and they are the next group (:meth:`_committed`).

    The node never knows: it is the same sans-I/O node, handed one input at a time. A failed
    commit drops its group's effects (nothing of it was acknowledged) and restarts the node
    over its store, as a crash would, so that its memory matches its disk again.
    """

    def __init__(self, opts: NodeOptions, log: Optional[logging.Logger] = None):
        self.opts = opts
        self.name = opts.node_id
        self.log = log or logging.getLogger(f"dynamo_lab.node.{opts.node_id}")
        self.store: Optional[SqliteStore] = None
        if not opts.secret:
            raise ConfigError(f"node {opts.node_id} needs the cluster's secret to talk to its "
                              f"peers: set {SECRET_ENV} or pass --secret-file FILE")
        self.faults = LinkFaults(opts.faults, random.Random(f"{opts.seed}/{opts.node_id}/network"))
        self.faults.blocked = {(a, b) for a, b in opts.blocked}
        self.transport = Transport(
            opts.node_id, opts.cluster, self.deliver, secret=opts.secret,
            addresses=self._address_of,
            address_book={k: v for k, v in opts.peers.items() if k != opts.node_id},
            faults=self.faults, on_drop=self._dropped, log=self.log,
            max_frame_bytes=opts.max_frame_bytes, hello_timeout_s=opts.hello_timeout_s,
            seed=opts.seed)
        self.http_address = ""
        self.started_at = 0.0
        self._timers: set[asyncio.TimerHandle] = set()
        self._waiting: dict[str, asyncio.Future] = {}
        self._clients: dict[str, str] = {}     # client address -> its name in the trace
        self._client_seq = 0
        self._trace_out = None
        self._http_runner = None
        self._parent = 0
        self.on_orphaned = None      # called when exit_with_parent sees the parent gone
        self.errors = 0
        self.http_site = None
        http_cap, peer_cap = descriptor_budget()
        opts.max_http_connections = opts.max_http_connections or http_cap
        opts.max_peer_connections = opts.max_peer_connections or peer_cap
        self.transport.max_inbound = opts.max_peer_connections
        self.inflight = 0            # client requests admitted and not yet answered
        self.overloaded = 0          # client requests refused because inflight was at the limit
        self._parts = None
        # group commit (see the class docstring)
        self._held: list = []                       # effects of the open group
        self._next_group: deque = deque()           # inputs that arrived during a commit
        self._flush_soon: Optional[asyncio.Handle] = None
        self._committing: Optional[asyncio.Future] = None
        self._commit_thread = ThreadPoolExecutor(1, thread_name_prefix=f"commit-{self.name}")
        self.commits = {"groups": 0, "writes": 0, "largest": 0, "failed": 0}
        self.event_loop = ""                          # set when it starts: "uvloop" or "asyncio"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, http: bool = True) -> None:
        """Open the store, bind both ports, start the node, then accept connections."""
        from ..shipping import build_parts
        opts = self.opts
        self.event_loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        self._parts = build_parts(opts.parts) if opts.parts else None
        if opts.trace_file:
            self._trace_out = open(opts.trace_file, "a", encoding="utf-8", buffering=1)
        self.store = SqliteStore(opts.store_path, group_commit=True)
        try:
            address = await self.transport.listen(opts.host, opts.port)
        except OSError as exc:
            if not (opts.port and opts.port_fallback):
                raise
            self.log.warning("port %d is taken (%s); taking one the OS picks", opts.port, exc)
            address = await self.transport.listen(opts.host, 0)
        self.started_at = time.time()
        generation = int(self.store.get_meta("generation") or 0) + 1
        if generation > 1:
            self.record("restart", detail=f"generation {generation}")
        self.boot(self._new_node())
        await self.transport.start_serving()
        if http:
            from .http_api import start_http
            try:
                self._http_runner, self.http_address = await start_http(self, opts.host,
                                                                        opts.http_port)
            except OSError as exc:
                if not (opts.http_port and opts.port_fallback):
                    raise
                self.log.warning("HTTP port %d is taken (%s); taking one the OS picks",
                                 opts.http_port, exc)
                self._http_runner, self.http_address = await start_http(self, opts.host, 0)
        if opts.exit_with_parent:
            self._parent = os.getppid()
            self._watch_parent()
        self.log.info("node %s up: peers at %s, HTTP at %s, generation %d, store %s",
                      opts.node_id, address, self.http_address or "-", generation, opts.store_path)

    def _new_node(self) -> Node:
        """A node over this runtime's store (a new one, or the same disk after a restart)."""
        opts, address = self.opts, self.transport.address
        generation = int(self.store.get_meta("generation") or 0) + 1   # what start() takes
        rng = random.Random(f"{opts.seed}/node/{opts.node_id}/{generation}")
        members: Any = {m: opts.peers.get(m, "") for m in opts.members}
        if opts.node_id in members:
            members[opts.node_id] = address
        return Node(opts.node_id, self.store, rng, opts.config, members=members,
                    seeds=opts.seeds, address=address, parts=self._parts)

    async def close(self) -> None:
        """Stop serving, cancel every timer and task, fail waiting requests, commit the last
        group and close the store."""
        if self._http_runner is not None:
            await self._http_runner.cleanup()     # requests in flight finish (commits go on)
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for fut in self._waiting.values():
            if not fut.done():
                fut.cancel()
        await self.transport.close()
        self.halt()                               # nothing more is handled, nothing leaves
        self._next_group.clear()
        await self.store_free()
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        self._held.clear()
        if self.store is not None:
            try:
                self.store.commit()               # what was written stays written
            except Exception as exc:
                self.log.error("the last commit failed: %s", exc)
            self.store.close()
            self.store = None
        self._commit_thread.shutdown(wait=True)
        if self._trace_out is not None:
            self._trace_out.close()
            self._trace_out = None

    def _watch_parent(self) -> None:
        """A safety net for test clusters: if the parent dies without stopping this node
        (killed itself), stop rather than run forever."""
        if os.getppid() != self._parent:
            self.log.warning("parent process %d is gone; stopping", self._parent)
            if self.on_orphaned is not None:
                self.on_orphaned()
            return
        self.call_later(0.5, self._watch_parent)

    # -- group commit (see the class docstring) -------------------------------------------

    def deliver(self, src: str, msg: Any, carried: Any = None) -> bool:
        return self._input(partial(self._deliver_now, src, msg, carried))

    def fire(self, incarnation: int, timer: Any) -> None:
        self._input(partial(Driver.fire, self, incarnation, timer))

    def _deliver_now(self, src: str, msg: Any, carried: Any) -> bool:
        ok = Driver.deliver(self, src, msg, carried)
        if not ok:
            self._answer_failed(src, msg)
        return ok

    def _input(self, handle: Callable[[], Any]) -> Any:
        """Hand the node one input now, or, while a commit runs, once it returned (the input
        is then part of the next group)."""
        if self._committing is not None:
            self._next_group.append(handle)
            return True
        return handle()

    def apply(self, effects: list) -> None:
        """Hold the effects until the group's writes are committed (:meth:`_flush`)."""
        self._held.extend(effects)
        if self._flush_soon is None and self._committing is None:
            self._flush_soon = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """End the open group: commit its writes on the commit thread, or, when it wrote
        nothing, let its effects leave now."""
        self._flush_soon = None
        held, self._held = self._held, []
        if self.store is None:
            return
        if not self.store.pending:
            Driver.apply(self, held)
            return
        self._committing = asyncio.get_running_loop().run_in_executor(
            self._commit_thread, self.store.commit)
        self._committing.add_done_callback(partial(self._committed, held))

    def _committed(self, held: list, done: asyncio.Future) -> None:
        """The commit of a group returned: its effects leave (or, if it failed, are dropped
        and the node restarts over its store); then the inputs that waited are handled."""
        self._committing = None
        failure = done.exception()
        try:
            self._group_done(held, failure, done.result() if failure is None else 0)
        finally:                      # whatever happened, the inputs that waited go on
            waiting, self._next_group = self._next_group, deque()
            for handle in waiting:
                handle()
            if self._held and self._flush_soon is None:     # effects of a restart, say
                self._flush_soon = asyncio.get_running_loop().call_soon(self._flush)

    def _group_done(self, held: list, failure: Optional[BaseException], writes: int) -> None:
        """Let a committed group's effects go, or carry out a failed commit's restart."""
        if failure is None:
            c = self.commits
            c["groups"] += 1
            c["writes"] += writes
            c["largest"] = max(c["largest"], writes)
            if self.node is not None:             # None: closing, nothing leaves any more
                Driver.apply(self, held)
        elif self.node is not None:
            self.commits["failed"] += 1
            self.errors += 1
            self.log.error("node %s: a commit failed (%s); the %d effects of its group are "
                           "dropped and the node restarts from its store", self.name, failure,
                           len(held))
            self.halt()
            self._forget_waiting("the node's commit failed and it restarted from its store; "
                                 "see its log")
            try:
                self.boot(self._new_node())
            except Exception:
                self.log.exception("node %s cannot restart over its store; it stays down",
                                   self.name)

    async def store_free(self) -> None:
        """Return when no commit runs: the store is then the event loop's until the end of
        this turn (what reads it outside the node, like ``/status``, waits for this)."""
        while self._committing is not None:
            await asyncio.wait({self._committing})

    def _answer_failed(self, src: str, msg: Any) -> None:
        """A client's request that the node could not take (down, or it failed on it) is
        answered at once rather than left to time out."""
        fut = self._waiting.get(src)
        if fut is not None and not fut.done():
            fut.set_exception(_NoAnswer("the node is down" if self.node is None else
                                        "the node failed on this request; see its log"))

    def _forget_waiting(self, why: str) -> None:
        """The node restarted: the client requests it was handling will never be answered by
        it; each gets an error now (a write among them may have been applied elsewhere)."""
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(_NoAnswer(why, may_have_applied=True))

    # -- the Driver hooks -----------------------------------------------------------------

    def local_time(self) -> float:
        return time.time() + self.opts.clock_skew_s

    def transmit(self, dst: str, msg: Any) -> None:
        self.record("send", dst, msg)
        if not dst.startswith(CLIENT_PREFIX):
            self.transport.send(dst, msg)
            return
        fut = self._waiting.pop(dst, None)
        if fut is not None and not fut.done():
            fut.set_result(msg)
            self._trace("deliver", dst, self.name, msg)

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        box: list = []

        def run() -> None:
            self._timers.discard(box[0])
            callback()
        box.append(asyncio.get_running_loop().call_later(delay_s, run))
        self._timers.add(box[0])

    def record(self, kind: str, peer: str = "", msg: Any = None, detail: str = "",
               carried: Any = None) -> None:
        if kind == "note":
            self.log.debug("note: %s", detail)
        self._trace(kind, self.name, peer, msg, detail)

    def failed(self, what: str, exc: Exception) -> None:
        self.errors += 1
        if isinstance(exc, ProtocolError):
            self.log.warning("refused %s: %s", what, exc)
        else:  # a bug in a node part: keep serving, say so loudly
            self.log.exception("node %s failed handling %s", self.opts.node_id, what)

    def _dropped(self, src: str, dst: str, msg: Any, why: str) -> None:
        self._trace("drop", src, dst, msg, why)

    def _trace(self, kind: str, node: str, peer: str, msg: Any, detail: str = "") -> None:
        """One line of the trace file: the simulator's trace event, with the wall-clock time."""
        if self._trace_out is None:
            return
        self._trace_out.write(record_line(time.time(), kind, self._clients.get(node, node),
                                          self._clients.get(peer, peer), msg, detail))

    def _address_of(self, node: str) -> str:
        return self.node.membership.address_of(node) if self.node is not None else ""

    # -- services for the HTTP API --------------------------------------------------------

    async def request(self, kind: str, key: Any, value: Any = None,
                      context: Optional[str] = None, client: str = "") -> ClientReply:
        """Run one client request through the node and return its reply. A coordinator that
        does not answer in time gives a quorum-failure reply (``got=0``). ``client`` names
        the client in the trace.

        Admission control: with ``max_inflight`` requests already admitted, the request is
        refused at once (``error_kind="overloaded"``, nothing applied) rather than queued:
        past its capacity a node that queues work finishes it too late to be of use, so its
        latency explodes and its goodput falls; one that refuses early keeps serving what it
        admitted in time, and the client may retry elsewhere or later. Cancelling the
        caller (an HTTP client that hung up) frees the slot at once."""
        refused = self.refusal(kind, key)
        if refused is not None:
            return refused
        self.inflight += 1
        try:
            return await self._admitted(kind, key, value, context, client)
        finally:
            self.inflight -= 1

    def refusal(self, kind: str, key: Any) -> Optional[ClientReply]:
        """The "overloaded" reply if this node is at its ``max_inflight`` now, else None. The
        HTTP API asks before it even reads a request's body: a refusal must cost little."""
        if self.inflight < self.opts.max_inflight:
            return None
        self.overloaded += 1
        return ClientReply("", kind, str(key), False, coordinator=self.opts.node_id,
                           error_kind="overloaded",
                           error=f"node {self.opts.node_id} is overloaded ({self.inflight} "
                                 f"requests in flight, its limit); nothing was applied: retry "
                                 f"after a short pause or ask another node")

    async def _admitted(self, kind: str, key: Any, value: Any, context: Optional[str],
                        client_name: str) -> ClientReply:
        self._client_seq += 1
        # The generation makes the request id (and so the write id) unique across restarts.
        gen = self.node.membership.mine.generation if self.node is not None else 0
        client = f"{CLIENT_PREFIX}{gen}.{self._client_seq}"
        req_id = f"{client}#{self._client_seq}"
        msg = client_request(kind, req_id, key, value, context)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[client] = fut
        self._clients[client] = f"client:{client_name or 'http'}"
        try:
            self._trace("send", client, self.name, msg)
            self.deliver(client, msg)       # a failure answers fut at once (_answer_failed)
            return await asyncio.wait_for(fut, client_timeout_s(self.opts.config))
        except _NoAnswer as exc:
            return ClientReply(req_id, kind, str(key), False, coordinator=self.opts.node_id,
                               error_kind="internal", error=str(exc),
                               may_have_applied=exc.may_have_applied and kind != "get")
        except asyncio.TimeoutError:
            return ClientReply(req_id, kind, str(key), False, coordinator=self.opts.node_id,
                               error_kind="quorum", error="no reply from the coordinator in time",
                               may_have_applied=kind != "get")
        finally:
            self._waiting.pop(client, None)
            self._clients.pop(client, None)

    def leave(self) -> None:
        """Start leaving the ring for good (hand off every key and hint, then say "left")."""
        self._input(lambda: self.node is not None and self.step(
            "admin leave", self.node.on_message, "admin", AdminLeave()))

    def set_drop(self, probability: float, peers: list[str], seed: Optional[int]) -> None:
        """Lose ``probability`` of the messages sent (to ``peers`` only, when given)."""
        self.faults.config = replace(self.faults.config, drop=probability)
        self.faults.faulty = set(peers) | {self.name} if peers else None
        if seed is not None:
            self.faults.rng = random.Random(f"{seed}/{self.name}/network")

    def heal(self) -> None:
        """Restore every link and the fault model this node started with."""
        self.faults.heal()
        self.faults.config, self.faults.faulty = self.opts.faults, None

    def status(self) -> dict:
        out = self.node.status() if self.node is not None else {"node": self.opts.node_id}
        out["pid"] = os.getpid()
        out["http"] = self.http_address
        out["uptime_s"] = round(time.time() - self.started_at, 3)
        out["transport"] = self.transport.to_json()
        out["errors"] = self.errors
        out["admission"] = {"inflight": self.inflight, "max_inflight": self.opts.max_inflight,
                            "overloaded": self.overloaded}
        out["left"] = bool(self.node is not None and self.node.left)
        out["parts"] = self.opts.parts
        out["commits"] = dict(self.commits)
        out["event_loop"] = self.event_loop        # "uvloop" or "asyncio"
        return out


class _NoAnswer(Exception):
    """Why a client request will get no answer from the node (it is turned into a reply)."""

    def __init__(self, why: str, may_have_applied: bool = False):
        super().__init__(why)
        self.may_have_applied = may_have_applied


#: The interpreter's thread switch interval in a node process (see :func:`run`).
COMMIT_SWITCH_INTERVAL_S = 0.0005

#: Descriptors kept free for SQLite, logs and outbound peer links.
_FD_RESERVE = 64


def raise_descriptor_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (as Go programs do;
    a laptop's default soft limit is often 256) and return the soft limit now in force."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def descriptor_budget() -> tuple[int, int]:
    """``(HTTP connections, inbound peer connections)`` this process can hold open: three
    quarters and one quarter of its descriptor limit, less a reserve, so that a flood of
    idle connections meets a cap before it meets ``EMFILE``."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        soft = 1024
    else:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft == resource.RLIM_INFINITY or soft <= 0:
            soft = 65536
    usable = max(32, min(soft, 65536) - _FD_RESERVE - 2 * ACCEPT_BACKLOG)
    return max(16, usable * 3 // 4), max(8, usable // 4)


class RepeatFilter(logging.Filter):
    """Let at most ``burst`` records with the same logger and message template through per
    ``window_s``; the first one after a quiet spell says how many were held back. A flood
    of one failure (an ``accept()`` out of descriptors, a peer refused again and again)
    thus costs a few lines a minute, not megabytes."""

    def __init__(self, burst: int = 5, window_s: float = 10.0, clock=time.monotonic):
        super().__init__()
        self.burst, self.window_s, self.clock = burst, window_s, clock
        self._seen: dict[tuple, list] = {}       # key -> [window start, count, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.window_s:
            held = entry[2] if entry else 0
            self._seen[key] = [now, 1, 0]
            if len(self._seen) > 10_000:           # forget old keys; never grow without bound
                self._seen = {key: self._seen[key]}
            if held:
                record.msg = f"{record.msg} [{held} more like this held back]"
            return True
        entry[1] += 1
        if entry[1] <= self.burst:
            return True
        entry[2] += 1
        return False


def write_ready_file(path: str, info: dict) -> None:
    """Write ``info`` as JSON atomically (a reader never sees half a file)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    os.replace(tmp, path)


async def serve(opts: NodeOptions) -> int:
    """Run a node until SIGTERM or SIGINT. Reports readiness on the first stdout line
    (``READY {json}``) and in ``opts.ready_file``. Returns the process exit code."""
    runtime = NodeRuntime(opts)
    stop = asyncio.Event()
    runtime.on_orphaned = stop.set
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    try:
        await runtime.start()
    except (OSError, DynamoError) as exc:   # a port taken, a store that is not ours...
        runtime.log.error("node %s cannot start: %s", opts.node_id, exc)
        await runtime.close()
        return 1
    info = {"node": opts.node_id, "pid": os.getpid(), "address": runtime.transport.address,
            "http": runtime.http_address, "generation": runtime.node.membership.mine.generation}
    if opts.ready_file:
        write_ready_file(opts.ready_file, info)
    print("READY " + json.dumps(info), flush=True)
    try:
        await stop.wait()
    finally:
        runtime.log.info("node %s stopping", opts.node_id)
        await runtime.close()
    return 0


def run(opts: NodeOptions) -> int:
    """Configure logging to stderr and :func:`serve` the node (blocking)."""
    logging.basicConfig(level=getattr(logging, opts.log_level.upper(), logging.INFO),
                        stream=sys.stderr,
                        format=f"%(asctime)s {opts.node_id} %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatFilter())
    raise_descriptor_limit()
    # The commit thread needs the GIL back once its fsync returns; with the default switch
    # interval (5 ms) a busy event loop would keep it waiting that long on every commit, and
    # every effect of the group with it.
    sys.setswitchinterval(COMMIT_SWITCH_INTERVAL_S)
    return event_loop_runner()(serve(opts))


def event_loop_runner() -> Callable[[Any], Any]:
    """``uvloop.run`` where uvloop is installed (a dependency on Linux and macOS: its event
    loop in C took a fifth off a node's CPU per put), else ``asyncio.run``."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run
