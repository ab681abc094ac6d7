"""Overload, bad keys and slow or careless clients (issue 8, item 4), on a live node.

Before: past its capacity a node queued every request (latency exploded, goodput fell);
``PUT /kv/%FF%FE`` was stored under the literal key ``%FF%FE`` (one key, two URLs); a body
shorter than its Content-Length hung the handler for ever and was logged as a bug; a client
hang-up was an ERROR; 400 idle connections under ``ulimit -n 256`` stopped the node and
flooded its log. Each is checked here against a real node on 127.0.0.1 (port 0).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import ClientSession, ClientTimeout
from yarl import URL

from dynamo_lab.tcp.http_api import BadRequest, key_from_raw_path
from dynamo_lab.tcp.http_client import http_json
from dynamo_lab.tcp.process import RepeatFilter

from test_tcp_robustness import SECRET, live_node

ROOT = Path(__file__).resolve().parents[1]


def node(tmp_path, members=("A",), request_timeout_s: float = 0.5, **options):
    """Node A on a private loop. With ``members=("A", "B")`` B never exists: every request
    then waits ``request_timeout_s`` for it (a request held in flight)."""
    return live_node(tmp_path, members=members, options=options,
                     request_timeout_s=request_timeout_s)


def wait_until(loop, check, timeout_s: float, what: str) -> float:
    t0 = loop.time()
    while not check():
        assert loop.time() - t0 < timeout_s, f"{what} not within {timeout_s} s"
        loop.run_until_complete(asyncio.sleep(0.01))
    return loop.time() - t0


# -- admission control ----------------------------------------------------------------------------

def test_past_its_limit_a_node_refuses_at_once_instead_of_queueing(tmp_path):
    with node(tmp_path, members=("A", "B"), max_inflight=2, request_timeout_s=1.0) as (loop, rt):
        async def scenario():
            held = [asyncio.ensure_future(rt.request("get", f"k{i}")) for i in range(2)]
            await asyncio.sleep(0.05)
            assert rt.inflight == 2
            t0 = loop.time()
            refused = await rt.request("put", "k9", ["x"])
            fast = loop.time() - t0
            assert not any(h.done() for h in held), "the admitted ones are still running"
            first = await asyncio.gather(*held)
            again = await rt.request("get", "k0")           # a slot is free again
            return refused, fast, first, again

        refused, fast, first, again = loop.run_until_complete(scenario())
        assert not refused.ok and refused.error_kind == "overloaded" and fast < 0.1
        assert "overloaded" in refused.error and not refused.may_have_applied
        assert [r.error_kind for r in first] == ["quorum", "quorum"]   # B never answers
        assert again.error_kind == "quorum" and rt.inflight == 0
        assert rt.status()["admission"] == {"inflight": 0, "max_inflight": 2, "overloaded": 1}
        assert len(rt.store) == 0, "the refused put wrote nothing"


def test_overloaded_is_a_503_with_retry_after_and_a_client_that_gives_up_frees_its_slot(tmp_path):
    with node(tmp_path, members=("A", "B"), max_inflight=2, request_timeout_s=5.0) as (loop, rt):
        base = f"http://{rt.http_address}/kv/"

        async def scenario():
            async with ClientSession() as s:
                async def impatient(i):
                    try:
                        async with s.get(base + f"k{i}", timeout=ClientTimeout(total=1.0)):
                            pass
                    except asyncio.TimeoutError:
                        return "gave up"
                tasks = [asyncio.ensure_future(impatient(i)) for i in range(2)]
                while rt.inflight < 2:
                    await asyncio.sleep(0.01)
                async with s.put(base + "k9", data=json.dumps({"value": 1})) as resp:
                    status, retry, body = resp.status, resp.headers.get("Retry-After"), await resp.json()
                # Refused before its body is read: a body that never comes costs nothing.
                t0 = loop.time()
                raw = await _raw(rt.http_address, b"PUT /kv/k8 HTTP/1.1\r\nHost: x\r\n"
                                                  b"Content-Length: 100\r\n\r\n", read_s=5)
                early = (raw.split(b"\r\n", 1)[0], loop.time() - t0)
                return status, retry, body, early, await asyncio.gather(*tasks)

        status, retry, body, early, gave_up = loop.run_until_complete(scenario())
        assert status == 503 and retry == "1" and body["error_kind"] == "overloaded"
        assert early[0] == b"HTTP/1.1 503 Service Unavailable" and early[1] < 2.5, early
        assert gave_up == ["gave up", "gave up"]
        # The coordinator would answer only after 5 s; the hang-ups (at 1 s) free the slots now.
        wait_until(loop, lambda: rt.inflight == 0, 1.5, "slots freed by the hang-ups")


# -- keys in URLs ---------------------------------------------------------------------------------

def test_a_url_key_that_is_not_utf8_is_a_400_not_another_url_for_the_same_key(tmp_path):
    assert key_from_raw_path("/kv/caf%C3%A9", "/kv/") == "caf\u00e9"
    assert key_from_raw_path("/kv/%25FF%25FE", "/kv/") == "%FF%FE"
    assert key_from_raw_path("/kv/a%2Fb+c", "/kv/") == "a/b+c"
    with pytest.raises(BadRequest, match="not UTF-8 once percent-decoded"):
        key_from_raw_path("/kv/%FF%FE", "/kv/")
    with node(tmp_path) as (loop, rt):
        async def put(raw_path):
            async with ClientSession() as s:
                url = URL(f"http://{rt.http_address}{raw_path}", encoded=True)
                async with s.put(url, data=json.dumps({"value": 1})) as resp:
                    return resp.status, await resp.json()

        code, body = loop.run_until_complete(put("/kv/%FF%FE"))
        assert code == 400 and "not UTF-8" in body["error"]
        assert list(rt.store.keys()) == []
        code, body = loop.run_until_complete(put("/kv/%25FF%25FE"))
        assert code == 200 and body["key"] == "%FF%FE"
        assert list(rt.store.keys()) == ["%FF%FE"]
        code, body = loop.run_until_complete(put("/kv/caf%C3%A9"))
        assert code == 200 and body["key"] == "caf\u00e9"


# -- slow and careless clients ----------------------------------------------------------------------

async def _raw(address: str, data: bytes, *, close_after: bool = False, read_s: float = 5.0):
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    if close_after:
        writer.close()
        return b""
    try:
        return await asyncio.wait_for(reader.read(), read_s)   # until the node closes
    finally:
        writer.close()


def _no_bugs_logged(caplog) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


def test_a_body_shorter_than_its_content_length_gets_a_408_and_one_info_line(tmp_path, caplog):
    with node(tmp_path, http_body_timeout_s=0.3) as (loop, rt):
        with caplog.at_level(logging.INFO):
            answer = loop.run_until_complete(_raw(rt.http_address,
                b"PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"value\""))
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.3 s" in answer
        lines = [r for r in caplog.records if "did not arrive" in r.getMessage()]
        assert len(lines) == 1 and lines[0].levelno == logging.INFO
        _no_bugs_logged(caplog)
        assert len(rt.store) == 0


def test_a_client_that_hangs_up_mid_body_is_one_info_line(tmp_path, caplog):
    with node(tmp_path) as (loop, rt):
        with caplog.at_level(logging.INFO):
            loop.run_until_complete(_raw(rt.http_address,
                b"PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"va",
                close_after=True))
            wait_until(loop, lambda: "hung up" in caplog.text, 5.0, "the hang-up line")
        assert [r.levelno for r in caplog.records if "hung up" in r.getMessage()] == [logging.INFO]
        _no_bugs_logged(caplog)
        assert http_ok(loop, rt)


def http_ok(loop, rt) -> bool:
    async def get():
        async with ClientSession() as s:
            async with s.get(f"http://{rt.http_address}/status") as resp:
                return resp.status == 200
    return loop.run_until_complete(get())


@pytest.mark.parametrize("data", [b"", b"GET /status HTTP/1.1\r\nHo"])
def test_a_connection_without_a_complete_request_is_closed_after_the_idle_timeout(tmp_path, data):
    with node(tmp_path, http_idle_timeout_s=0.3) as (loop, rt):
        t0 = time.monotonic()
        assert loop.run_until_complete(_raw(rt.http_address, data)) == b""
        assert time.monotonic() - t0 < 4.0


def test_idle_connections_beyond_the_cap_make_room_for_new_clients(tmp_path):
    with node(tmp_path, max_http_connections=8) as (loop, rt):
        host, port = rt.http_address.rsplit(":", 1)

        async def hog_then_ask():
            hogs = [await asyncio.open_connection(host, int(port)) for _ in range(20)]
            await asyncio.sleep(0.1)
            open_now = len(rt._http_runner.server.connections)
            async with ClientSession() as s:
                async with s.get(f"http://{rt.http_address}/status") as resp:
                    status = resp.status
            for _r, w in hogs:
                w.close()
            return open_now, status

        open_now, status = loop.run_until_complete(hog_then_ask())
        assert open_now <= 8 and status == 200
        assert rt.http_site.evicted >= 1


def test_repeated_log_lines_are_held_back_and_counted():
    now = [0.0]
    f = RepeatFilter(burst=3, window_s=10.0, clock=lambda: now[0])

    def rec(msg, name="x"):
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, (), None)

    passed = [f.filter(rec("accept() failed")) for _ in range(100)]
    assert passed.count(True) == 3
    assert f.filter(rec("something else"))
    now[0] = 11.0
    r = rec("accept() failed")
    assert f.filter(r) and "[97 more like this held back]" in r.msg


# -- a real node process under `ulimit -n 256` ------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="sets RLIMIT_NOFILE of a child on Linux")
def test_400_idle_connections_under_ulimit_256_neither_stop_the_node_nor_flood_its_log(tmp_path):
    log = tmp_path / "A.log"
    ready = tmp_path / "ready.json"

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    env = dict(os.environ, PYTHONPATH=str(ROOT), DYNAMO_LAB_SECRET=SECRET)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dynamo_lab.cli", "node", "--id", "A",
                                 "--members", "A", "--n", "1", "--r", "1", "--w", "1",
                                 "--data-dir", str(tmp_path), "--ready-file", str(ready),
                                 "--exit-with-parent"], stdout=out, stderr=subprocess.STDOUT,
                                env=env, preexec_fn=limit)
    socks = []
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        http = json.loads(ready.read_text())["http"]
        host, port = http.rsplit(":", 1)
        import socket
        t0 = time.monotonic()
        for _ in range(400):              # all at once, as a burst of idle clients would
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, int(port)))
            socks.append(s)
        import selectors
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_WRITE)
        pending = len(socks)
        while pending:                    # every one of them got through accept()
            assert time.monotonic() - t0 < 30, f"{pending} connections never accepted"
            for key, _ev in sel.select(timeout=1.0):
                sel.unregister(key.fileobj)
                pending -= 1
        sel.close()
        code, body = http_json("PUT", http, "/kv/still-here", {"value": 1}, timeout_s=10)
        assert code == 200, body
        code, body = http_json("GET", http, "/kv/still-here", timeout_s=10)
        assert code == 200 and body["values"] == [1]
        print(f"served through the flood after {time.monotonic() - t0:.1f} s")
        assert proc.poll() is None
        size = log.stat().st_size
        assert size < 50_000, f"log grew to {size} bytes"
        assert "out of system resource" not in log.read_text()
    finally:
        for s in socks:
            s.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_tcp_cluster_clients_retry_an_overloaded_node_and_every_write_lands(tmp_path):
    from dynamo_lab.tcp.cluster import TcpCluster
    from test_tcp_cluster import FAST, assert_all_stopped, started
    with TcpCluster(nodes=3, seed=2, data_dir=str(tmp_path), max_inflight=1, **FAST) as cluster:
        pids = started(cluster)
        alice = cluster.client("alice")
        ops = [alice.submit_put(f"k{i}", [i], via="A") for i in range(12)]
        cluster.wait(*ops)
        assert [op.error for op in ops] == [None] * 12
        assert cluster.status("A")["admission"]["overloaded"] > 0, "A did refuse some at first"
        assert [alice.get(f"k{i}").values for i in range(12)] == [[[i]] for i in range(12)]
    assert_all_stopped(pids)
