"""The open-loop load generator of ``python -m bench openloop`` counts what it sees.

Run for half a second against in-process servers: an echo server (every answer useful), one
that answers 503 overloaded, and one that never answers (every request given up).
"""

from __future__ import annotations

import asyncio

import pytest

from bench import bench_openloop as ol
from bench.bench_tcp import _echo


async def _overloaded(reader, writer):
    body = b'{"ok": false, "error_kind": "overloaded"}'
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def _silent(reader, writer):
    await reader.read()
    writer.close()


@pytest.mark.parametrize("handler,expect", [(_echo, "ok"), (_overloaded, "overloaded"),
                                            (_silent, "timeout")])
def test_every_request_is_counted_once_as_what_happened_to_it(monkeypatch, handler, expect):
    monkeypatch.setattr(ol, "DURATION_S", 0.5)
    monkeypatch.setattr(ol, "TIMEOUT_S", 0.3)

    async def run():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await ol.open_loop([f"127.0.0.1:{port}"], 200, {})
        finally:
            server.close()

    r = asyncio.run(run())
    assert r["sent"] == 100
    assert r[expect] == 100
    assert sum(r[k] for k in ("ok", "late", "overloaded", "failed", "timeout")) == 100
    assert r["goodput"] == (200 if expect == "ok" else 0)


def test_the_verdict_compares_twice_the_capacity_with_the_capacity():
    rows = [{"rate": 250, "goodput": 250}, {"rate": 500, "goodput": 480},
            {"rate": 1000, "goodput": 400}, {"rate": 2000, "goodput": 300}]
    assert "capacity ~480/s" in ol.verdict(rows) and "offered 1,000/s" in ol.verdict(rows)
    assert "= 83% of it (meets" in ol.verdict(rows)
    rows[2]["goodput"] = 100
    assert "= 21% of it (misses" in ol.verdict(rows)
    rows[1]["goodput"] = 1100                  # nothing offered at twice the capacity
    assert "no offered rate of twice that" in ol.verdict(rows)


def test_a_row_at_twice_the_capacity_is_added_when_the_fixed_rates_miss_it():
    rows = [{"rate": 250, "goodput": 250}, {"rate": 500, "goodput": 480},
            {"rate": 1000, "goodput": 540}, {"rate": 2000, "goodput": 75}]
    assert ol.twice_capacity(rows) == 1080
    rows[2]["goodput"] = 470                   # 1000 is within [2x, 2.4x] of 480
    assert ol.twice_capacity(rows) is None
    # The row added at 2x may itself hold the best goodput, a hair above half its rate.
    rows = [{"rate": 500, "goodput": 444}, {"rate": 1000, "goodput": 504.2},
            {"rate": 1010, "goodput": 505.4}, {"rate": 2000, "goodput": 178}]
    assert "offered 1,000/s" in ol.verdict(rows) and "(meets" in ol.verdict(rows)
