"""The dashboard in a real headless Chromium (Playwright), on a real cluster.

The cluster and its dashboard are started as a lecturer starts them, ``dynamo-lab cluster up
--dashboard`` (node processes on 127.0.0.1, the dashboard on port 0), and stopped by PID: the
dashboard with SIGTERM, the nodes with ``dynamo-lab cluster down``, and every PID checked gone.
The page is driven by clicks; assertions are on what it shows (``data-state`` of a node's
card, the siblings side by side) and on the cluster itself. Skipped, saying how to install
them, where Playwright or Chromium is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dynamo_lab.tcp.cluster import is_node_process, pid_alive
from test_jupyter_config import CHROMIUM, _browser as _playwright

ROOT = Path(__file__).resolve().parents[1]
SUSPECT_AFTER_S = 1.5
SETTINGS = ["--set", "gossip_interval_s=0.3", "--set", f"suspect_after_s={SUSPECT_AFTER_S}",
            "--set", "request_timeout_s=0.3", "--set", "handoff_interval_s=0.3"]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.slow


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def _cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dynamo_lab.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _wait_line(proc: subprocess.Popen, pattern: str, timeout_s: float = 90.0) -> re.Match:
    """Read ``proc``'s stdout until a line matches (the dashboard prints its address)."""
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"no line matching {pattern!r}; got:\n{''.join(seen)}")


