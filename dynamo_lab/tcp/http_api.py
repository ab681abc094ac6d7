"""The HTTP API of one node (aiohttp): what clients, the CLI and ``TcpCluster`` talk to.

Client endpoints (JSON in, JSON out)::

    GET    /kv/{key}                              -> 200 {"values": [...], "context": "...",
                                                          "coordinator": "A", "replies": [...]}
    PUT    /kv/{key}   {"value": <json>, "context": "<str>" | null}   -> 200 {"context": ...}
    DELETE /kv/{key}   {"context": "<str>" | null}  (or ?context=...)  -> 200 {"context": ...}
    GET    /status                                -> ring, membership, suspects, hints, keys

A request may name its client in ``X-Dynamo-Client`` (``TcpCluster`` sends the client's name):
the node's trace then draws it on that client's lifeline.

Status codes mean what they say: 404 the key has no value (the body still carries the context
to write with), 400 bad input (the body's ``error`` says what is wrong; nothing was written),
413 a body over the size limit, 503 the quorum was not reached (``may_have_applied`` says
whether the write may still be on some replica) or the node is overloaded (``error_kind``
``"overloaded"``, a ``Retry-After`` header: it refused the request at once, nothing applied). Every answer has the fields of the node's
``ClientReply`` (``ok``, ``error``, ``needed``, ``got``...), so a client can rebuild it.

Admin endpoints, for demos and tests. Every one of them needs the cluster's token in the
``X-Dynamo-Token`` header (the CLI and ``TcpCluster`` read it from the state file), loopback
or not, and refuses a request whose ``Origin`` is not this node itself: a web page the
lecturer has open cannot forge a ``POST`` (cross-site request forgery), since it can neither
read the token nor send a custom header without a CORS preflight this API never grants::

    POST /admin/partition  {"groups": [["A","B"], ["C","D","E"]], "one_way": false}
                           or {"blocked": [["A","C"], ...]}     (directed links to cut)
    POST /admin/drop       {"probability": 0.2, "peers": ["C"], "seed": 1}
    POST /admin/heal       restore every link and the node's starting fault model
    GET  /admin/faults     the faults this node applies (cut links, its FaultConfig)
    POST /admin/peers      {"B": "127.0.0.1:7002", ...}    add to the address book
    POST /admin/leave      leave the ring for good (hand off data, then say "left")
    GET  /admin/local/{key}  the versions this node holds for key (own data and hints)
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import socket
from typing import Any, Optional
from urllib.parse import unquote_to_bytes

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import ClientError
from ..messages import ClientReply
from .framing import split_address
from .transport import ACCEPT_BACKLOG
from .http_client import CLIENT_HEADER, TOKEN_HEADER

RUNTIME = web.AppKey("runtime", object)     # the NodeRuntime an application serves
MAX_BODY = web.AppKey("max_body", int)
_EXTRA_BODY_BYTES = 64 * 1024   # room around a maximal value for the JSON wrapper and context


class BadRequest(ValueError):
    """Input the API refuses with a 400 and this message."""


class ClientMistake(Exception):
    """A client broke HTTP itself (a body that never arrives): one INFO line, this status,
    and the connection is closed, since the stream is out of step."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def key_from_raw_path(raw_path: str, prefix: str) -> str:
    """The key a URL names: the raw (still percent-encoded) path after ``prefix``, decoded
    as UTF-8, strictly. aiohttp leaves a percent-encoding that is not UTF-8 (``%FF%FE``) as
    it is, which would make ``/kv/%FF%FE`` and ``/kv/%25FF%25FE`` one key; here it is a
    :class:`BadRequest`."""
    raw = raw_path[len(prefix):]
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"the key in the URL ({raw[:60]}) is not UTF-8 once percent-decoded; "
                         f"percent-encode the UTF-8 bytes of the key, e.g. /kv/caf%C3%A9 for "
                         f"'caf\u00e9'") from None


# -- pure helpers (tested with Hypothesis) ----------------------------------------------------

def _reject_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not JSON; use null or a finite number")


