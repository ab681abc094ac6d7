"""One node process: the sans-I/O node driven by asyncio, with its transport and HTTP API.

:class:`NodeRuntime` is to the TCP world what :class:`dynamo_lab.sim.simulator.NodeHost` is to
the simulator: it hands the node one input at a time (a message, a timer, a client request)
with the current time and carries out the effects it returns:

* ``Send`` to a node id goes to the :class:`Transport`; ``Send`` to a client address
  (``"http:<n>"``) resolves the HTTP request waiting for that reply;
* ``SetTimer`` becomes ``loop.call_later`` (every handle kept, cancelled at shutdown);
* ``Note`` becomes a debug log line.

The store is a :class:`SqliteStore` whose every write is committed (``synchronous=FULL``)
during the node's call, so it is on disk before any acknowledgement that follows it is sent.
The node's clock is ``time.time()``. Everything runs on one event loop thread, so the node
never sees two inputs at once.

:func:`serve` runs a node until SIGTERM/SIGINT; the ``dynamo-lab node`` command calls it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError, DynamoError, ProtocolError
from ..messages import (AdminLeave, ClientDelete, ClientGet, ClientPut, ClientReply, Note, Send,
                        SetTimer)
from ..node import Node, NodeConfig
from ..storage import SqliteStore
from .framing import MAX_FRAME_BYTES
from .transport import ACCEPT_BACKLOG, FaultRules, Transport

CLIENT_PREFIX = "http:"
#: Environment variables that carry a node's secrets (never its command line: ``ps`` shows that).
SECRET_ENV = "DYNAMO_LAB_SECRET"
TOKEN_ENV = "DYNAMO_LAB_TOKEN"
CLUSTER_KEY_ENV = "DYNAMO_LAB_CLUSTER_KEY"


@dataclass
class NodeOptions:
    """Everything a node process needs to start (what ``dynamo-lab node`` parses)."""
    node_id: str
    data_dir: str
    host: str = "127.0.0.1"
    port: int = 0
    http_port: int = 0
    members: list[str] = field(default_factory=list)   # the initial ring; empty: join via seeds
    seeds: list[str] = field(default_factory=list)     # node ids to gossip with first
    peers: dict[str, str] = field(default_factory=dict)  # address book: node id -> HOST:PORT
    config: NodeConfig = field(default_factory=NodeConfig)
    seed: int = 0
    cluster: str = "dynamo-lab"                        # names the cluster in every hello
    secret: str = ""                                   # peers prove they hold it (never argv)
    token: str = ""                                    # every admin request must carry it
    faults: dict = field(default_factory=dict)         # FaultRules.to_json() form
    ready_file: Optional[str] = None
    port_fallback: bool = False      # if the given port is taken, take one the OS picks
    exit_with_parent: bool = False   # stop when the process that started this one dies
    hello_timeout_s: float = 5.0
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_inflight: int = 16           # client requests this node coordinates at once; beyond: 503
    http_idle_timeout_s: float = 10.0    # close an HTTP connection with no complete request
    http_body_timeout_s: float = 10.0    # a body that has not arrived by then: 408
    max_http_connections: int = 0        # 0: from the descriptor limit (descriptor_budget)
    max_peer_connections: int = 0        # inbound peer connections; 0: from the limit too

    @property
    def store_path(self) -> Path:
        return Path(self.data_dir) / f"{self.node_id}.sqlite3"


class NodeRuntime:
    """Runs one :class:`Node` on the running asyncio loop. See the module docstring."""

    def __init__(self, opts: NodeOptions, log: Optional[logging.Logger] = None):
        self.opts = opts
        self.log = log or logging.getLogger(f"dynamo_lab.node.{opts.node_id}")
        self.store: Optional[SqliteStore] = None
        self.node: Optional[Node] = None
        self.rules = FaultRules(opts.seed)
        self.rules.load_json(opts.faults)
        if not opts.secret:
            raise ConfigError(f"node {opts.node_id} needs the cluster's secret to talk to its "
                              f"peers: set {SECRET_ENV} or pass --secret-file FILE")
        self.transport = Transport(
            opts.node_id, opts.cluster, self._deliver, secret=opts.secret,
            addresses=self._address_of,
            address_book={k: v for k, v in opts.peers.items() if k != opts.node_id},
            rules=self.rules, log=self.log, max_frame_bytes=opts.max_frame_bytes,
            hello_timeout_s=opts.hello_timeout_s, seed=opts.seed)
        self.http_address = ""
        self.started_at = 0.0
        self._timers: set[asyncio.TimerHandle] = set()
        self._waiting: dict[str, asyncio.Future] = {}
        self._client_seq = 0
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

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, http: bool = True) -> None:
        """Open the store, bind both ports, start the node, then accept connections."""
        opts = self.opts
        self.store = SqliteStore(opts.store_path)
        try:
            address = await self.transport.listen(opts.host, opts.port)
        except OSError as exc:
            if not (opts.port and opts.port_fallback):
                raise
            self.log.warning("port %d is taken (%s); taking one the OS picks", opts.port, exc)
            address = await self.transport.listen(opts.host, 0)
        generation = int(self.store.get_meta("generation") or 0) + 1
        rng = random.Random(f"{opts.seed}/node/{opts.node_id}/{generation}")
        members: Any = {m: opts.peers.get(m, "") for m in opts.members}
        if opts.node_id in members:
            members[opts.node_id] = address
        self.node = Node(opts.node_id, self.store, rng, opts.config, members=members,
                         seeds=opts.seeds, address=address)
        self.started_at = time.time()
        self._apply(self.node.start(self.started_at))
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

    async def close(self) -> None:
        """Stop serving, cancel every timer and task, fail waiting requests, close the store."""
        if self._http_runner is not None:
            await self._http_runner.cleanup()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for fut in self._waiting.values():
            if not fut.done():
                fut.cancel()
        await self.transport.close()
        if self.store is not None:
            self.store.close()
            self.store = None
        self.node = None

    def _watch_parent(self) -> None:
        """A safety net for test clusters: if the parent dies without stopping this node
        (killed itself), stop rather than run forever."""
        if os.getppid() != self._parent:
            self.log.warning("parent process %d is gone; stopping", self._parent)
            if self.on_orphaned is not None:
                self.on_orphaned()
            return
        box: list = []
        handle = asyncio.get_running_loop().call_later(0.5, self._rewatch, box)
        box.append(handle)
        self._timers.add(handle)

    def _rewatch(self, box: list) -> None:
        self._timers.discard(box[0])
        self._watch_parent()

    # -- driving the node -----------------------------------------------------------------

    def _address_of(self, node: str) -> str:
        return self.node.membership.address_of(node) if self.node is not None else ""

    def _deliver(self, src: str, msg: Any) -> None:
        if self.node is not None:
            self._call(f"{type(msg).__name__} from {src}", self.node.on_message, src, msg)

    def _fire(self, handle_box: list, timer: Any) -> None:
        # handle_box holds this timer's own handle, so it can forget it once fired.
        self._timers.discard(handle_box[0])
        if self.node is not None:
            self._call(f"timer {type(timer).__name__}", self.node.on_timer, timer)

    def _call(self, what: str, fn, *args) -> bool:
        """Run one node step and carry out its effects. A failure is logged, never fatal;
        returns False if the step failed."""
        if self.node is None:
            return False
        try:
            effects = fn(*args, time.time())
        except ProtocolError as exc:
            self.errors += 1
            self.log.warning("refused %s: %s", what, exc)
            return False
        except Exception:  # a bug in a node part: keep serving, say so loudly
            self.errors += 1
            self.log.exception("node %s failed handling %s", self.opts.node_id, what)
            return False
        self._apply(effects)
        return True

    def _apply(self, effects: list) -> None:
        loop = asyncio.get_running_loop()
        for eff in effects:
            if isinstance(eff, Send):
                if eff.dst.startswith(CLIENT_PREFIX):
                    fut = self._waiting.pop(eff.dst, None)
                    if fut is not None and not fut.done():
                        fut.set_result(eff.msg)
                else:
                    self.transport.send(eff.dst, eff.msg)
            elif isinstance(eff, SetTimer):
                box: list = []
                handle = loop.call_later(eff.delay_s, self._fire, box, eff.timer)
                box.append(handle)
                self._timers.add(handle)
            elif isinstance(eff, Note):
                self.log.debug("note: %s", eff.text)
            else:
                raise TypeError(f"unknown effect {eff!r} from node {self.opts.node_id}")

    # -- services for the HTTP API --------------------------------------------------------

    @property
    def client_timeout_s(self) -> float:
        """How long a client request may wait for the coordinator (as in the simulator)."""
        return 4 * self.opts.config.request_timeout_s + 1.0

    async def request(self, kind: str, key: Any, value: Any = None,
                      context: Optional[str] = None) -> ClientReply:
        """Run one client request through the node and return its reply. A coordinator that
        does not answer in time gives a quorum-failure reply (``got=0``).

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
            return await self._admitted(kind, key, value, context)
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

    async def _admitted(self, kind: str, key: Any, value: Any,
                        context: Optional[str]) -> ClientReply:
        self._client_seq += 1
        # The generation makes the request id (and so the write id) unique across restarts.
        gen = self.node.membership.mine.generation if self.node is not None else 0
        client = f"{CLIENT_PREFIX}{gen}.{self._client_seq}"
        req_id = f"{client}#{self._client_seq}"
        msg = {"get": lambda: ClientGet(req_id, key),
               "put": lambda: ClientPut(req_id, key, value, context),
               "delete": lambda: ClientDelete(req_id, key, context)}[kind]()
        fut = asyncio.get_running_loop().create_future()
        self._waiting[client] = fut
        try:
            if self.node is None or not self._call(f"{kind} from {client}",
                                                   self.node.on_message, client, msg):
                return ClientReply(req_id, kind, str(key), False, coordinator=self.opts.node_id,
                                   error_kind="internal",
                                   error="the node failed on this request; see its log")
            return await asyncio.wait_for(fut, self.client_timeout_s)
        except asyncio.TimeoutError:
            return ClientReply(req_id, kind, str(key), False, coordinator=self.opts.node_id,
                               error_kind="quorum", error="no reply from the coordinator in time",
                               may_have_applied=kind != "get")
        finally:
            self._waiting.pop(client, None)

    def leave(self) -> None:
        """Start leaving the ring for good (hand off every key and hint, then say "left")."""
        self._call("admin leave", self.node.on_message, "admin", AdminLeave())

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
        return out


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


def run(opts: NodeOptions, log_level: str = "INFO") -> int:
    """Configure logging to stderr and :func:`serve` the node (blocking)."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), stream=sys.stderr,
                        format=f"%(asctime)s {opts.node_id} %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatFilter())
    raise_descriptor_limit()
    return asyncio.run(serve(opts))
