"""``TcpCluster``: a Dynamo cluster of real node processes on 127.0.0.1.

It has the interface of :class:`dynamo_lab.cluster.SimCluster`, so the same client code and
the same scenarios run against both::

    with dl.TcpCluster(nodes=5, n=3, r=2, w=2, gossip_interval_s=0.2) as cluster:
        alice = cluster.client("alice")
        alice.put("cart", ["book"])
        cluster.crash("C")               # SIGKILL of C's process
        cluster.restart("C")             # a new process over C's SQLite store
        cluster.partition({"A", "B"}, {"C", "D", "E"}); cluster.heal()

Each node is one OS process (``python -m dynamo_lab.cli node --id A --options FILE``, its
options in one JSON file under ``data_dir/run``) with a SQLite store in ``data_dir`` (a
temporary directory by default, removed on close). ``parts=`` runs a student's parts in every
node (they travel as code: :mod:`dynamo_lab.shipping`), ``faults=`` the simulator's fault
model, and ``trace=True`` gives :meth:`TcpCluster.trace`, the simulator's trace of the run. Ports are chosen by the OS;
each process reports the ports it got in a ready file. Every process the cluster starts is
stopped by its PID when the cluster closes (SIGTERM, then SIGKILL), and, as a safety net, a
node started by a cluster exits by itself if the process that started it dies.

Time is real: ``run_for(seconds)`` sleeps. Client requests run on worker threads, so
``submit_put`` returns at once and several requests truly race; ``wait(*ops)`` collects them.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from ..checker import History
from ..client import Client, Operation
from ..cluster import Cluster, node_names
from ..errors import ClientError, ConfigError, DynamoError, QuorumError
from ..faults import FaultConfig, describe_partition, partition_links
from ..messages import ClientReply
from ..node import NodeConfig
from ..runtime import client_timeout_s, no_reply
from ..sim.trace import Trace, merge_records, record_line
from ..storage import SqliteStore
from ..versions import Versioned
from .http_client import http_json, kv_path
from .process import CLUSTER_KEY_ENV, SECRET_ENV, TOKEN_ENV, NodeOptions

#: How much longer than a node's own client timeout an HTTP client waits for its answer.
HTTP_SLACK_S = 5.0


class ClusterError(DynamoError, RuntimeError):
    """A node process would not start, stop or converge in time. The message names the node,
    its log file and the last lines of that log."""


@dataclass
class NodeProc:
    """One node process as the cluster knows it."""
    name: str
    members: list[str]
    seeds: list[str]
    pid: int = 0                       # 0: not running
    address: str = ""                  # where peers reach it, HOST:PORT
    http: str = ""                     # its HTTP API, HOST:PORT
    generation: int = 0
    skew_s: float = 0.0                # how far its clock is off (FaultConfig.skew_s)
    proc: Optional[subprocess.Popen] = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {"name": self.name, "pid": self.pid, "address": self.address, "http": self.http,
                "members": self.members, "seeds": self.seeds, "generation": self.generation,
                "skew_s": self.skew_s}


def pid_alive(pid: int) -> bool:
    """Is a process with this PID running (not a zombie)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; it only waits for its parent to reap it
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_node_process(pid: int, name: str) -> bool:
    """Does ``pid`` look like the dynamo-lab node ``name``? Checked before signalling a PID
    read from a state file, since the OS may have reused it for something else."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().decode("utf-8", "replace").split("\0")
    except OSError:
        try:
            out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True,
                                 text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return False
        argv = out.split()
    return "node" in argv and "--id" in argv and name in argv and any(
        "dynamo_lab" in a or "dynamo-lab" in a for a in argv)


class TcpCluster(Cluster):
    """A Dynamo cluster of real processes on ``host`` (127.0.0.1). See the module docstring.

    ``nodes``: a count (A, B, C, ...) or a list of names. ``n, r, w, vnodes``: replication.
    ``seed``: seeds every node's random choices and the client load balancer (the network
    itself is real, so runs are not replayable as in the simulator). ``data_dir``: where the
    SQLite stores, logs and ready files go (a temporary directory, removed on close, when None).
    ``faults``: a :class:`~dynamo_lab.faults.FaultConfig` every node's transport applies to
    what it sends (default: none). ``parts``: a :class:`~dynamo_lab.node.Parts` (or a reference
    ``"my_parts.py:PARTS"``) every node runs; it travels as code (:mod:`dynamo_lab.shipping`).
    ``trace=True``: every node writes its trace, merged by :meth:`trace`.
    Other keyword arguments set :class:`NodeConfig` fields (``gossip_interval_s=0.2``...).
    ``detached=True`` starts processes that outlive this object (what ``dynamo-lab cluster up``
    uses); they are then stopped with :meth:`close` on a cluster :meth:`attach`-ed later.

    Raises :class:`ConfigError` for bad parameters and :class:`ClusterError` if a node does not
    start and converge within ``startup_timeout_s`` (every process started so far is killed).
    """

    def __init__(self, nodes: int | Iterable[str] = 5, n: int = 3, r: int = 2, w: int = 2,
                 vnodes: int = 8, seed: int = 0, *, data_dir: Optional[str] = None,
                 host: str = "127.0.0.1", startup_timeout_s: float = 60.0,
                 detached: bool = False, log_level: str = "INFO", max_inflight: int = 16,
                 faults: Optional[FaultConfig] = None, parts: Any = None, trace: bool = False,
                 **config):
        names = node_names(nodes) if isinstance(nodes, int) else list(nodes)
        if len(set(names)) != len(names) or not all(
                isinstance(x, str) and x and x.isprintable() and ":" not in x and " " not in x
                and "," not in x and "=" not in x for x in names):
            raise ConfigError("node names must be distinct non-empty strings without spaces, "
                              "':', ',' or '='")
        if len(names) < n:
            raise ConfigError(f"N={n} replicas need at least {n} nodes; got {len(names)}. "
                              f"Use more nodes or a smaller n.")
        if not isinstance(max_inflight, int) or isinstance(max_inflight, bool) or max_inflight < 1:
            raise ConfigError(f"max_inflight must be a whole number >= 1, got {max_inflight!r}")
        if faults is not None and not isinstance(faults, FaultConfig):
            raise ConfigError(f"faults must be a dynamo_lab.FaultConfig; got {faults!r}")
        self.max_inflight = max_inflight
        cfg = NodeConfig(n=n, r=r, w=w, vnodes=vnodes, **config)
        own_dir = data_dir is None
        data_dir = tempfile.mkdtemp(prefix="dynamo-lab-") if own_dir else str(data_dir)
        try:
            parts_desc = None
            if parts is not None:
                from ..shipping import describe_parts
                parts_desc = describe_parts(parts, Path(data_dir, "parts"))
        except BaseException:
            if own_dir:
                shutil.rmtree(data_dir, ignore_errors=True)
            raise
        self._setup(cfg, seed, data_dir, host, own_dir=own_dir, detached=detached,
                    cluster_id=f"dl-{secrets.token_hex(6)}", token=secrets.token_hex(16),
                    secret=secrets.token_hex(32),
                    log_level=log_level, startup_timeout_s=startup_timeout_s,
                    faults=faults or FaultConfig.none(), parts=parts_desc, trace=trace,
                    t0_wall=time.time())
        if parts is not None and not isinstance(parts, str):
            self._parts = parts
        try:
            for name in names:
                self._procs[name] = self._new_proc(name, list(names), names[:3])
                self._spawn(self._procs[name], port=0, http_port=0)
            self._wait_ready(names)
            self._post_all("/admin/peers", self._address_book())
            self.wait_converged()
        except BaseException:
            self.close(kill=True)
            raise

    def _setup(self, cfg: NodeConfig, seed: int, data_dir: str, host: str, *, own_dir: bool,
               detached: bool, cluster_id: str, token: str, secret: str, log_level: str,
               startup_timeout_s: float, faults: FaultConfig, parts: Any, trace: bool,
               t0_wall: float) -> None:
        self.config = cfg
        self.faults = faults
        self.parts_description = parts      # what each node rebuilds its parts from
        self._parts = None                  # the parts themselves, loaded when asked for
        self.tracing = trace
        self._t0_wall = t0_wall             # the wall-clock time that is time 0 of the trace
        self._skew = random.Random(f"{seed}/clock-skew")
        self.seed = seed
        self.data_dir = data_dir
        self.host = host
        self.detached = detached
        self.cluster_id = cluster_id
        self.token = token
        self.secret = secret            # what peers prove they hold; never on a command line
        self.log_level = log_level
        self.startup_timeout_s = startup_timeout_s
        self.history = History(cfg.cluster_key)
        self.removed: set[str] = set()
        self.blocked: set[tuple[str, str]] = set()
        self._procs: dict[str, NodeProc] = {}
        self._lb = random.Random(f"{seed}/load-balancer")
        self._req = 0
        self._t0 = time.monotonic()
        self._inflight: dict[int, tuple[Operation, Future]] = {}
        self._executor: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()
        self._closed = False
        for sub in ("logs", "run", "trace"):
            Path(data_dir, sub).mkdir(parents=True, exist_ok=True)
        # If the cluster object is dropped without close() (a notebook kernel restarting),
        # its processes must not outlive it. Detached clusters are meant to outlive it.
        self._finalizer = None
        if not detached:
            self._finalizer = weakref.finalize(self, _kill_all, self._procs,
                                               data_dir if own_dir else None)
        self._own_dir = own_dir

    # -- attaching to a detached cluster (the CLI) ----------------------------------------------

    def state(self) -> dict:
        """What a state file records: enough for :meth:`attach` to drive the cluster again."""
        cfg = self.config.to_json()
        return {"version": 3, "cluster_id": self.cluster_id, "token": self.token,
                "secret": self.secret, "max_inflight": self.max_inflight,
                "cluster_key": self.config.cluster_key, "seed": self.seed,
                "data_dir": self.data_dir, "host": self.host, "config": cfg,
                "faults": self.faults.to_json(), "parts": self.parts_description,
                "trace": self.tracing, "t0_wall": self._t0_wall,
                "removed": sorted(self.removed), "blocked": sorted(map(list, self.blocked)),
                "nodes": [p.to_json() for p in self._procs.values()]}

    @classmethod
    def attach(cls, state: dict) -> "TcpCluster":
        """A cluster object driving the processes a :meth:`state` describes (started by
        another process). Raises ``ValueError`` (:class:`ConfigError`) for a malformed state."""
        try:
            cfg = NodeConfig(**state["config"], cluster_key=state["cluster_key"])
            self = cls.__new__(cls)
            self.max_inflight = int(state.get("max_inflight", 16))
            self._setup(cfg, int(state["seed"]), str(state["data_dir"]), str(state["host"]),
                        own_dir=False, detached=True, cluster_id=str(state["cluster_id"]),
                        token=str(state["token"]), secret=str(state["secret"]),
                        log_level="INFO", startup_timeout_s=60.0,
                        faults=FaultConfig.from_json(state.get("faults",
                                                               FaultConfig.none().to_json())),
                        parts=state.get("parts"), trace=bool(state.get("trace", False)),
                        t0_wall=float(state.get("t0_wall", 0.0)))
            for obj in state["nodes"]:
                p = NodeProc(obj["name"], list(obj["members"]), list(obj["seeds"]),
                             int(obj["pid"]), obj["address"], obj["http"],
                             int(obj.get("generation", 0)), float(obj.get("skew_s", 0.0)))
                if p.pid and not (pid_alive(p.pid) and is_node_process(p.pid, p.name)):
                    p.pid = 0
                self._procs[p.name] = p
            self.removed = set(state.get("removed", []))
            self.blocked = {(a, b) for a, b in state.get("blocked", [])}
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a dynamo-lab cluster state ({exc!r}); remove the state "
                              f"file and start a new cluster") from None
        return self

    # -- processes ------------------------------------------------------------------------------

    def _ready_file(self, name: str) -> Path:
        return Path(self.data_dir, "run", f"{name}.ready.json")

    def log_file(self, name: str) -> Path:
        """Where node ``name``'s process writes its log."""
        return Path(self.data_dir, "logs", f"{name}.log")

    @property
    def parts(self):
        """The parts every node runs (None: the reference's), loaded from their description
        when first asked for (the ring of :meth:`preference_list` is built with them)."""
        if self._parts is None and self.parts_description is not None:
            from ..shipping import build_parts
            self._parts = build_parts(self.parts_description)
        return self._parts

    def _new_proc(self, name: str, members: list[str], seeds: list[str]) -> NodeProc:
        """A node the cluster will run; its clock offset is drawn as the simulator draws it."""
        return NodeProc(name, members, seeds, skew_s=self.faults.clock_offset_s(self._skew))

    def _options(self, p: NodeProc, port: int, http_port: int) -> NodeOptions:
        """What node ``p``'s process starts with (written to its options file)."""
        return NodeOptions(
            p.name, self.data_dir, host=self.host, port=port, http_port=http_port,
            members=list(p.members), seeds=list(p.seeds),
            peers={k: v for k, v in self._address_book().items() if k != p.name},
            config=self.config, seed=self.seed, cluster=self.cluster_id,
            parts=self.parts_description, faults=self.faults,
            blocked=sorted(map(list, self._current_blocked())), clock_skew_s=p.skew_s,
            trace_file=str(self._trace_file(p.name)) if self.tracing else "",
            ready_file=str(self._ready_file(p.name)), port_fallback=bool(port or http_port),
            exit_with_parent=not self.detached, max_inflight=self.max_inflight,
            log_level=self.log_level)

    def _argv(self, p: NodeProc, port: int, http_port: int) -> list[str]:
        """The node's command line: its options travel in one JSON file (``--id`` is there
        too, so that ``ps`` shows which node a process is)."""
        path = Path(self.data_dir, "run", f"{p.name}.options.json")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._options(p, port, http_port).to_json(), indent=1),
                       encoding="utf-8")
        os.replace(tmp, path)
        return [sys.executable, "-m", "dynamo_lab.cli", "node", "--id", p.name,
                "--options", str(path)]

    def _current_blocked(self) -> set[tuple[str, str]]:
        """The links cut now: what this object set, and what the running nodes enforce (a
        partition may have been set by hand through their admin endpoints)."""
        cut = set(self.blocked)
        for name in self.up():
            if not self._procs[name].http:
                continue             # still starting
            try:
                _code, faults = self._admin(name, "GET", "/admin/faults")
            except ClusterError:
                continue
            cut.update((a, b) for a, b in faults["blocked"])
        return cut

    def _spawn(self, p: NodeProc, port: int, http_port: int) -> None:
        ready = self._ready_file(p.name)
        if ready.exists():
            ready.unlink()
        env = dict(os.environ)
        env[TOKEN_ENV] = self.token
        env[SECRET_ENV] = self.secret
        env[CLUSTER_KEY_ENV] = self.config.cluster_key
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(self.log_file(p.name), "ab") as log:
            p.proc = subprocess.Popen(self._argv(p, port, http_port), stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=self.detached, close_fds=True)
        p.pid = p.proc.pid

    def _alive(self, p: NodeProc) -> bool:
        if not p.pid:
            return False
        if p.proc is not None:
            return p.proc.poll() is None
        return pid_alive(p.pid)

    def _log_tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.log_file(name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, names: Iterable[str]) -> None:
        pending = list(names)
        deadline = time.monotonic() + self.startup_timeout_s
        while pending:
            for name in list(pending):
                p = self._procs[name]
                ready = self._ready_file(name)
                if ready.exists():
                    info = json.loads(ready.read_text(encoding="utf-8"))
                    p.address, p.http = info["address"], info["http"]
                    p.generation = int(info["generation"])
                    pending.remove(name)
                elif not self._alive(p):
                    p.pid = 0
                    raise ClusterError(f"node {name} exited during startup; the end of its log "
                                       f"({self.log_file(name)}):\n{self._log_tail(name)}")
            if pending and time.monotonic() > deadline:
                raise ClusterError(f"nodes {pending} not ready after {self.startup_timeout_s} s; "
                                   f"see their logs in {Path(self.data_dir, 'logs')}")
            if pending:
                time.sleep(0.02)

    def _stop_process(self, p: NodeProc, sig: int, timeout_s: float = 10.0) -> None:
        """Send ``sig`` to ``p`` by PID and wait until the process is gone."""
        self._stop_all([p], sig, timeout_s)

    def _stop_all(self, procs: list[NodeProc], sig: int, timeout_s: float = 10.0) -> None:
        """Send ``sig`` to each process by PID, then wait until they are all gone; those
        still running after ``timeout_s`` get SIGKILL."""
        targets = []
        for p in procs:
            if not p.pid:
                continue
            if p.proc is None and not is_node_process(p.pid, p.name):
                p.pid = 0          # the PID belongs to someone else now: leave it alone
                continue
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            targets.append(p)
        deadline = time.monotonic() + timeout_s
        for p in targets:
            while self._alive(p):
                if time.monotonic() > deadline:
                    if sig == signal.SIGKILL:
                        raise ClusterError(f"node {p.name} (pid {p.pid}) survived SIGKILL")
                    self._stop_all([p], signal.SIGKILL, timeout_s)
                    break
                time.sleep(0.01)
            if p.proc is not None:
                p.proc.wait()
            p.pid, p.proc = 0, None

    # -- the Cluster interface: nodes -----------------------------------------------------------

    def __repr__(self) -> str:
        return (f"TcpCluster(nodes={self.nodes}, n={self.config.n}, r={self.config.r}, "
                f"w={self.config.w}, up={self.up()}, data_dir={self.data_dir!r})")

    def __enter__(self) -> "TcpCluster":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close(kill=exc_info[0] is not None)

    @property
    def nodes(self) -> list[str]:
        """Every node of the cluster (running or crashed), in order of creation."""
        return [n for n in self._procs if n not in self.removed]

    def up(self) -> list[str]:
        """The nodes whose process is running."""
        return [n for n in self.nodes if self._alive(self._procs[n])]

    @property
    def pids(self) -> dict[str, int]:
        """Each running node's PID."""
        return {n: self._procs[n].pid for n in self.up()}

    def http_address(self, name: str) -> str:
        """``HOST:PORT`` of node ``name``'s HTTP API."""
        return self._proc(name).http

    def _proc(self, name: str) -> NodeProc:
        if name not in self._procs or name in self.removed:
            raise ConfigError(f"no node {name!r} in this cluster; nodes are {self.nodes}")
        return self._procs[name]


    _require = _proc

    def crash(self, name: str) -> None:
        """SIGKILL node ``name``'s process (its volatile state is lost, its store is kept)."""
        p = self._proc(name)
        if self._alive(p):
            self._stop_process(p, signal.SIGKILL)
            self._event("crash", name, "SIGKILL: volatile state lost; store kept")
        p.pid = 0

    def stop(self, name: str) -> None:
        """Stop node ``name`` gracefully (SIGTERM); ``restart`` brings it back."""
        p = self._proc(name)
        if self._alive(p):
            self._stop_process(p, signal.SIGTERM)

    def restart(self, name: str, *, converge: bool = True) -> None:
        """Start node ``name`` again over its store (on its old ports if they are free), then
        wait until it and the others see each other up (unless ``converge=False``)."""
        p = self._proc(name)
        if self._alive(p):
            return
        old = (p.address, p.http)
        self._spawn(p, port=_port_of(p.address), http_port=_port_of(p.http))
        try:
            self._wait_ready([name])
        except ClusterError:
            self.crash(name)
            raise
        if (p.address, p.http) != old:
            self._post_all("/admin/peers", {name: p.address})
        if converge:
            self.wait_converged()

    def wipe(self, name: str) -> None:
        """Lose a node's disk (its store and hints) while it is down, as if replaced."""
        p = self._proc(name)
        if self._alive(p):
            raise ConfigError(f"crash {name} before wiping its store")
        for suffix in ("", "-wal", "-shm"):
            path = Path(self.data_dir, f"{name}.sqlite3{suffix}")
            if path.exists():
                path.unlink()
        self._event("wipe", name, "store wiped")

    def partition(self, *groups: Iterable[str], one_way: bool = False) -> None:
        """Split the network: nodes in different groups cannot reach each other (enforced in
        every node's transport). With ``one_way=True`` only the first group's messages to the
        others are lost."""
        norm = self._partition_groups(groups)
        self.blocked |= partition_links(norm, one_way)
        self._post_all("/admin/partition", {"blocked": sorted(map(list, self.blocked))})
        self._event("partition", "net", describe_partition(norm, one_way))

    def heal(self) -> None:
        """Restore every link (and the fault model the nodes started with)."""
        self.blocked.clear()
        self._post_all("/admin/heal", {})
        self._event("heal", "net", "all links restored")

    def drop(self, probability: float, peers: Iterable[str] = (), seed: Optional[int] = None) -> None:
        """Every running node loses this fraction of the messages it sends (to ``peers`` only,
        when given), until :meth:`heal`."""
        body = {"probability": probability, "peers": sorted(peers)}
        if seed is not None:
            body["seed"] = seed
        self._post_all("/admin/drop", body)

    def add_node(self, name: str, seeds: Optional[Iterable[str]] = None) -> None:
        """Start a new node that joins through gossip with ``seeds`` (by default the first
        three nodes), and wait until every running node sees it."""
        if not isinstance(name, str) or not name or name in self._procs or ":" in name \
                or "," in name or "=" in name or " " in name:
            raise ConfigError(f"{name!r} is not a new node name")
        seeds = list(seeds) if seeds is not None else self.nodes[:3]
        for s in seeds:
            self._proc(s)
        p = self._procs[name] = self._new_proc(name, [], seeds)
        self._event("join", name, f"seeds {seeds}")
        try:
            self._spawn(p, 0, 0)
            self._wait_ready([name])
        except BaseException:
            self.crash(name)
            del self._procs[name]
            raise
        self._post_all("/admin/peers", {name: p.address})
        self.wait_converged()

    def remove_node(self, name: str, timeout_s: float = 300.0) -> None:
        """Make a node leave for good: it hands its keys and hints to their new owners, says
        "left", and its process is then stopped. Raises :class:`QuorumError` if it cannot
        hand off everything within ``timeout_s``."""
        p = self._proc(name)
        if not self._alive(p):
            raise ConfigError(f"{name} is down: restart it so it can hand off its data first")
        self._event("leave", name)
        self._admin(name, "POST", "/admin/leave", {})
        deadline = time.monotonic() + timeout_s
        while not self.status(name).get("left"):
            if time.monotonic() > deadline:
                raise QuorumError("leave", name, 1, 0, True,
                                  f"{name} could not hand off all its data in {timeout_s} s "
                                  f"(are its keys' owners down?)")
            time.sleep(0.05)
        self.run_for(2 * self.config.gossip_interval_s)
        self._stop_process(p, signal.SIGTERM)
        self.removed.add(name)

    # -- waiting --------------------------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        """Let real time pass: gossip, hinted handoff and anti-entropy do their work."""
        time.sleep(seconds)
        self._collect(block=False)

    @property
    def now(self) -> float:
        """Seconds since the cluster object was made (the time of its history)."""
        return time.monotonic() - self._t0

    def status(self, name: str) -> dict:
        """Node ``name``'s ``GET /status``; :class:`ClusterError` if it does not answer."""
        p = self._proc(name)
        try:
            code, body = http_json("GET", p.http, "/status", timeout_s=5.0)
        except (OSError, ValueError) as exc:
            raise ClusterError(f"node {name} at {p.http} does not answer: {exc}") from None
        if code != 200:
            raise ClusterError(f"node {name} answered /status with {code}: {body}")
        return body

    def views(self) -> dict[str, Optional[dict]]:
        """Every node's status (None for a node that is down or does not answer)."""
        out: dict[str, Optional[dict]] = {}
        for name in self.nodes:
            try:
                out[name] = self.status(name) if self._alive(self._procs[name]) else None
            except ClusterError:
                out[name] = None
        return out

    def wait_converged(self, timeout_s: Optional[float] = None) -> None:
        """Wait until every running node sees every other running node it can reach (not cut
        off by a partition) up, reachable and unsuspected, with the generation it runs now.
        Raises :class:`ClusterError` saying who does not see whom if that takes longer than
        ``timeout_s``."""
        deadline = time.monotonic() + (timeout_s or self.startup_timeout_s)
        while True:
            up = self.up()
            gens: dict[str, int] = {}
            lagging: list[str] = []
            views = {}
            for name in up:
                try:
                    views[name] = self.status(name)
                except ClusterError as exc:
                    lagging.append(str(exc))
                    continue
                gens[name] = views[name]["generation"]
            # Links cut by a partition (as the nodes report them: it may have been set by
            # hand through the admin endpoint) are not expected to carry gossip.
            cut = set(self.blocked)
            for st in views.values():
                cut.update((a, b) for a, b in st["transport"]["faults"]["blocked"])
            for name, st in views.items():
                for other in up:
                    m = st["members"].get(other)
                    if other == name or (name, other) in cut or (other, name) in cut:
                        continue
                    if m is None or m["status"] != "up" or not m["address"] or m["suspected"] \
                            or (other in gens and m["generation"] != gens[other]):
                        lagging.append(f"{name} does not see {other} up yet")
            if not lagging:
                return
            if time.monotonic() > deadline:
                raise ClusterError("cluster did not converge: " + "; ".join(lagging[:8]))
            time.sleep(0.05)

    def wait_quiet(self, timeout_s: float = 60.0) -> float:
        """Wait until every running node sees every other one up (:meth:`wait_converged`)
        and no node holds a hint any more: every write a partition or a crash diverted has
        reached its home replicas, so a quorum read meets every acknowledged write. Returns
        the seconds it took; raises :class:`ClusterError` naming what is still pending."""
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        self.wait_converged(timeout_s)
        while True:
            held = {n: c for n, c in self.hints().items() if c}
            if not held:
                self.wait_converged(max(1.0, deadline - time.monotonic()))
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                down = [n for n in self.nodes if n not in self.up()]
                why = f"; {', '.join(down)} down: restart it" if down else ""
                raise ClusterError(f"hints still held after {timeout_s:.0f} s: "
                                   + ", ".join(f"{n} holds {c}" for n, c in sorted(held.items()))
                                   + why)
            time.sleep(0.05)

    # -- client plumbing ------------------------------------------------------------------------

    def _start(self, client: Client, op: Operation) -> None:
        self._pick_via(op)
        with self._lock:
            self._req += 1
            op.req_id = f"{client.name}#{self._req}"
        op.started = self.now
        op.record = self.history.start(client.name, op.kind, op.key, op.value, op.started)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=32,
                                                thread_name_prefix="dynamo-lab-client")
        body = None
        if op.kind == "put":
            body = {"value": op.value, "context": op.context}
        elif op.kind == "delete":
            body = {"context": op.context}
        method = {"get": "GET", "put": "PUT", "delete": "DELETE"}[op.kind]
        fut = self._executor.submit(_request, self._proc(op.via).http, op.via, method, op.kind,
                                    op.key, body, client_timeout_s(self.config) + HTTP_SLACK_S,
                                    client.name)
        self._inflight[id(op)] = (op, fut)

    def _collect(self, block: bool, ops: Iterable[Operation] = (), timeout_s: float = 0.0) -> None:
        deadline = time.monotonic() + timeout_s
        wanted = {id(o) for o in ops}
        for key, (op, fut) in list(self._inflight.items()):
            if not block or key not in wanted:
                if not fut.done():
                    continue
            try:
                reply, error = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                raise RuntimeError(f"operation {op.kind} {op.key!r} still unfinished after "
                                   f"{timeout_s} s") from None
            del self._inflight[key]
            self._complete(op, reply, error)

    def wait(self, *ops: Operation, timeout_s: float = 600.0) -> list[Operation]:
        """Block until every operation has finished (they run concurrently)."""
        self._collect(block=True, ops=ops, timeout_s=timeout_s)
        for op in ops:
            if not op.done:
                raise RuntimeError(f"operation {op.kind} {op.key!r} was not started by this "
                                   f"cluster")
        return list(ops)

    # -- looking inside -------------------------------------------------------------------------

    def _local(self, name: str, key: str) -> tuple[list[Versioned], dict[str, list[Versioned]]]:
        """(own versions, hints by intended node) node ``name`` holds for ``key``: asked over
        HTTP when it runs, read from its SQLite file when it is down."""
        p = self._proc(name)
        if self._alive(p):
            code, body = self._admin(name, "GET", "/admin/local/" + kv_path(key)[len("/kv/"):])
            own = [Versioned.from_json(v) for v in body["versions"]]
            return own, {n: [Versioned.from_json(v) for v in vs]
                         for n, vs in body["hints"].items()}
        path = Path(self.data_dir, f"{name}.sqlite3")
        if not path.exists():
            return [], {}
        with SqliteStore(path) as store:
            return (list(store.get(key)),
                    {n: list(store.get_hint(n, key)) for n in store.hinted_nodes()
                     if store.get_hint(n, key)})

    def replicas(self, key: str) -> dict[str, list[Versioned]]:
        """What each node of the key's preference list holds now (its own data, not hints)."""
        return {n: self._local(n, key)[0] for n in self.preference_list(key)}

    def holders(self, key: str) -> dict[str, list[Versioned]]:
        """Every node that holds ``key`` in its own data, whether or not it should."""
        out = {}
        for n in self.nodes:
            own = self._local(n, key)[0]
            if own:
                out[n] = own
        return out

    def hints(self) -> dict[str, int]:
        """How many hinted replicas each node keeps for others."""
        out = {}
        for n in self.nodes:
            if self._alive(self._procs[n]):
                out[n] = sum(self.status(n)["hints"].values())
            else:
                path = Path(self.data_dir, f"{n}.sqlite3")
                if not path.exists():
                    out[n] = 0
                    continue
                with SqliteStore(path) as store:
                    out[n] = store.hint_count()
        return out

    def settle(self, seconds: float = 10.0) -> None:
        """Heal, restart every crashed node and let the cluster converge."""
        self.heal()
        for name in self.nodes:
            if not self._alive(self._procs[name]):
                self.restart(name, converge=False)
        self.wait_converged()
        self.run_for(seconds)

    # -- the trace -------------------------------------------------------------------------------

    def _trace_file(self, name: str) -> Path:
        return Path(self.data_dir, "trace", f"{name}.jsonl")

    def _event(self, kind: str, node: str, detail: str = "") -> None:
        """A cluster-wide event (a crash, a partition...) for the trace, when tracing."""
        if not self.tracing:
            return
        with self._lock, open(self._trace_file("_cluster"), "a", encoding="utf-8") as fh:
            fh.write(record_line(time.time(), kind, node, detail=detail))

    def trace(self) -> Trace:
        """Every node's trace so far, merged into the simulator's format (time 0 is when the
        cluster was made): ``draw_spacetime(cluster.trace())`` draws it, ``.shiviz()`` exports
        it. Needs ``TcpCluster(trace=True)``."""
        if not self.tracing:
            raise ConfigError("this cluster keeps no trace: make it with TcpCluster(trace=True)")
        records = []
        for path in sorted(Path(self.data_dir, "trace").glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    records.append(json.loads(line))
                except ValueError:      # the last line of a node killed while writing it
                    continue
        return merge_records(records, self._t0_wall)

    def trace_lines(self, last: Optional[int] = None) -> list[str]:
        lines = self.trace().lines()
        return lines[-last:] if last else lines

    def shiviz(self) -> str:
        return self.trace().shiviz()

    # -- HTTP to the nodes ----------------------------------------------------------------------

    def _address_book(self) -> dict[str, str]:
        return {n: p.address for n, p in self._procs.items() if p.address}

    def _admin(self, name: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        p = self._proc(name)
        try:
            code, answer = http_json(method, p.http, path, body, timeout_s=10.0, token=self.token)
        except (OSError, ValueError) as exc:
            raise ClusterError(f"node {name} at {p.http} does not answer {path}: {exc}") from None
        if code != 200:
            raise ClusterError(f"node {name} refused {path} ({code}): {answer}")
        return code, answer

    def _post_all(self, path: str, body: Any) -> None:
        for name in self.up():
            self._admin(name, "POST", path, body)

    # -- closing --------------------------------------------------------------------------------

    def close(self, kill: bool = False) -> None:
        """Stop every node process this cluster runs, by PID: SIGTERM (SIGKILL with
        ``kill=True``, or after 10 s). Removes the temporary data directory, if it made one."""
        if self._closed:
            return
        self._closed = True
        for op, fut in self._inflight.values():
            fut.cancel()
        self._stop_all([p for p in self._procs.values() if p.pid],
                       signal.SIGKILL if kill else signal.SIGTERM)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def _port_of(address: str) -> int:
    return int(address.rpartition(":")[2]) if address else 0


def _request(http: str, via: str, method: str, kind: str, key: str, body: Any,
             timeout_s: float, client: str) -> tuple[Optional[ClientReply], Optional[BaseException]]:
    """One client request over HTTP (runs on a worker thread; touches no shared state).
    Returns ``(reply, None)`` or ``(None, error)``. A node that answers "overloaded" applied
    nothing, so the request is sent again after a short, growing pause (as a Dynamo client
    library would), until ``timeout_s`` has passed."""
    from .http_api import reply_from_json
    deadline = time.monotonic() + timeout_s
    pause = 0.01
    while True:
        code, answer, error = _send(http, via, method, kind, key, body,
                                    max(0.1, deadline - time.monotonic()), client)
        overloaded = isinstance(answer, dict) and answer.get("error_kind") == "overloaded"
        if not overloaded or time.monotonic() + pause > deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
    if error is not None:
        return None, error
    try:
        return reply_from_json(answer), None
    except (ValueError, TypeError):
        message = answer.get("error") if isinstance(answer, dict) else None
        return None, ClientError(f"{via} refused the request ({code}): {message or answer}")


def _send(http: str, via: str, method: str, kind: str, key: str, body: Any,
          timeout_s: float, client: str) -> tuple[int, Any, Optional[BaseException]]:
    """``(status, answer, None)``, or ``(0, None, error)`` when the node did not answer."""
    try:
        code, answer = http_json(method, http, kv_path(key), body, timeout_s=timeout_s,
                                 client=client)
    except ConnectionRefusedError as exc:
        return 0, None, QuorumError(kind, key, 1, 0, False, f"{via} is down ({exc})")
    except TimeoutError:
        return 0, None, no_reply(kind, key, via, "in time")
    except (OSError, ValueError) as exc:
        return 0, None, no_reply(kind, key, via, f"it failed while answering: {exc}")
    return code, answer, None


def _kill_all(procs: dict[str, NodeProc], data_dir: Optional[str]) -> None:
    """Finalizer of a cluster dropped without close(): SIGKILL its processes by PID."""
    for p in procs.values():
        if p.proc is not None and p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