def parse_json(raw: bytes, what: str = "body") -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, bounded nesting. Raises :class:`BadRequest`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{what} is not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except BadRequest:
        raise
    except RecursionError:
        raise BadRequest(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"{what} is not valid JSON ({exc}); send e.g. "
                         f"{{\"value\": [\"book\"], \"context\": null}}") from None


def _context_of(body: dict, what: str) -> Optional[str]:
    ctx = body.get("context")
    if ctx is not None and not isinstance(ctx, str):
        raise BadRequest(f"context must be the string a GET returned, or null for a blind "
                         f"{what}; got {type(ctx).__name__}")
    return ctx


def parse_put_body(raw: bytes) -> tuple[Any, Optional[str]]:
    """``(value, context)`` from a PUT body ``{"value": <json>, "context": <str|null>}``."""
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise BadRequest(f"PUT body must be a JSON object {{\"value\": ..., \"context\": ...}}; "
                         f"got {type(body).__name__}")
    if "value" not in body:
        raise BadRequest("PUT body needs a \"value\" (any JSON) and, to update, the "
                         "\"context\" a GET returned")
    extra = sorted(set(body) - {"value", "context"})
    if extra:
        raise BadRequest(f"PUT body has unknown fields {extra}; only \"value\" and \"context\"")
    return body["value"], _context_of(body, "write")


def parse_delete_body(raw: bytes, query_context: Optional[str]) -> Optional[str]:
    """The context of a DELETE: from a body ``{"context": ...}`` or the ``context`` query."""
    if not raw.strip():
        return query_context
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise BadRequest(f"DELETE body must be a JSON object {{\"context\": ...}}; "
                         f"got {type(body).__name__}")
    extra = sorted(set(body) - {"context"})
    if extra:
        raise BadRequest(f"DELETE body has unknown fields {extra}; only \"context\"")
    return _context_of(body, "delete")


def reply_to_json(reply: ClientReply) -> dict:
    """Every field of a ``ClientReply`` (tuples as lists)."""
    return {"ok": reply.ok, "op": reply.op, "key": reply.key, "values": list(reply.values),
            "context": reply.context, "coordinator": reply.coordinator,
            "replies": list(reply.replies), "error_kind": reply.error_kind, "error": reply.error,
            "may_have_applied": reply.may_have_applied, "needed": reply.needed, "got": reply.got}


def reply_from_json(obj: Any, req_id: str = "") -> ClientReply:
    """Rebuild a ``ClientReply`` from :func:`reply_to_json`; ``ValueError`` if malformed."""
    if not isinstance(obj, dict) or not isinstance(obj.get("ok"), bool):
        raise ValueError(f"not a dynamo-lab reply: {str(obj)[:200]}")
    return ClientReply(req_id, str(obj.get("op", "")), str(obj.get("key", "")), obj["ok"],
                       tuple(obj.get("values") or ()), obj.get("context"),
                       str(obj.get("coordinator") or ""), obj.get("error_kind"), obj.get("error"),
                       bool(obj.get("may_have_applied")), int(obj.get("needed") or 0),
                       int(obj.get("got") or 0), tuple(obj.get("replies") or ()))


def status_for(reply: ClientReply) -> int:
    """The HTTP status that says what happened."""
    if reply.ok:
        return 404 if reply.op == "get" and not reply.values else 200
    return {"invalid": 400, "quorum": 503, "overloaded": 503, "expired": 503}.get(reply.error_kind or "", 500)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"ok": False, "error": message, **extra}, status=status)


# -- handlers ---------------------------------------------------------------------------------

def make_app(runtime) -> web.Application:
    """The aiohttp application serving ``runtime`` (a :class:`NodeRuntime`)."""
    limit = runtime.opts.config.max_value_bytes + _EXTRA_BODY_BYTES
    app = web.Application(client_max_size=limit, middlewares=[_errors_middleware(runtime)])
    app[RUNTIME] = runtime
    app[MAX_BODY] = limit
    app.router.add_get("/kv/{key:.+}", _get)
    app.router.add_put("/kv/{key:.+}", _put)
    app.router.add_delete("/kv/{key:.+}", _delete)
    app.router.add_get("/status", _status)
    app.router.add_post("/admin/partition", _admin(_partition))
    app.router.add_post("/admin/drop", _admin(_drop))
    app.router.add_post("/admin/heal", _admin(_heal))
    app.router.add_get("/admin/faults", _admin(_faults))
    app.router.add_post("/admin/peers", _admin(_peers))
    app.router.add_post("/admin/leave", _admin(_leave))
    app.router.add_get("/admin/local/{key:.+}", _admin(_local))
    return app


