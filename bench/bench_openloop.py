"""Open-loop load on a real 5-node (3,2,2) cluster: what happens past capacity.

A closed-loop benchmark (``bench_tcp``) slows down with the server and so never overloads it.
Here requests are sent at their *scheduled* time whatever happened to the earlier ones, as
users of a web shop would, and each latency is measured from that scheduled time (so a
request that waited in a queue, in the client or in a node, counts its wait). 50/50 gets and
puts over 1,000 keys; a put carries the last context the load generator saw for its key, so
siblings do not pile up.

The load generator shares the machine with the nodes. ``lag p99`` says how late it was itself
in sending; a row where that exceeds ``LAG_LIMIT_MS`` is marked: part of its latency is the
generator's own wait for a CPU (taken by the nodes, or by other work on the machine).

For each offered rate it prints p50/p99/p99.9 latency, the error rate and the *goodput*:
answers that were useful (200 or 404 within ``GOOD_S`` of their scheduled time) per second.
Beside it, the same load against minimal HTTP echo servers (one process per node, on the
nodes' event loop), the ceiling of this client and loopback on this machine. The goal (issue
8): goodput at twice the capacity stays >= 80% of the goodput at capacity.

Bounded: ``DURATION_S`` seconds of sending per rate, each request abandoned ``TIMEOUT_S``
after its scheduled time. ``python -m bench openloop``; ``python bench/bench_openloop.py
500 1000`` runs other rates, and ``--max-inflight 1000000`` runs the nodes with admission
control out of the way (what they did before it).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

RATES = (250, 500, 1000, 1500, 2000)   # offered requests per second (1,500: issue 12's row)
DURATION_S = 5.0                 # seconds of sending per rate
TIMEOUT_S = 2.0                  # a request not answered this long after its slot is given up
GOOD_S = 1.0                     # an answer later than this is not useful (goodput)
LAG_LIMIT_MS = 50.0              # a sender later than this (p99) measured itself, not the nodes
TWICE = 1.9                      # "twice the capacity", less 5% for measurement noise
KEYS = 1000
NODES = 5


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: one request at a time, the answer parsed by hand
    (Content-Length only, which is what aiohttp and the echo server send). Much lighter than
    a full client, so that the load generator is not what saturates first."""

    def __init__(self):
        self.transport = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data):
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4:end + 4 + length])
        del self.buf[:end + 4 + length]
        self.waiter.set_result((int(head[0].split()[1]), body))


class Pool:
    """Idle connections to one node; a request with none idle opens a new one (open loop)."""

    def __init__(self, address: str):
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self.idle: list[_Conn] = []
        self.all: set[_Conn] = set()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        conn = None
        while self.idle and conn is None:
            c = self.idle.pop()
            conn = None if c.closed else c
        if conn is None:
            _t, conn = await loop.create_connection(_Conn, self.host, self.port)
            self.all.add(conn)
        conn.waiter = loop.create_future()
        conn.transport.write(f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                             f"Content-Length: {len(body)}\r\nContent-Type: application/json"
                             f"\r\n\r\n".encode() + body)
        try:
            answer = await conn.waiter
        except BaseException:       # a timeout or a cut: this connection is out of step
            conn.transport.close()
            self.all.discard(conn)
            raise
        self.idle.append(conn)
        return answer

    def close(self) -> None:
        for c in self.all:
            c.transport.close()