def _node_pids(state_path: Path) -> list[int]:
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return []
    return [(n["pid"], n["name"]) for n in state["nodes"] if n["pid"]]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _down(cwd: Path, state_path: Path, seen: list) -> None:
    """``cluster down``, then every node PID ever seen must be gone (killed here if not)."""
    seen += _node_pids(state_path)
    if state_path.exists():
        _cli("cluster", "down", "--state", str(state_path), cwd=cwd)
    left = [(p, n) for p, n in seen if pid_alive(p) and is_node_process(p, n)]
    for p, _n in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"node processes left running: {left}"


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    """``dynamo-lab cluster up --dashboard``: five nodes and the dashboard's address."""
    cwd = tmp_path_factory.mktemp("lecture")
    state = cwd / ".dynamo-lab" / "cluster.json"
    proc = subprocess.Popen([sys.executable, "-m", "dynamo_lab.cli", "cluster", "up", "--nodes",
                             "5", *SETTINGS, "--dashboard", "--state", str(state)], cwd=cwd,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    seen: list = []
    try:
        url = _wait_line(proc, r"dashboard: (http://127\.0\.0\.1:\d+/\?key=\S+)").group(1)
        yield {"url": url, "cwd": cwd, "state": state, "seen": seen}
    finally:
        _stop(proc)
        _down(cwd, state, seen)


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _playwright()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _page(browser, url: str):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    page.goto(url)
    page.wait_for_selector(".card[data-node='E']", timeout=30_000)
    return page


def _pref(state_path: Path, key: str) -> list[str]:
    """The key's walk on the ring: its preference list, then the sloppy quorum's fallbacks."""
    from dynamo_lab.cli import attach
    cluster, _state = attach(str(state_path))
    return cluster.ring().successors(key)


def test_the_page_shows_five_nodes_the_ring_and_live_messages(lecture, browser):
    page = _page(browser, lecture["url"])
    assert page.url.endswith("/")                          # the key left the address bar
    assert page.locator(".card").count() == 5
    for n in "ABCDE":
        page.wait_for_selector(f".card[data-node='{n}'][data-state='up']", timeout=10_000)
    assert page.locator("#ring text[data-token-of]").count() == 40     # 8 tokens x 5 nodes
    assert page.locator("#views td[data-mark='up']").count() == 20
    out = _cli("put", "cart", '["book"]', "--state", str(lecture["state"]), cwd=lecture["cwd"])
    assert out.returncode == 0, out.stderr
    page.wait_for_function("dash.sends.some(m => m.c === 'client' && m.keys.includes('cart'))",
                           timeout=10_000)
    page.wait_for_selector("#narration:has-text('put cart')", timeout=10_000)
    page.fill("#strip-key", "cart")
    page.wait_for_timeout(300)
    shown = page.evaluate("dash.shown.map(m => m.keys)")
    assert shown and all("cart" in keys for keys in shown)
    lag = page.evaluate("dash.stats.lags.slice().sort((a,b)=>a-b)")
    assert lag and lag[len(lag) // 2] < 1.0                # trace event to page: well under 1 s
    assert page.errors == []
    page.close()


def test_kill_turns_the_node_suspected_then_down_in_time_and_restart_brings_it_back(
        lecture, browser):
    page = _page(browser, lecture["url"])
    victim = "C"
    lecture["seen"].extend(_node_pids(lecture["state"]))
    page.click(f"button[data-action='kill'][data-node='{victim}']")
    t0 = time.monotonic()
    page.wait_for_selector(f".card[data-node='{victim}'][data-state='down']",
                           timeout=(SUSPECT_AFTER_S + 1.0 + 0.5) * 1000)  # + the page's polls
    took = time.monotonic() - t0
    assert took < SUSPECT_AFTER_S + 1.0 + 0.5
    history = page.evaluate(f"dash.history['{victim}'].map(h => h.state + '/' + h.process)")
    after = history[history.index("up/killed"):] if "up/killed" in history else history
    assert after[-1] == "down/killed"
    assert "suspected/killed" in after, history            # suspected first, by some nodes
    assert "no process" in page.locator(f".card[data-node='{victim}']").inner_text()
    assert page.locator(f"#views td[data-subj='{victim}'][data-mark='suspected']").count() == 4
    page.click(f"button[data-action='restart'][data-node='{victim}']")
    page.wait_for_selector(f".card[data-node='{victim}'][data-state='up'][data-process='running']",
                           timeout=30_000)
    assert "gen 2" in page.locator(f".card[data-node='{victim}']").inner_text()
    lecture["seen"].extend(_node_pids(lecture["state"]))
    assert page.errors == []
    page.close()


def _set_sides(page, side1: list[str]) -> None:
    """Click the side buttons until exactly ``side1`` is on side 1, the rest on side 2."""
    for n in "ABCDE":
        want = "1" if n in side1 else "2"
        for _ in range(3):
            if page.get_attribute(f".side-btn[data-node='{n}']", "data-side") == want:
                break
            page.click(f".side-btn[data-node='{n}']")


def test_partition_then_heal_shows_siblings_and_merge_writes_one_value(lecture, browser):
    page = _page(browser, lecture["url"])
    key = "cart"
    walk = _pref(lecture["state"], key)
    side1 = [walk[0], walk[3]]
    side2 = [walk[1], walk[2], walk[4]]
    page.fill("#cart-value", '["book"]')
    page.select_option("#cart-via", walk[0])
    page.click("#btn-get")
    page.wait_for_selector("#siblings .sibling, #siblings .empty", timeout=10_000)
    page.click("#btn-put")                       # over whatever the first test wrote
    page.wait_for_selector("#put-result:has-text('acknowledged')", timeout=10_000)
    page.click("#btn-get")
    page.wait_for_selector("#siblings[data-count='1']", timeout=10_000)
    _set_sides(page, side1)
    page.click("#btn-partition")
    page.wait_for_selector("#net-state[data-split='yes']", timeout=10_000)
    cut = len(side1) * len(side2) * 2
    page.wait_for_function(f"document.querySelectorAll(\"#views td[data-mark='cut']\").length === {cut}",
                           timeout=15_000)
    # One context (the read's), one write on each side: two clients that read the same cart.
    for via, item in ((walk[0], "lamp"), (walk[1], "mug")):
        page.select_option("#cart-via", via)
        page.fill("#cart-value", json.dumps(["book", item]))
        page.click("#btn-put")
        page.wait_for_selector(f"#put-result:has-text('{item}')", timeout=15_000)
        assert "acknowledged" in page.inner_text("#put-result")
    page.click("#btn-settle")
    page.wait_for_selector("#net-state[data-split='no']", timeout=15_000)
    page.wait_for_selector("#toast:has-text('settled')", timeout=60_000)
    page.select_option("#cart-via", "")
    page.click("#btn-get")
    page.wait_for_selector("#siblings[data-count='2']", timeout=10_000)
    texts = sorted(page.locator("#siblings .sibling .items").all_inner_texts())
    assert ["lamp" in texts[0] or "lamp" in texts[1], "mug" in texts[0] or "mug" in texts[1]] == [True, True]
    # The narration follows the nodes' trace stream, which may trail the reply to the page.
    page.wait_for_selector("#narration:has-text('concurrent siblings')", timeout=10_000)
    page.click("#btn-merge")
    page.wait_for_selector("#siblings[data-count='1']", timeout=15_000)
    assert page.locator("#siblings .chip").all_inner_texts() == ["book", "lamp", "mug"]
    out = _cli("get", key, "--json", "--state", str(lecture["state"]), cwd=lecture["cwd"])
    assert json.loads(out.stdout)["values"] == [["book", "lamp", "mug"]]
    assert page.errors == []
    page.close()


def test_the_page_follows_a_demo_in_a_terminal_and_runs_one_itself(tmp_path, browser):
    state = tmp_path / ".dynamo-lab" / "cluster.json"
    dash = subprocess.Popen([sys.executable, "-m", "dynamo_lab.cli", "dashboard", "--state",
                             str(state)], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    demo = None
    seen: list = []
    try:
        url = _wait_line(dash, r"dashboard: (http://127\.0\.0\.1:\d+/\?key=\S+)").group(1)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("dialog", lambda d: d.accept())
        page.goto(url)
        page.wait_for_selector("#no-cluster:has-text('no cluster running')", timeout=15_000)
        demo = subprocess.Popen([sys.executable, "-m", "dynamo_lab.cli", "demo", "handoff",
                                 "--auto", "--delay", "1.5", *SETTINGS, "--state", str(state)],
                                cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        page.wait_for_selector(".card[data-node='E']", timeout=60_000)
        page.wait_for_selector("#demo-state:has-text('Kill')", timeout=60_000)
        seen += _node_pids(state)
        page.wait_for_selector(".card[data-state='down']", timeout=30_000)
        page.wait_for_selector("#demo-state:has-text('finished')", timeout=90_000)
        out, _ = demo.communicate(timeout=120)
        assert demo.returncode == 0, out
        seen += [(int(p), n) for n, p in re.findall(r"(\w) \(pid (\d+)\)", out)]
        page.wait_for_selector("#no-cluster:has-text('no cluster running')", timeout=15_000)
        assert "demo finished" in page.inner_text("#demo-state")   # how it ended stays shown
        # The same demo from the page: Start, then Next through every step.
        page.select_option("#demo-pick", "siblings")
        page.click("#btn-demo-start")
        page.wait_for_selector(".card[data-node='E']", timeout=60_000)
        for i in range(1, 6):
            page.wait_for_function(f"dash.demo && dash.demo.step === {i} && dash.demo.phase === "
                                   f"'waiting' && !document.getElementById('btn-next').hidden",
                                   timeout=90_000)
            seen += _node_pids(state)
            page.click("#btn-next")
            page.wait_for_function(f"dash.demo.step !== {i} || dash.demo.phase !== 'waiting'",
                                   timeout=30_000)
        page.wait_for_selector("#demo-state:has-text('finished')", timeout=90_000)
        page.click("#btn-get")
        page.wait_for_selector("#siblings[data-count='1']", timeout=15_000)
        assert page.locator("#siblings .chip").all_inner_texts() == ["book", "lamp", "mug", "pen"]
        assert errors == []
        page.close()
    finally:
        if demo is not None and demo.poll() is None:
            demo.kill()
            demo.wait()
        _stop(dash)
        _down(tmp_path, state, seen)
