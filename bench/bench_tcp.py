"""TCP runtime throughput and latency: a real 5-node (3,2,2) cluster on loopback under a
closed-loop load generator, and the ceiling: the same load against minimal HTTP echo servers
(one process per node, same sockets, same client, on the event loop the nodes run on: uvloop
where it is installed), so the ratio shows what Dynamo's work (quorums, SQLite commits with
fsync, internode frames) costs on top of bare HTTP.

Bounded: at most ``OPS`` requests and ``PHASE_S`` seconds per phase. Run alone with
``python -m bench tcp``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CLIENTS = 16          # concurrent closed-loop clients: each sends its next request on a reply
OPS = 3000            # requests per phase (at most)
PHASE_S = 12.0        # seconds per phase (at most)
NODES = 5


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def closed_loop(addresses: list[str], kind: str, keys: list[str]) -> tuple[int, float, list[float]]:
    """``CLIENTS`` clients, each sending one request at a time, round-robin over the nodes.
    Returns (requests done, seconds, latencies in ms)."""
    import aiohttp
    latencies: list[float] = []
    errors = 0
    counter = iter(range(OPS))
    deadline = time.perf_counter() + PHASE_S
    connector = aiohttp.TCPConnector(limit=CLIENTS * 2)

    async def client(cid: int, session) -> None:
        nonlocal errors
        for i in counter:
            if time.perf_counter() > deadline:
                return
            key = keys[i % len(keys)]
            url = f"http://{addresses[(cid + i) % len(addresses)]}/kv/{key}"
            t0 = time.perf_counter()
            if kind == "put":
                body = json.dumps({"value": {"item": i, "pad": "x" * 64}, "context": None})
                resp = await session.put(url, data=body)
            else:
                resp = await session.get(url)
            await resp.read()
            latencies.append((time.perf_counter() - t0) * 1000)
            if resp.status not in (200, 404):
                errors += 1

    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c, session) for c in range(CLIENTS)))
        wall = time.perf_counter() - t0
    if errors:
        print(f"    ({errors} requests failed)")
    return len(latencies), wall, sorted(latencies)


def report(label: str, done: int, wall: float, lat: list[float]) -> float:
    rate = done / wall
    print(f"    {label:<4} {done:>6,} in {wall:5.2f} s = {rate:>7,.0f}/s   p50 {percentile(lat, 0.5):6.2f} ms"
          f"   p99 {percentile(lat, 0.99):6.2f} ms   p99.9 {percentile(lat, 0.999):6.2f} ms")
    return rate


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_load(addresses: list[str], pids: list[int] = ()) -> dict[str, float]:
    """Puts, then gets; the rate of each (and, given the servers' ``pids``, their CPU per
    request as ``cpu_<kind>_ms``)."""
    keys = [f"bench:{i}" for i in range(OPS)]    # one blind write per key: no sibling growth
    rates = {}
    measure_cpu = bool(pids) and os.path.exists("/proc/self/stat")
    for kind in ("put", "get"):
        c0 = cpu_s(pids) if measure_cpu else 0.0
        done, wall, lat = asyncio.run(closed_loop(addresses, kind, keys))
        rates[kind] = report(kind, done, wall, lat)
        if measure_cpu and done:
            rates[f"cpu_{kind}_ms"] = (cpu_s(pids) - c0) / done * 1000
            print(f"         CPU of the {len(pids)} server processes: "
                  f"{rates[f'cpu_{kind}_ms']:.2f} ms per {kind}")
    return rates


# -- the ceiling: a minimal asyncio HTTP/1.1 echo server ------------------------------------------

async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length) if length else b'{"values":[]}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _exit_with_parent() -> None:
    """The parent holds our stdin open; when it dies (killed before it could stop us), the
    pipe closes and this echo server exits instead of running on forever."""
    import threading

    def watch() -> None:
        sys.stdin.read()
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()


async def _serve_echo() -> None:
    _exit_with_parent()
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def echo_ceiling() -> dict[str, float]:
    procs = [subprocess.Popen([sys.executable, __file__, "--echo-server"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE,
                              text=True) for _ in range(NODES)]
    try:
        addresses = [f"127.0.0.1:{int(p.stdout.readline())}" for p in procs]
        return run_load(addresses, [p.pid for p in procs])
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dynamo_lab.tcp.cluster import TcpCluster
    print(f"  {CLIENTS} closed-loop HTTP clients, at most {OPS:,} requests or {PHASE_S:.0f} s "
          f"per phase, on {os.cpu_count()} CPU(s)")
    print(f"  5-node (3,2,2) TcpCluster on loopback (SQLite, synchronous=FULL):")
    with TcpCluster(nodes=NODES, n=3, r=2, w=2, seed=1, log_level="WARNING") as cluster:
        dynamo = run_load([cluster.http_address(n) for n in cluster.nodes],
                          [p.pid for p in cluster._procs.values()])
    print(f"  ceiling: minimal HTTP echo servers on the nodes' event loop, {NODES} processes, "
          f"same load:")
    echo = echo_ceiling()
    print(f"  cluster / ceiling: puts {dynamo['put'] / echo['put']:.1%}, "
          f"gets {dynamo['get'] / echo['get']:.1%}")
    print(f"  issue 12's row (measured | target): TCP {NODES} nodes, {CLIENTS} closed-loop "
          f"clients: puts {dynamo['put']:,.0f}/s ({dynamo['put'] / echo['put']:.0%} of the "
          f"echo ceiling), gets {dynamo['get']:,.0f}/s ({dynamo['get'] / echo['get']:.0%}) | "
          f">= {TARGET_PUTS:,}/s and >= {TARGET_GETS:,}/s, durable before the ack")


TARGET_PUTS, TARGET_GETS = 3_000, 4_000     # issue 12


if __name__ == "__main__":
    if sys.argv[1:] == ["--echo-server"]:
        from dynamo_lab.tcp.process import event_loop_runner     # the nodes' loop: a fair ceiling
        event_loop_runner()(_serve_echo())
    else:
        main()