async def open_loop(addresses: list[str], rate: int, contexts: dict) -> dict:
    """Send ``rate`` requests per second for ``DURATION_S``; returns what happened."""
    total = int(rate * DURATION_S)
    latencies: list[float] = []          # ms, from the scheduled time, of useful answers
    outcome = {"ok": 0, "late": 0, "overloaded": 0, "failed": 0, "timeout": 0}
    lags: list[float] = []               # how late the sender itself was (ms)
    pools = [Pool(a) for a in addresses]

    async def one(i: int, scheduled: float) -> str:
        key = f"ol:{(i * 7919) % KEYS}"
        pool = pools[i % len(pools)]
        left = TIMEOUT_S - (time.perf_counter() - scheduled)
        try:
            async with asyncio.timeout(left):
                if i % 2:
                    body = json.dumps({"value": {"i": i}, "context": contexts.get(key)})
                    status, raw = await pool.request("PUT", f"/kv/{key}", body.encode())
                else:
                    status, raw = await pool.request("GET", f"/kv/{key}")
        except TimeoutError:
            return "timeout"
        except (OSError, ValueError, IndexError):
            return "failed"
        elapsed_ms = (time.perf_counter() - scheduled) * 1000
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if status in (200, 404):
            if isinstance(answer, dict) and answer.get("context"):
                contexts[key] = answer["context"]
            if elapsed_ms <= GOOD_S * 1000:
                latencies.append(elapsed_ms)
                return "ok"
            return "late"
        if status == 503 and isinstance(answer, dict) and answer.get("error_kind") == "overloaded":
            return "overloaded"
        return "failed"

    def done(task: asyncio.Task) -> None:
        tasks.discard(task)
        outcome["timeout" if task.cancelled() else task.result()] += 1

    tasks = set()
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter() + 0.05
    try:
        for i in range(total):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append((time.perf_counter() - scheduled) * 1000)
            task = loop.create_task(one(i, scheduled))
            tasks.add(task)
            task.add_done_callback(done)
        if tasks:      # every request has its own timeout; this bound is a safety net
            await asyncio.wait(set(tasks), timeout=TIMEOUT_S + 1.0)
        pending = list(tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        for pool in pools:
            pool.close()
    lat = sorted(latencies)
    lags.sort()
    return {"rate": rate, "sent": total, **outcome, "p50": percentile(lat, 0.5),
            "p99": percentile(lat, 0.99), "p999": percentile(lat, 0.999),
            "goodput": outcome["ok"] / DURATION_S,
            "errors": (outcome["failed"] + outcome["timeout"] + outcome["overloaded"]) / total,
            "lag_p99": percentile(lags, 0.99)}


def report_header(title: str) -> None:
    print(f"  {title}")
    print(f"    {'offered/s':>9} {'sent':>6} {'useful':>6} {'late':>5} {'503':>5} {'t/o':>5} "
          f"{'fail':>5} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'goodput/s':>9} "
          f"{'errors':>7} {'lag p99':>8}")


def report(r: dict) -> None:
    print(f"    {r['rate']:>9,} {r['sent']:>6,} {r['ok']:>6,} {r['late']:>5,} "
          f"{r['overloaded']:>5,} {r['timeout']:>5,} {r['failed']:>5,} {r['p50']:>8.1f} "
          f"{r['p99']:>8.1f} {r['p999']:>9.1f} {r['goodput']:>9,.0f} {r['errors']:>7.1%} "
          f"{r['lag_p99']:>7.1f}"
          + ("  (sender late: it shares the CPUs with the nodes)"
             if r["lag_p99"] > LAG_LIMIT_MS else ""), flush=True)


def run_rates(addresses: list[str], rates, contexts: dict | None = None) -> list[dict]:
    contexts = {} if contexts is None else contexts
    out = []
    for rate in rates:
        r = asyncio.run(open_loop(addresses, rate, contexts))
        report(r)
        out.append(r)
    return out


def twice_capacity(results: list[dict]) -> int | None:
    """The offered rate to add so that one row sits at twice the capacity (the best goodput
    so far), or None when a row already lies within [2x, 2.4x] of it."""
    capacity = max(r["goodput"] for r in results)
    if not capacity or any(TWICE * capacity <= r["rate"] <= 2.4 * capacity for r in results):
        return None
    return int(math.ceil(2 * capacity / 10) * 10)


def verdict(results: list[dict]) -> str:
    """The capacity is the best goodput seen; compare it with the goodput at the first offered
    rate of at least twice that (the issue's goal: >= 80%), "twice" with ``TWICE``'s 5%
    allowance, since the capacity is itself measured (it may come from the row at 2x).
    :func:`twice_capacity` adds such a rate to the run when the fixed ones miss it."""
    capacity = max(r["goodput"] for r in results)
    double = [r for r in sorted(results, key=lambda r: r["rate"])
              if r["rate"] >= TWICE * capacity]
    if not capacity or not double:
        return (f"capacity ~{capacity:,.0f}/s; no offered rate of twice that in this run")
    at = double[0]
    ratio = at["goodput"] / capacity
    return (f"capacity ~{capacity:,.0f}/s (the best goodput); offered {at['rate']:,}/s (~2x): "
            f"goodput {at['goodput']:,.0f}/s = {ratio:.0%} of it "
            f"({'meets' if ratio >= 0.8 else 'misses'} the >= 80% goal)")


def echo_ceiling(rates) -> list[dict]:
    here = Path(__file__).resolve().parent
    procs = [subprocess.Popen([sys.executable, str(here / "bench_tcp.py"), "--echo-server"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(NODES)]
    try:
        addresses = [f"127.0.0.1:{int(p.stdout.readline())}" for p in procs]
        return run_rates(addresses, rates)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main(rates=RATES, max_inflight: int | None = None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dynamo_lab.tcp.cluster import TcpCluster
    print(f"  open loop: {DURATION_S:.0f} s per rate, 50/50 get/put over {KEYS:,} keys, latency "
          f"from the scheduled send time; useful = 200/404 within {GOOD_S:.0f} s; requests "
          f"abandoned after {TIMEOUT_S:.0f} s; {os.cpu_count()} CPU(s)")
    extra = {} if max_inflight is None else {"max_inflight": max_inflight}
    if max_inflight is not None:
        print(f"  (each node admits at most {max_inflight:,} client requests at once)")
    report_header(f"{NODES}-node (3,2,2) TcpCluster on loopback (SQLite, synchronous=FULL):")
    with TcpCluster(nodes=NODES, n=3, r=2, w=2, seed=1, log_level="WARNING", **extra) as cluster:
        addresses = [cluster.http_address(n) for n in cluster.nodes]
        contexts: dict = {}
        results = run_rates(addresses, rates, contexts)
        extra_rate = twice_capacity(results)
        if extra_rate:
            print(f"    (and at twice the capacity seen so far:)")
            results += run_rates(addresses, [extra_rate], contexts)
    print(f"  {verdict(results)}")
    report_header(f"ceiling: minimal HTTP echo servers on the nodes' event loop, {NODES} "
                  f"processes, same load:")
    echo = echo_ceiling(rates)
    print(f"  {issue_row(results, echo)}")


TARGET_RATE, TARGET_P999_MS, TARGET_SUSTAINED = 500, 20.0, 1_500     # issue 12


def issue_row(results: list[dict], echo: list[dict]) -> str:
    """Issue 12's row: p99.9 at 500 req/s (beside the echo ceiling's at that rate) and the
    goodput at the highest offered rate up to 1,500/s."""
    at = next((r for r in results if r["rate"] == TARGET_RATE), None)
    ceiling = next((r for r in echo if r["rate"] == TARGET_RATE), None)
    if at is None:
        return f"issue 12's row: no run at {TARGET_RATE}/s"
    high = max((r for r in results if r["rate"] <= TARGET_SUSTAINED), key=lambda r: r["rate"])
    beside = f", echo ceiling {ceiling['p999']:.1f} ms" if ceiling else ""
    return (f"issue 12's row (measured | target): at {TARGET_RATE}/s p99.9 {at['p999']:.1f} ms"
            f"{beside}; at {high['rate']:,}/s goodput {high['goodput']:,.0f}/s | p99.9 <= "
            f"{TARGET_P999_MS:.0f} ms at {TARGET_RATE}/s and a sustained {TARGET_SUSTAINED:,}/s")


if __name__ == "__main__":
    args = sys.argv[1:]
    limit = None
    if "--max-inflight" in args:
        i = args.index("--max-inflight")
        limit = int(args[i + 1])
        del args[i:i + 2]
    main(tuple(int(a) for a in args) or RATES, limit)
