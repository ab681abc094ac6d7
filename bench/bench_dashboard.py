"""The lecture dashboard in headless Chromium: how fast the page follows, how much it carries.

1. Trace events to the page: a stand-in cluster (a state file, no processes) whose five trace
   files get synthetic sends and deliveries at a fixed rate; the page measures, for each send,
   the wall-clock delay from the moment it was written to the moment it reached the page, and
   how many strip frames it draws per second.
2. A status change to the page: a real 5-node cluster; a kill -9 clicked on the page until its
   card shows the process gone (the poll interval, one round of /status, one render).

Needs Playwright and Chromium (as the browser tests); says so and returns without them.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
import tempfile

RATES = (100, 300, 1000, 3000)      # sends per second (each also delivered: two trace lines)
SECONDS = 4.0
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright if Path(CHROMIUM).exists() else None


def _writer(folder: Path, rate: int, seconds: float, stop: threading.Event) -> int:
    from dynamo_lab.messages import ReplicaPut, ReplicaPutAck
    from dynamo_lab.sim.trace import record_line
    nodes = "ABCDE"
    files = {n: open(folder / f"{n}.jsonl", "a", encoding="utf-8", buffering=1) for n in nodes}
    sent = 0
    t_end = time.time() + seconds
    try:
        while time.time() < t_end and not stop.is_set():
            batch = max(1, rate // 50)
            for _ in range(batch):
                i = sent
                src, dst = nodes[i % 5], nodes[(i + 1) % 5]
                msg = ReplicaPut(f"r{i}", f"k{i % 50}", ()) if i % 2 else ReplicaPutAck(f"r{i}", f"k{i % 50}")
                now = time.time()
                files[src].write(record_line(now, "send", src, dst, msg))
                files[dst].write(record_line(now + 0.0005, "deliver", dst, src, msg))
                sent += 1
            time.sleep(batch / rate)
    finally:
        for fh in files.values():
            fh.close()
    return sent


def strip_rates(sync_playwright) -> None:
    from dynamo_lab.dashboard.server import DashboardThread
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data" / "trace").mkdir(parents=True)
        state = root / "cluster.json"
        state.write_text(json.dumps({
            "cluster_id": "dl-bench", "t0_wall": time.time(), "data_dir": str(root / "data"),
            "trace": True, "config": {"n": 3, "r": 2, "w": 2, "vnodes": 8, "suspect_after_s": 2},
            "nodes": [{"name": n, "pid": 0, "http": "127.0.0.1:9"} for n in "ABCDE"]}))
        dash = DashboardThread(str(state))
        url = dash.start()
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = b.new_page(viewport={"width": 1920, "height": 1080})
                page.goto(url)
                page.wait_for_selector(".card[data-node='E']", timeout=30_000)
                print(f"   {'sends/s':>8} {'written':>8} {'on page':>8} {'lag p50':>8} "
                      f"{'lag p95':>8} {'frames/s':>8} {'draw ms':>8}")
                for rate in RATES:
                    page.evaluate("dash.stats.lags = []; dash.stats.drawMs = []; "
                                  "dash._f0 = dash.stats.frames; dash._e0 = dash.stats.events")
                    t0 = time.monotonic()
                    sent = _writer(root / "data" / "trace", rate, SECONDS, threading.Event())
                    page.wait_for_timeout(1500)
                    took = time.monotonic() - t0
                    got = page.evaluate("""() => {
                        const l = dash.stats.lags.slice().sort((a, b) => a - b);
                        const d = dash.stats.drawMs.slice().sort((a, b) => a - b);
                        return {n: dash.stats.events - dash._e0, p50: l[Math.floor(l.length / 2)],
                                p95: l[Math.floor(l.length * 0.95)], frames: dash.stats.frames - dash._f0,
                                draw: d[Math.floor(d.length / 2)]};
                    }""")
                    print(f"   {rate:>8} {sent:>8} {got['n']:>8} {got['p50'] * 1000:>6.0f}ms "
                          f"{got['p95'] * 1000:>6.0f}ms {got['frames'] / took:>8.1f} "
                          f"{got['draw']:>6.1f}ms", flush=True)
                b.close()
        finally:
            dash.stop()


def status_latency(sync_playwright) -> None:
    from dynamo_lab.cli import save_state
    from dynamo_lab.dashboard.server import DashboardThread
    from dynamo_lab.tcp.cluster import TcpCluster
    with tempfile.TemporaryDirectory() as tmp:
        state = str(Path(tmp) / "cluster.json")
        cluster = TcpCluster(5, data_dir=str(Path(tmp) / "data"), trace=True,
                             gossip_interval_s=0.5, suspect_after_s=2.0)
        save_state(state, dict(cluster.state(), owns_data=False))
        dash = DashboardThread(state)
        url = dash.start()
        shown, down = [], []
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = b.new_page(viewport={"width": 1920, "height": 1080})
                page.goto(url)
                for n in "BCD":
                    t0 = time.monotonic()
                    page.click(f"button[data-action='kill'][data-node='{n}']")
                    page.wait_for_selector(f".card[data-node='{n}'][data-process='killed']")
                    shown.append(time.monotonic() - t0)
                    page.wait_for_selector(f".card[data-node='{n}'][data-state='down']",
                                           timeout=30_000)
                    down.append(time.monotonic() - t0)
                    page.click(f"button[data-action='restart'][data-node='{n}']")
                    page.wait_for_selector(f".card[data-node='{n}'][data-state='up']"
                                           f"[data-process='running']", timeout=60_000)
                b.close()
        finally:
            dash.stop()
            cluster._procs.clear()       # the dashboard restarted them: stop them by PID
            for obj in json.loads(Path(state).read_text())["nodes"]:
                from dynamo_lab.tcp.cluster import NodeProc
                cluster._procs[obj["name"]] = NodeProc(obj["name"], [], [], obj["pid"])
            cluster.close()
        print(f"   kill -9 clicked -> card shows the process gone: "
              + ", ".join(f"{x * 1000:.0f} ms" for x in shown) + " (includes the SIGKILL and its wait)")
        print(f"   kill -9 clicked -> every node suspects it, card DOWN: "
              + ", ".join(f"{x:.2f} s" for x in down) + " (suspect_after_s = 2)")


def main() -> None:
    sync_playwright = _browser()
    if sync_playwright is None:
        print("   skipped: needs Playwright and Chromium (pip install playwright; apt-get install chromium)")
        return
    strip_rates(sync_playwright)
    status_latency(sync_playwright)


if __name__ == "__main__":
    main()