def _errors_middleware(runtime):
    @web.middleware
    async def middleware(request: web.Request, handler):
        # Client mistakes are one INFO line each (never a traceback: they are not bugs).
        try:
            return await handler(request)
        except BadRequest as exc:
            runtime.log.info("HTTP 400 for %s %s: %s", request.method, request.path, exc)
            return _error(400, str(exc))
        except ClientMistake as exc:
            runtime.log.info("HTTP %d for %s %s from %s: %s", exc.status, request.method,
                             request.path, request.remote, exc)
            resp = _error(exc.status, str(exc))
            resp.force_close()
            return resp
        except HttpProcessingError as exc:     # a body cut short, a broken chunked encoding
            runtime.log.info("HTTP 400 for %s %s from %s: bad body: %s", request.method,
                             request.path, request.remote, exc.message or exc)
            resp = _error(400, f"the request body is malformed: {exc.message or exc}")
            resp.force_close()
            return resp
        except ConnectionError as exc:
            runtime.log.info("client %s hung up during %s %s (%s)", request.remote,
                             request.method, request.path, type(exc).__name__)
            resp = _error(400, "connection lost")    # nobody reads it; aiohttp drops it
            resp.force_close()
            return resp
        except asyncio.CancelledError:
            transport = request.transport
            if transport is None or transport.is_closing():
                runtime.log.info("client %s hung up during %s %s", request.remote,
                                 request.method, request.path)
            raise
        except web.HTTPRequestEntityTooLarge as exc:
            runtime.log.info("HTTP 413 for %s %s from %s: %s", request.method, request.path,
                             request.remote, exc.text)
            return _error(413, f"body too large ({exc.text}); the limit is "
                               f"{request.app[MAX_BODY]} bytes")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return _error(exc.status, exc.reason)
            raise
        except Exception:  # a bug: answer 500, log it, keep the node up
            runtime.log.exception("HTTP handler failed for %s %s", request.method, request.path)
            return _error(500, "internal error (see the node's log)")
    return middleware


def _answer(reply: ClientReply) -> web.Response:
    headers = {"Retry-After": "1"} if reply.error_kind == "overloaded" else None
    return web.json_response(reply_to_json(reply), status=status_for(reply), headers=headers)


async def _reply(request: web.Request, kind: str, value: Any = None,
                 context: Optional[str] = None) -> web.Response:
    key = key_from_raw_path(request.rel_url.raw_path, "/kv/")
    client = request.headers.get(CLIENT_HEADER, "")[:64]
    return _answer(await request.app[RUNTIME].request(kind, key, value, context,
                                                      client if client.isprintable() else ""))


def _refused(request: web.Request, kind: str) -> Optional[web.Response]:
    """The 503 of a node at its admission limit, decided before the body is read or parsed."""
    key = key_from_raw_path(request.rel_url.raw_path, "/kv/")
    reply = request.app[RUNTIME].refusal(kind, key)
    return None if reply is None else _answer(reply)


async def _get(request: web.Request) -> web.Response:
    return await _reply(request, "get")


async def read_body(request: web.Request) -> bytes:
    """The whole body, or :class:`ClientMistake` (408) if it does not arrive within the
    node's body timeout (a Content-Length larger than what is sent used to hang the handler
    for ever)."""
    timeout_s = request.app[RUNTIME].opts.http_body_timeout_s
    try:
        return await asyncio.wait_for(request.read(), timeout_s)
    except asyncio.TimeoutError:
        raise ClientMistake(408, f"the body did not arrive within {timeout_s:g} s (Content-Length "
                                 f"{request.content_length}); send the whole body at once") from None


async def _put(request: web.Request) -> web.Response:
    refused = _refused(request, "put")
    if refused is not None:
        return refused
    value, context = parse_put_body(await read_body(request))
    return await _reply(request, "put", value, context)


