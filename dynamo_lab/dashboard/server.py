"""The dashboard's web server (aiohttp): one page, a stream of what the cluster does, and the
lecturer's controls.

It follows the cluster of a state file (what ``dynamo-lab cluster up`` and the demos write),
re-reading it when it changes, so it keeps up with ``cluster kill``/``restart`` typed in a
terminal and with a demo that starts a fresh cluster. Three loops feed the page:

* every ``poll_s`` it asks each running node for ``GET /status`` (and, for the key the cart
  panel watches, ``GET /admin/local/KEY`` with the cluster's token) and sends a *snapshot*
  when anything changed: the ring, what each node believes of the others, keys, hints,
  generation, requests in flight, the partition, the drop rate;
* every 0.1 s it reads what the nodes appended to their trace files and sends the strip's new
  sends, ends and marks, and the narration's new lines;
* the demo a terminal (or this server) runs writes its current step to ``demo.json`` beside the
  state file, which the page shows: the current cluster's, or with no cluster running the last
  demo's, as it ended.

Updates go to the page as server-sent events (``GET /api/events``). Controls are ``POST
/api/action`` (kill, restart, partition, heal, settle, drop), ``POST /api/kv`` (get, put) and
``POST /api/demo``; the server carries them out with the cluster's admin token, which the page
never sees.

Who may use it: the server listens on 127.0.0.1 only. The address it prints carries a random
key (``/?key=...``); opening it sets a cookie (HttpOnly, SameSite=Strict) and moves to ``/``,
so the key is not left in the address bar on a projector. Every other request needs that
cookie, a ``Host`` of this server (no DNS rebinding), and for a ``POST`` a JSON body and, when
the browser sends one, this server's own ``Origin`` (no cross-site request forgery).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

from aiohttp import ClientSession, ClientTimeout, web

from .demos import status_path
from .feed import Narrator, Strip, TraceTail, partition_groups, stat_mtime, verdicts, view_matrix

STATIC = Path(__file__).with_name("static")
#: How far back a page that connects is given the strip (seconds) and narration (lines).
HISTORY_S = 120.0
HISTORY_LINES = 200
_STATE_KEYS = ("cluster_id", "nodes", "removed", "blocked", "data_dir", "config", "t0_wall",
               "trace", "token")


class Dashboard:
    """The dashboard of the cluster recorded in ``state_path``. :meth:`start` binds
    ``host:port`` (0: the OS picks) and returns the address to open (with its key)."""

    def __init__(self, state_path: str, *, host: str = "127.0.0.1", port: int = 0,
                 poll_s: float = 0.2, key: Optional[str] = None, demos: Any = None):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the dashboard serves loopback only (127.0.0.1), not {host!r}")
        self.state_path = str(state_path)
        self.host, self.port, self.poll_s = host, port, poll_s
        self.key = key or secrets.token_urlsafe(18)
        self.url = ""
        self.watch_key = "cart"
        self._subscribers: set[asyncio.Queue] = set()
        self._runner: Optional[web.AppRunner] = None
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="dashboard")
        self._action_lock = threading.Lock()
        self._session: Optional[ClientSession] = None
        self.busy: Optional[str] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread = 0
        self.demos = demos                     # a DemoHost, for demos started from the page
        self.stats = {"records": 0, "sends": 0, "polls": 0, "snapshots": 0}
        self._reset(None)

    # -- following the state file ---------------------------------------------------------------

    def _reset(self, state: Optional[dict]) -> None:
        """Forget everything about the previous cluster; follow ``state``'s (or none)."""
        self.state = state
        t0 = float(state.get("t0_wall", 0.0)) if state else 0.0
        self.t0 = t0 or time.time()
        data_dir = Path(state["data_dir"]) if state else None
        self.tail = TraceTail(data_dir / "trace") if data_dir else None
        self.strip = Strip(t0=self.t0)
        self.narrator = Narrator(t0=self.t0)
        self.history: deque = deque()
        self.snapshot: dict = self._empty_snapshot()
        self._snapshot_text = ""
        self._demo_seen: Optional[tuple] = None
        self.demo_state: Optional[dict] = None

    def _empty_snapshot(self) -> dict:
        return {"cluster": None, "state_path": self.state_path,
                "message": f"no cluster running (no state file {self.state_path}); start one "
                           f"with `dynamo-lab cluster up --dashboard` or `dynamo-lab demo NAME`"}

    def _read_state(self) -> Optional[dict]:
        try:
            with open(self.state_path, encoding="utf-8") as fh:
                state = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or not all(k in state for k in ("cluster_id", "nodes")):
            return None
        return state

    def follow(self) -> bool:
        """Re-read the state file if it changed; True when it now names another cluster."""
        mtime = stat_mtime(self.state_path)
        if mtime == getattr(self, "_state_mtime", None):
            return False
        self._state_mtime = mtime
        state = self._read_state() if mtime else None
        old = self.state.get("cluster_id") if self.state else None
        new = state.get("cluster_id") if state else None
        if new != old:
            self._reset(state)
            self._broadcast("reset", {"cluster": new})
            self._broadcast("snapshot", dict(self.snapshot, now=0.0))
            return True
        if state is not None:
            self.state = state
        return False

    def nodes(self) -> list[str]:
        if not self.state:
            return []
        removed = set(self.state.get("removed", []))
        return [n["name"] for n in self.state["nodes"] if n["name"] not in removed]

    def _node(self, name: str) -> dict:
        return next(n for n in self.state["nodes"] if n["name"] == name)

    def running(self) -> dict[str, bool]:
        from ..tcp.cluster import is_node_process, pid_alive
        out = {}
        for n in self.nodes():
            pid = int(self._node(n).get("pid") or 0)
            out[n] = bool(pid) and pid_alive(pid) and is_node_process(pid, n)
        return out

    # -- serving ---------------------------------------------------------------------------------

    async def start(self) -> str:
        """Bind, start the loops, and return the address to open (with the key)."""
        app = web.Application(middlewares=[self._guard], client_max_size=2 * 1024 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC, show_index=False)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/snapshot", self._snapshot_handler)
        app.router.add_post("/api/action", self._action)
        app.router.add_post("/api/kv", self._kv)
        app.router.add_post("/api/watch", self._watch)
        app.router.add_post("/api/demo", self._demo)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/?key={self.key}"
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._session = ClientSession(timeout=ClientTimeout(total=2.0))
        self.follow()
        self._tasks = [asyncio.create_task(self._strip_loop()),
                       asyncio.create_task(self._poll_loop())]
        return self.url

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        for q in list(self._subscribers):
            q.put_nowait(None)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._executor.shutdown(wait=False, cancel_futures=True)

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        allowed = {f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"[::1]:{self.port}"}
        if request.host not in allowed:
            return web.Response(status=403, text=f"this dashboard answers only to "
                                                 f"http://127.0.0.1:{self.port}/")
        cookie = request.cookies.get(self.cookie_name, "")
        given = request.query.get("key", "")
        if request.path == "/" and given:
            if not hmac.compare_digest(given.encode(), self.key.encode()):
                return web.Response(status=403, text="wrong key: open the address the "
                                                     "dashboard printed")
            resp = web.HTTPFound("/")
            resp.set_cookie(self.cookie_name, self.key, httponly=True, samesite="Strict",
                            path="/")
            raise resp
        if not hmac.compare_digest(cookie.encode(), self.key.encode()):
            return web.Response(status=403, content_type="text/html", text=(
                "<h1>Open the address the dashboard printed</h1><p>It ends in "
                "<code>/?key=...</code>; the key keeps other users and web pages out.</p>"))
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin not in {f"http://{h}" for h in allowed}:
                return web.json_response({"ok": False, "error": "cross-origin request refused"},
                                         status=403)
            if request.content_type != "application/json":
                return web.json_response({"ok": False, "error": "send JSON"}, status=415)
        return await handler(request)

    @property
    def cookie_name(self) -> str:
        return f"dynamo_lab_dashboard_{self.port}"

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def _snapshot_handler(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot)

    # -- the stream ------------------------------------------------------------------------------

    def _broadcast(self, event: str, data: Any) -> None:
        if not self._subscribers:
            return
        text = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        for q in list(self._subscribers):
            if q.qsize() > 2000:         # a page that stopped reading: drop it; it reconnects
                self._subscribers.discard(q)
                q.put_nowait(None)
            else:
                q.put_nowait(text)

    def hello(self) -> dict:
        """What a page that connects gets first: the snapshot and the recent past."""
        sends = [x for kind, x in self.history if kind == "s"]
        ends = [x for kind, x in self.history if kind == "e"]
        marks = [x for kind, x in self.history if kind == "m"]
        return {"snapshot": self.snapshot, "now": round(time.time() - self.t0, 3),
                "sends": sends, "ends": ends, "marks": marks,
                "narration": self.narrator.lines[-HISTORY_LINES:], "demo": self.demo_state}

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        q: asyncio.Queue = asyncio.Queue()
        self._subscribers.add(q)
        try:
            await resp.write(f"retry: 1000\nevent: hello\ndata: "
                             f"{json.dumps(self.hello(), separators=(',', ':'))}\n\n".encode())
            while not self._closed:
                try:
                    text = await asyncio.wait_for(q.get(), 10.0)
                except asyncio.TimeoutError:
                    text = ": keep-alive\n\n"
                if text is None:
                    break
                chunks = [text]
                while not q.empty() and len(chunks) < 200:
                    more = q.get_nowait()
                    if more is None:
                        break
                    chunks.append(more)
                await resp.write("".join(chunks).encode())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._subscribers.discard(q)
        return resp

    async def _strip_loop(self) -> None:
        while not self._closed:
            try:
                self.follow()
                self._pump_trace()
                self._pump_demo()
            except Exception as exc:   # never let one bad read stop the page
                self._broadcast("error", {"text": f"dashboard: {exc!r}"})
            await asyncio.sleep(0.1)

    def _pump_trace(self) -> None:
        if self.tail is None:
            return
        records = self.tail.read()
        if not records:
            return
        self.stats["records"] += len(records)
        sends, ends, marks = self.strip.feed(records)
        lines = self.narrator.records(records)
        self.stats["sends"] += len(sends)
        now = time.time() - self.t0
        for kind, items in (("s", sends), ("e", ends), ("m", marks)):
            self.history.extend((kind, x) for x in items)
        while self.history and (self.history[0][1]["t"] < now - HISTORY_S
                                or len(self.history) > 60000):
            self.history.popleft()
        if sends or ends or marks:
            self._broadcast("strip", {"now": round(now, 3), "sends": sends, "ends": ends,
                                      "marks": marks})
        for line in lines:
            self._broadcast("say", line)

    def say(self, text: str, kind: str = "info") -> None:
        """A narration line from the dashboard itself (an action it carried out). Safe from
        any thread: the line is added and sent on the event loop."""
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self.say, text, kind)
            return
        line = self.narrator.say(time.time() - self.t0, text, kind)
        if line is not None:
            self._broadcast("say", line)

    def _pump_demo(self) -> None:
        """The demo's step: the current cluster's demo, or, with no cluster running, how the
        last demo ended (an earlier cluster's demo is not shown beside a new cluster)."""
        path = status_path(self.state_path)
        cluster = self.state.get("cluster_id") if self.state else None
        seen = (stat_mtime(path), cluster)
        if seen == self._demo_seen:
            return
        self._demo_seen = seen
        try:
            demo = json.loads(path.read_text(encoding="utf-8")) if seen[0] else None
        except (OSError, ValueError):
            return
        if isinstance(demo, dict) and cluster is not None and demo.get("cluster") != cluster:
            demo = None
        self.demo_state = demo if isinstance(demo, dict) else None
        self._broadcast("demo", self.demo_state)

    # -- polling the nodes -----------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while not self._closed:
            t = time.monotonic()
            try:
                await self.poll()
            except Exception as exc:
                self._broadcast("error", {"text": f"dashboard poll: {exc!r}"})
            await asyncio.sleep(max(0.02, self.poll_s - (time.monotonic() - t)))

    async def _get(self, http: str, path: str, token: str = "") -> Optional[dict]:
        from ..tcp.http_client import TOKEN_HEADER
        headers = {TOKEN_HEADER: token} if token else {}
        try:
            async with self._session.get(f"http://{http}{path}", headers=headers) as resp:
                if resp.status != 200:
                    return None
                return await resp.json()
        except (OSError, asyncio.TimeoutError, ValueError, Exception):
            return None

    async def poll(self) -> None:
        """Ask every running node for its status; send a snapshot if anything changed."""
        from ..tcp.http_client import kv_path
        if not self.state:
            return
        state = self.state
        nodes = self.nodes()
        running = self.running()
        token = str(state.get("token", ""))
        key = self.watch_key
        path = "/admin/local/" + kv_path(key)[len("/kv/"):]
        names = [n for n in nodes if running.get(n)]
        results = await asyncio.gather(*[self._get(self._node(n)["http"], "/status")
                                         for n in names],
                                       *[self._get(self._node(n)["http"], path, token)
                                         for n in names])
        if self.state is not state:         # another cluster while we asked
            return
        statuses: dict[str, Optional[dict]] = {n: None for n in nodes}
        local: dict[str, Optional[dict]] = {}
        for i, n in enumerate(names):
            statuses[n] = results[i]
            local[n] = results[len(names) + i]
        self.stats["polls"] += 1
        now = time.time() - self.t0
        verdict = verdicts(nodes, running, statuses, self.snapshot.get("verdicts"))
        for line in self.narrator.picture(now, verdict, statuses):
            self._broadcast("say", line)
        snap = self._build_snapshot(nodes, running, statuses, verdict, local, key)
        text = json.dumps(snap, sort_keys=True)
        if text != self._snapshot_text:
            self._snapshot_text = text
            self.snapshot = snap
            self.stats["snapshots"] += 1
            self._broadcast("snapshot", dict(snap, now=round(now, 3)))

    def _build_snapshot(self, nodes, running, statuses, verdict, local, key) -> dict:
        from ..hashing import key_hash
        state = self.state
        cfg = state.get("config", {})
        ring: dict[str, list[str]] = {}
        for n in nodes:
            st = statuses.get(n)
            if st and st.get("ring"):
                ring = st["ring"]
                break
        if not ring:
            ring = _default_ring(nodes, int(cfg.get("vnodes", 8)))
        preference = _preference(ring, key, int(cfg.get("n", 3)))
        blocked: set[tuple[str, str]] = {tuple(x) for x in state.get("blocked", [])}
        drop = 0.0
        per_node = {}
        for n in nodes:
            st = statuses.get(n)
            info = self._node(n)
            row: dict[str, Any] = {"pid": info.get("pid") if running.get(n) else None,
                                   "http": info.get("http"), "running": running.get(n, False)}
            if st is not None:
                faults = st.get("transport", {}).get("faults", {})
                blocked |= {tuple(x) for x in faults.get("blocked") or ()}
                p = float((faults.get("config") or {}).get("drop", 0.0) or 0.0)
                drop = max(drop, p)
                adm = st.get("admission", {})
                row.update({"generation": st.get("generation"), "keys": st.get("keys"),
                            "hints": {k: v for k, v in (st.get("hints") or {}).items() if v},
                            "inflight": adm.get("inflight", 0),
                            "max_inflight": adm.get("max_inflight"),
                            "errors": st.get("errors", 0), "status": st.get("status"),
                            "drop": p, "uptime_s": st.get("uptime_s"),
                            "stats": {k: v for k, v in (st.get("stats") or {}).items()
                                      if k in ("read_repairs", "hints_delivered",
                                               "hints_stored", "ae_keys_repaired",
                                               "keys_transferred", "puts_coordinated",
                                               "gets_coordinated")}})
            per_node[n] = row
        holders = {}
        for n, body in local.items():
            if body is None:
                continue
            own = [_version(v) for v in body.get("versions", [])]
            hints = {k: [_version(v) for v in vs] for k, vs in (body.get("hints") or {}).items()}
            if own or hints:
                holders[n] = {"own": own, "hints": hints}
        return {
            "cluster": {"id": state["cluster_id"], "tracing": bool(state.get("trace")),
                        "t0": self.t0, "demo": state.get("demo"),
                        "config": {k: cfg.get(k) for k in ("n", "r", "w", "vnodes",
                                                           "suspect_after_s",
                                                           "gossip_interval_s",
                                                           "read_repair", "hinted_handoff",
                                                           "anti_entropy")}},
            "state_path": self.state_path,
            "nodes": nodes, "ring": ring, "verdicts": verdict,
            "views": view_matrix(nodes, statuses), "per_node": per_node,
            "blocked": sorted(map(list, blocked)),
            "groups": partition_groups(nodes, blocked), "drop": drop,
            "watch": {"key": key, "position": str(key_hash(key)), "preference": preference,
                      "holders": holders},
            "busy": self.busy,
            "demo_host": {"running": self.demos.running()} if self.demos is not None else None,
        }

    # -- controls --------------------------------------------------------------------------------

    async def _json(self, request: web.Request) -> dict:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body must be JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object")
        return body

    async def _run(self, fn, *args) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, fn, *args)
        except ActionError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=exc.status)
        await self.poll()
        return web.json_response(dict(result, ok=True))

    async def _action(self, request: web.Request) -> web.Response:
        return await self._run(self.do_action, await self._json(request))

    async def _kv(self, request: web.Request) -> web.Response:
        return await self._run(self.do_kv, await self._json(request))

    async def _watch(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        key = body.get("key")
        _check_key(key)
        self.watch_key = key
        await self.poll()
        return web.json_response({"ok": True, "key": key})

    async def _demo(self, request: web.Request) -> web.Response:
        if self.demos is None:
            return web.json_response({"ok": False, "error": "demos are not available here"},
                                     status=404)
        return await self._run(self.demos.control, await self._json(request), self)

    def do_action(self, body: dict) -> dict:
        """Carry out one control (runs on a worker thread; one at a time)."""
        from ..errors import ConfigError
        from ..tcp.cluster import ClusterError
        action = body.get("action")
        if action not in ("kill", "restart", "partition", "heal", "settle", "drop"):
            raise ActionError(f"unknown action {action!r}")
        with self._action_lock:
            cluster, state = self._attach()
            try:
                self.busy = f"{action} {body.get('node') or ''}".strip()
                message = self._carry_out(cluster, action, body)
            except (ConfigError, ClusterError, ValueError) as exc:
                raise ActionError(str(exc)) from None
            finally:
                self.busy = None
                self._save(cluster, state)
        self.say(message, "action")
        return {"message": message}

    def _carry_out(self, cluster, action: str, body: dict) -> str:
        name = body.get("node")
        if action in ("kill", "restart"):
            if name not in cluster.nodes:
                raise ActionError(f"no node {name!r}; nodes are {', '.join(cluster.nodes)}")
        if action == "kill":
            pid = cluster.pids.get(name)
            if pid is None:
                raise ActionError(f"{name} is not running")
            cluster.crash(name)
            return f"kill -9 {pid}: {name} is gone"
        if action == "restart":
            if name in cluster.up():
                raise ActionError(f"{name} is already running")
            cluster.restart(name, converge=False)
            p = cluster._procs[name]
            return f"{name} restarted (pid {p.pid}, generation {p.generation}) over its store"
        if action == "partition":
            groups = body.get("groups")
            if not isinstance(groups, list) or not all(
                    isinstance(g, list) and all(isinstance(x, str) for x in g) for g in groups):
                raise ActionError("partition needs groups: [[\"A\",\"B\"], [\"C\",\"D\",\"E\"]]")
            groups = [g for g in groups if g]
            cluster.heal()
            cluster.partition(*groups)
            return "partitioned: " + " | ".join(", ".join(g) for g in groups)
        if action == "heal":
            cluster.heal()
            return "healed: every link restored (hints and repair now work in the background)"
        if action == "settle":
            cluster.heal()
            took = cluster.wait_quiet(float(body.get("timeout_s", 60.0)))
            return (f"settled after {took:.1f} s: every node sees every other up and no hints "
                    f"are held, so a read now meets every acknowledged write")
        p = body.get("probability")
        if type(p) not in (int, float) or not 0.0 <= p <= 1.0:
            raise ActionError("drop needs a probability between 0 and 1")
        cluster.drop(float(p))
        return (f"every node now loses {p:.0%} of the messages it sends" if p else
                "no more random message loss")

    def _attach(self):
        from ..cli import CliError, attach
        try:
            return attach(self.state_path)
        except CliError as exc:
            raise ActionError(str(exc)) from None

    def _save(self, cluster, state: dict) -> None:
        from ..cli import save_cluster
        if self._read_state() is not None:
            save_cluster(self.state_path, cluster, state)

    def do_kv(self, body: dict) -> dict:
        """One get or put from the cart panel (a worker thread): ``{"op", "key", "value",
        "context", "via"}``. The answer carries the context, which the page sends back with
        the next put: nobody pastes a context."""
        from ..runtime import client_timeout_s
        from ..node import NodeConfig
        from ..tcp.http_client import http_json, kv_path
        op, key = body.get("op"), body.get("key")
        if op not in ("get", "put"):
            raise ActionError("op is get or put")
        _check_key(key)
        if not self.state:
            raise ActionError("no cluster running")
        running = self.running()
        via = body.get("via") or ""
        if via and via not in running:
            raise ActionError(f"no node {via!r}")
        if via and not running[via]:
            raise ActionError(f"{via} is down: ask another node")
        if not via:
            pref = self.snapshot.get("watch", {}).get("preference", []) \
                if self.snapshot.get("watch", {}).get("key") == key else []
            order = pref + [n for n in self.nodes() if n not in pref]
            up = [n for n in order if running.get(n)]
            if not up:
                raise ActionError("no node is running")
            via = up[0]
        self.watch_key = key
        payload = None
        if op == "put":
            if "value" not in body:
                raise ActionError("put needs a value")
            payload = {"value": body["value"], "context": body.get("context") or None}
        cfg = self.state.get("config", {})
        timeout_s = client_timeout_s(NodeConfig(**{k: v for k, v in cfg.items()
                                                   if k != "cluster_key"})) + 5.0
        try:
            code, answer = http_json("GET" if op == "get" else "PUT", self._node(via)["http"],
                                     kv_path(key), payload, timeout_s=timeout_s,
                                     client="lecturer")
        except (OSError, ValueError) as exc:
            raise ActionError(f"{via} did not answer: {exc}") from None
        if not isinstance(answer, dict):
            raise ActionError(f"{via} answered {code}: {answer!r}")
        clock = _clock_text(answer.get("context"), self.state.get("cluster_key", ""))
        if op == "put" and code == 200 and not payload["context"]:
            self.say(f"put {key} via {via} was a blind write (no context): it is concurrent "
                     f"with whatever is there", "action")
        return {"code": code, "via": via, "answer": answer, "clock": clock}


class ActionError(Exception):
    """A control the dashboard refuses or could not carry out (the page shows the message)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _check_key(key: Any) -> None:
    from ..errors import InvalidKey
    from ..hashing import check_key
    if not isinstance(key, str):
        raise ActionError("key must be a string")
    try:
        check_key(key)
    except InvalidKey as exc:
        raise ActionError(str(exc)) from None


def _version(v: dict) -> dict:
    from ..vclock import VectorClock
    try:
        clock = str(VectorClock.from_json(v.get("clock")))
    except Exception:
        clock = json.dumps(v.get("clock"))
    return {"value": v.get("value"), "deleted": bool(v.get("deleted")), "clock": clock}


def _clock_text(context: Optional[str], cluster_key: str) -> str:
    from ..versions import decode_context
    if not context or not cluster_key:
        return ""
    try:
        return str(decode_context(context, cluster_key))
    except Exception:
        return ""


def _default_ring(nodes: list[str], vnodes: int) -> dict[str, list[str]]:
    from ..node.common import default_tokens
    return {n: [str(t) for t in default_tokens(n, vnodes)] for n in nodes}


def _preference(ring: dict[str, list[str]], key: str, n: int) -> list[str]:
    from ..ring import Ring
    try:
        r = Ring.from_tokens({k: [int(t) for t in v] for k, v in ring.items() if v})
        return r.preference_list(key, min(n, len(r.nodes)))
    except Exception:
        return []


# -- running it ------------------------------------------------------------------------------------

class DashboardThread:
    """A dashboard on its own event loop in a daemon thread (what ``dynamo-lab demo
    --dashboard`` and the tests use): :meth:`start` returns the address, :meth:`stop` ends it."""

    def __init__(self, state_path: str, **kw):
        self.dashboard = Dashboard(state_path, **kw)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="dashboard")

    def start(self) -> str:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.dashboard.start(), self._loop).result(30)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.dashboard.close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def serve(state_path: str, *, port: int = 0, poll_s: float = 0.2, open_browser: bool = False,
          announce=print) -> int:
    """Run the dashboard until Ctrl-C or SIGTERM (``dynamo-lab dashboard``)."""
    import signal
    from .demos import DemoHost

    async def main() -> None:
        dash = Dashboard(state_path, port=port, poll_s=poll_s, demos=DemoHost(state_path))
        url = await dash.start()
        announce(f"dashboard: {url}")
        announce("open it in a browser on this machine (the key in it keeps others out); "
                 "Ctrl-C stops the dashboard, not the cluster")
        if open_browser:
            import webbrowser
            webbrowser.open(url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):    # pragma: no cover - Windows
                pass
        try:
            await stop.wait()
        finally:
            if dash.demos is not None:
                await loop.run_in_executor(None, dash.demos.shutdown)
            await dash.close()

    asyncio.run(main())
    return 0