async def _delete(request: web.Request) -> web.Response:
    refused = _refused(request, "delete")
    if refused is not None:
        return refused
    context = parse_delete_body(await read_body(request), request.query.get("context"))
    return await _reply(request, "delete", None, context)


async def _status(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    await runtime.store_free()      # the store is the commit thread's while a commit runs
    return web.json_response(runtime.status())


# -- admin ------------------------------------------------------------------------------------

def admin_refusal(token_header: Optional[str], origin: Optional[str], token: str,
                  own_origins: tuple[str, ...] = ()) -> str:
    """Why an admin request must be refused ("" if it may go ahead): no token configured, a
    missing or wrong token, or an ``Origin`` other than this node's own (a browser page)."""
    if not token:
        return ("admin endpoints are off: this node was started without a token "
                "(set DYNAMO_LAB_TOKEN when starting it)")
    if origin is not None and origin not in own_origins:
        return (f"cross-origin admin requests are refused (Origin: {origin[:100]}); use the "
                f"dynamo-lab CLI or curl")
    if not token_header or not hmac.compare_digest(token_header.encode("utf-8", "replace"),
                                                   token.encode("utf-8")):
        return (f"admin endpoints need the cluster's token in the {TOKEN_HEADER} header (the "
                f"\"token\" of the state file; `dynamo-lab cluster` commands send it for you)")
    return ""


def _admin(handler):
    async def guarded(request: web.Request) -> web.Response:
        runtime = request.app[RUNTIME]
        http = runtime.http_address
        why = admin_refusal(request.headers.get(TOKEN_HEADER), request.headers.get("Origin"),
                            runtime.opts.token, (f"http://{http}",) if http else ())
        if why:
            runtime.log.warning("refused admin request %s %s from %s: %s", request.method,
                                request.path, request.remote, why)
            return _error(403, why)
        return await handler(request)
    return guarded


async def _json_object(request: web.Request) -> dict:
    raw = await read_body(request)
    body = parse_json(raw) if raw.strip() else {}
    if not isinstance(body, dict):
        raise BadRequest(f"body must be a JSON object, got {type(body).__name__}")
    return body


def _names(obj: Any, what: str) -> list[str]:
    if not isinstance(obj, list) or not all(isinstance(x, str) and x for x in obj):
        raise BadRequest(f"{what} must be a list of node names, e.g. [\"A\", \"B\"]")
    return obj


async def _partition(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await _json_object(request)
    one_way = body.get("one_way", False)
    if not isinstance(one_way, bool):
        raise BadRequest("one_way must be true or false")
    if "blocked" in body:
        links = body["blocked"]
        if not isinstance(links, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                for p in links):
            raise BadRequest("blocked must be a list of [src, dst] pairs of node names")
        runtime.faults.blocked.update((a, b) for a, b in links)
    else:
        groups = body.get("groups")
        if not isinstance(groups, list) or len(groups) < 2:
            raise BadRequest("partition needs {\"groups\": [[\"A\",\"B\"], [\"C\",\"D\",\"E\"]]} "
                             "(at least two groups) or {\"blocked\": [[src, dst], ...]}")
        runtime.faults.partition([_names(g, "each group") for g in groups], one_way)
    runtime.log.info("partition: blocked links now %s", sorted(runtime.faults.blocked))
    return web.json_response(runtime.faults.to_json())


async def _drop(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await _json_object(request)
    p = body.get("probability")
    if type(p) not in (int, float) or not (0.0 <= p <= 1.0) or not math.isfinite(p):
        raise BadRequest("drop needs {\"probability\": p} with 0 <= p <= 1")
    seed = body.get("seed")
    if seed is not None and type(seed) is not int:
        raise BadRequest("seed must be an integer")
    runtime.set_drop(float(p), _names(body.get("peers", []), "peers"), seed)
    return web.json_response(runtime.faults.to_json())


async def _heal(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    runtime.heal()
    runtime.log.info("healed: every link restored")
    return web.json_response(runtime.faults.to_json())


async def _faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[RUNTIME].faults.to_json())


async def _peers(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    body = await _json_object(request)
    for node, address in body.items():
        if not isinstance(address, str):
            raise BadRequest(f"address of {node} must be a string HOST:PORT")
        try:
            split_address(address)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    book = runtime.transport.address_book
    book.update({k: v for k, v in body.items() if k != runtime.opts.node_id})
    return web.json_response(dict(sorted(book.items())))


async def _leave(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    runtime.leave()
    return web.json_response({"node": runtime.opts.node_id, "status": "leaving"})


async def _local(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    key = key_from_raw_path(request.rel_url.raw_path, "/admin/local/")
    await runtime.store_free()
    store = runtime.store
    try:
        versions = store.get(key)
        hints = {n: store.get_hint(n, key) for n in store.hinted_nodes()}
    except ClientError as exc:
        raise BadRequest(str(exc)) from None
    return web.json_response({"node": runtime.opts.node_id, "key": key,
                              "versions": [v.to_json() for v in versions],
                              "hints": {n: [v.to_json() for v in vs]
                                        for n, vs in hints.items() if vs}})


class _Refused(asyncio.Protocol):
    """A connection over the limit: closed as soon as it is made, so its descriptor is freed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()


class CappedSite(web.SockSite):
    """A ``SockSite`` that keeps at most ``max_connections`` HTTP connections open, so that
    idle clients cannot use up the process's file descriptors (which stops the node: no
    accept, no SQLite, no peer connection). At the limit, the oldest connection that is idle
    (waiting for its next request, or still dribbling its headers) is closed to make room for
    the new one; if none is idle, the new one is closed at once. Each case is counted and
    logged (the node's log filter keeps repeated lines down)."""

    def __init__(self, runner: web.AppRunner, sock: socket.socket, *, max_connections: int,
                 log, **kw):
        super().__init__(runner, sock, **kw)
        self.max_connections = max_connections
        self.log = log
        self.evicted = 0
        self.refused = 0

    def _factory(self):
        server = self._runner.server
        connections = server.connections
        if len(connections) >= self.max_connections:
            idle = next((h for h in connections if _is_idle(h)), None)
            if idle is None:
                self.refused += 1
                self.log.warning("HTTP connection limit (%d) reached and none idle; refusing "
                                 "a new connection", self.max_connections)
                return _Refused()
            self.evicted += 1
            self.log.info("HTTP connection limit (%d) reached; closing the oldest idle "
                          "connection", self.max_connections)
            idle.force_close()
        return server()

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, sock=self._sock,
                                                backlog=self._backlog)


def _is_idle(handler) -> bool:
    # aiohttp's RequestHandler waits on _waiter between requests (and before the first one
    # is complete); a handler running a request has none pending.
    waiter = getattr(handler, "_waiter", None)
    return waiter is not None and not waiter.done()


async def start_http(runtime, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve the API on ``host:port`` (0: the OS picks); returns the runner and ``HOST:PORT``.

    A connection that sends no complete request for ``http_idle_timeout_s`` (idle between
    requests, or never finishing its headers) is closed: aiohttp's keep-alive timer, which it
    starts on connect. At most ``max_http_connections`` are open at once (:class:`CappedSite`).
    """
    opts = runtime.opts
    # shutdown_timeout: on SIGTERM, in-flight requests get this long to finish.
    # handler_cancellation: a client that hangs up (or times out) cancels its handler, which
    # frees its admission slot at once instead of holding it until the coordinator answers.
    runner = web.AppRunner(make_app(runtime), access_log=None, shutdown_timeout=2.0,
                           handler_cancellation=True,
                           keepalive_timeout=opts.http_idle_timeout_s,
                           # after an early answer (408, 413), read what is left of the body
                           # for at most this long before closing (aiohttp's default: 10 s)
                           lingering_time=1.0)
    await runner.setup()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        await runner.cleanup()
        raise
    site = CappedSite(runner, sock, max_connections=opts.max_http_connections, log=runtime.log,
                      backlog=ACCEPT_BACKLOG)
    await site.start()
    runtime.http_site = site
    bound = sock.getsockname()
    return runner, f"{bound[0]}:{bound[1]}"
