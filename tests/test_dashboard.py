"""The lecture dashboard without a browser: the pure feed (trace tail, strip, verdicts,
narration), the server's access rules and controls on a real cluster, and the scripted demos,
each run twice with the same outcome.

Real clusters bind port 0 on 127.0.0.1; every process a test starts is stopped by its PID and
checked gone at the end. Nothing sleeps to synchronise: waits poll a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dynamo_lab.dashboard.feed import (Narrator, Strip, TraceTail, describe, message_keys,
                                       partition_groups, verdicts, view_matrix)
from dynamo_lab.sim.trace import record_line
from dynamo_lab.tcp.cluster import pid_alive
from test_tcp_cluster import eventually

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--set", "gossip_interval_s=0.3", "--set", "suspect_after_s=1.5"]


# -- the feed: pure ---------------------------------------------------------------------------------

def _rec(t, kind, node, peer="", msg=None, detail=""):
    return json.loads(record_line(t, kind, node, peer, msg, detail))


def test_trace_tail_keeps_a_line_cut_in_half_and_starts_near_the_end_of_an_old_file(tmp_path):
    old = tmp_path / "A.jsonl"
    old.write_text("".join(record_line(float(i), "note", "A", detail=f"n{i}") for i in range(1000)))
    tail = TraceTail(tmp_path, start_back_bytes=500)
    first = tail.read()
    assert 0 < len(first) < 20 and first[-1]["detail"] == "n999"      # only the last lines
    line = record_line(2000.0, "note", "A", detail="late")
    with open(old, "a") as fh:
        fh.write(line[:20])
    assert tail.read() == []                                      # half a line: kept back
    with open(old, "a") as fh:
        fh.write(line[20:] + "not json\n")
    assert [r["detail"] for r in tail.read()] == ["late"]          # the bad line is skipped
    (tmp_path / "B.jsonl").write_text(record_line(1.0, "note", "B", detail="b"))
    assert [r["detail"] for r in tail.read()] == ["b"]             # a new file from its start


def test_strip_matches_each_delivery_and_drop_to_its_send_and_keeps_marks():
    from dynamo_lab.messages import ReplicaPut, ReplicaPutAck, Gossip
    put = ReplicaPut("r1", "cart", (), hint="D")
    ack = ReplicaPutAck("r1", "cart")
    records = [_rec(10.0, "send", "A", "E", put), _rec(10.1, "send", "A", "E", put),
               _rec(10.2, "deliver", "E", "A", put), _rec(10.3, "drop", "A", "E", put,
                                                           "partition"),
               _rec(10.4, "send", "E", "A", ack), _rec(10.5, "crash", "D", "", None, "SIGKILL"),
               _rec(10.6, "send", "A", "B", Gossip(())), _rec(10.7, "timer", "A")]
    sends, ends, marks = Strip(t0=10.0).feed(records)
    assert [(s["s"], s["d"], s["c"], s["l"]) for s in sends] == [
        ("A", "E", "hint", "put, hint for D"), ("A", "E", "hint", "put, hint for D"),
        ("E", "A", "write", "ack"), ("A", "B", "gossip", "gossip")]
    assert sends[0]["keys"] == ["cart"] and sends[3]["keys"] == []
    assert ends == [{"i": 1, "t": 0.2, "x": None}, {"i": 2, "t": 0.3, "x": "partition"}]
    assert marks == [{"t": 0.5, "kind": "crash", "node": "D", "detail": "SIGKILL"}]


def test_message_keys_and_labels_on_the_codec_form():
    assert message_keys({"type": "Forward", "request": {"key": "cart"}}) == ["cart"]
    assert message_keys({"type": "Transfer", "items": [["a", []], ["b", []]]}) == ["a", "b"]
    assert message_keys({"type": "Gossip", "view": []}) == []
    assert describe({"type": "HandoffPut", "intended": "D"}) == ("hint", "handoff for D")
    assert describe({"type": "Nonsense"}) == ("other", "Nonsense")


def _status(members: dict, blocked=()):
    return {"members": {n: {"status": "up", "suspected": s} for n, s in members.items()},
            "transport": {"faults": {"blocked": [list(x) for x in blocked]}}}


def test_verdicts_say_up_suspected_by_whom_and_down():
    nodes = ["A", "B", "C"]
    running = {"A": True, "B": True, "C": False}
    fresh = {"A": _status({"A": False, "B": False, "C": False}),
             "B": _status({"A": False, "B": False, "C": False}), "C": None}
    v = verdicts(nodes, running, fresh)
    assert v["C"] == {"state": "up", "by": [], "process": "killed"}   # not noticed yet
    half = {**fresh, "A": _status({"A": False, "B": False, "C": True})}
    assert verdicts(nodes, running, half)["C"]["state"] == "suspected"
    assert verdicts(nodes, running, half)["C"]["by"] == ["A"]
    both = {**half, "B": _status({"A": False, "B": False, "C": True})}
    assert verdicts(nodes, running, both)["C"]["state"] == "down"
    # every detector fired between two polls: suspected (by all) for one poll, then down
    was_up = verdicts(nodes, running, fresh)
    assert verdicts(nodes, running, both, was_up)["C"] == {
        "state": "suspected", "by": ["A", "B"], "process": "killed"}
    assert verdicts(nodes, running, both, verdicts(nodes, running, half))["C"]["state"] == "down"
    # a partition: a running node suspected by the other side is suspected, never down
    split = {"A": _status({"A": False, "B": True, "C": False}),
             "B": _status({"A": True, "B": False, "C": False}), "C": None}
    v = verdicts(nodes, running, split)
    assert v["A"]["state"] == v["B"]["state"] == "suspected"


def test_views_mark_cut_links_and_groups_follow_them():
    st = {"A": _status({"A": False, "B": True, "C": False}, blocked=[("A", "B")]),
          "B": _status({"A": True, "B": False, "C": False}), "C": None}
    m = view_matrix(["A", "B", "C"], st)
    assert m["A"] == {"A": "self", "B": "cut", "C": "up"} and m["B"]["A"] == "suspected"
    assert "C" not in m
    assert partition_groups(list("ABCDE"), []) == [list("ABCDE")]
    cut = [(a, b) for a in "AB" for b in "CDE"] + [(b, a) for a in "AB" for b in "CDE"]
    assert partition_groups(list("ABCDE"), cut) == [["A", "B"], ["C", "D", "E"]]


def test_narrator_tells_stand_ins_handoffs_repairs_and_changes_once():
    from dynamo_lab.messages import HandoffAck, ReplicaPut
    n = Narrator(t0=0.0)
    lines = n.records([
        _rec(1.0, "send", "A", "E", ReplicaPut("r", "cart", (), hint="D")),
        _rec(2.0, "deliver", "E", "D", HandoffAck("cart", "x", "D")),
        _rec(3.0, "note", "C", detail="read repair of 'cart' on B"),
        _rec(4.0, "partition", "net", detail="{A, B} | {C, D, E}")])
    texts = [x["text"] for x in lines]
    assert texts[0].startswith("E stands in for D and keeps a hint (cart)")
    assert texts[1].startswith("hint for D delivered (cart)")
    assert texts[2].startswith("read repair of cart on B")
    assert texts[3] == "network split: {A, B} | {C, D, E}"
    nodes = ["A", "B", "C"]
    up = {n_: {"state": "up", "by": [], "process": "running"} for n_ in nodes}
    st = {x: {"generation": 1, "hints": {}} for x in nodes}
    assert n.picture(5.0, up, st) == []                       # the first picture says nothing
    sus = dict(up, C={"state": "suspected", "by": ["A"], "process": "killed"})
    assert [x["text"] for x in n.picture(6.0, sus, st)] == [
        "A suspects C: no heartbeat from it for a while"]
    assert n.picture(6.2, sus, st) == []                      # said once, not at every poll
    down = dict(up, C={"state": "down", "by": ["A", "B"], "process": "killed"})
    assert [x["text"] for x in n.picture(7.0, down, st)] == [
        "every running node now considers C down"]
    back = {**st, "C": {"generation": 2, "hints": {}}}
    texts = [x["text"] for x in n.picture(8.0, up, back)]
    assert "C is seen up again by every node" in texts
    assert any("generation 2" in t for t in texts)
    again = n.say(8.5, "C is seen up again by every node")
    assert again["text"].endswith("(x2)") and again["update"]   # folded, not repeated


# -- the server on a real cluster ---------------------------------------------------------------------

live_pids: list[int] = []      # every node process the live cluster ran, restarts included


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A traced 5-node cluster recorded in a state file, and a dashboard following it."""
    from dynamo_lab.cli import save_state
    from dynamo_lab.dashboard.server import DashboardThread
    from dynamo_lab.tcp.cluster import TcpCluster
    root = tmp_path_factory.mktemp("dash")
    state_path = str(root / "cluster.json")
    cluster = TcpCluster(5, data_dir=str(root / "data"), trace=True, gossip_interval_s=0.3,
                         suspect_after_s=1.5, request_timeout_s=0.3, handoff_interval_s=0.3)
    pids = live_pids
    pids[:] = list(cluster.pids.values())
    save_state(state_path, dict(cluster.state(), owns_data=False))
    dash = DashboardThread(state_path, poll_s=0.1)
    url = dash.start()
    try:
        yield cluster, dash, url, state_path
    finally:
        dash.stop()
        cluster.close()
        assert not [p for p in pids if pid_alive(p)]


def _open(url, *, cookie="", data=None, headers=None, method=None):
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if cookie:
        req.add_header("Cookie", cookie)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def _cookie(dash) -> str:
    d = dash.dashboard
    return f"{d.cookie_name}={d.key}"


def _post(dash, path, body, **kw):
    base = f"http://127.0.0.1:{dash.dashboard.port}"
    code, _h, raw = _open(base + path, cookie=kw.pop("cookie", _cookie(dash)),
                          data=json.dumps(body).encode(), method="POST",
                          headers={"Content-Type": "application/json", **kw.pop("headers", {})})
    return code, json.loads(raw)


def test_the_key_sets_a_strict_cookie_and_nothing_answers_without_it(live):
    _cluster, dash, url, _state = live
    base = f"http://127.0.0.1:{dash.dashboard.port}"
    code, headers, _ = _open(url)
    assert code == 302 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert _open(base + "/")[0] == 403
    assert _open(base + "/api/snapshot")[0] == 403
    assert _open(base + "/?key=wrong")[0] == 403
    assert _open(base + "/", cookie=_cookie(dash))[0] == 200
    # another Host (DNS rebinding), a foreign Origin (a web page), a form post: refused
    assert _open(base + "/api/snapshot", cookie=_cookie(dash),
                 headers={"Host": f"evil.example:{dash.dashboard.port}"})[0] == 403
    code, body = _post(dash, "/api/action", {"action": "heal"},
                       headers={"Origin": "http://evil.example"})
    assert code == 403 and "cross-origin" in body["error"]
    code, _h, _raw = _open(base + "/api/action", cookie=_cookie(dash), data=b"action=heal",
                           method="POST",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert code == 415
    assert dash.dashboard.url.startswith("http://127.0.0.1:")


def _snapshot(dash) -> dict:
    base = f"http://127.0.0.1:{dash.dashboard.port}"
    return json.loads(_open(base + "/api/snapshot", cookie=_cookie(dash))[2])


def test_the_stream_starts_with_the_snapshot_and_the_recent_past(live):
    cluster, dash, _url, _state = live
    cluster.client("x").put("cart", ["book"], via="A")
    eventually(lambda: any(s["c"] == "client" for k, s in dash.dashboard.history if k == "s"),
               what="the put on the strip")
    base = f"http://127.0.0.1:{dash.dashboard.port}"
    req = urllib.request.Request(base + "/api/events", headers={"Cookie": _cookie(dash)})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        event = resp.readline().decode()
        while not event.startswith("event:"):
            event = resp.readline().decode()
        assert event.strip() == "event: hello"
        hello = json.loads(resp.readline().decode()[len("data: "):])
    snap = hello["snapshot"]
    assert snap["nodes"] == ["A", "B", "C", "D", "E"]
    assert set(snap["ring"]) == set(snap["nodes"]) and all(len(t) == 8 for t in snap["ring"].values())
    assert all(v["state"] == "up" for v in snap["verdicts"].values())
    assert snap["watch"]["preference"] == cluster.preference_list("cart")
    assert any(s["c"] == "client" and "cart" in s["keys"] for s in hello["sends"])
    assert any(e["x"] is None for e in hello["ends"])


def test_kill_from_the_dashboard_shows_down_within_suspect_after_plus_one_second(live):
    cluster, dash, _url, state_path = live
    t0 = time.monotonic()
    code, body = _post(dash, "/api/action", {"action": "kill", "node": "E"})
    assert code == 200 and body["message"].startswith("kill -9")
    assert "E" not in cluster.up() or not pid_alive(cluster._procs["E"].pid)
    # suspect_after_s + 1 s (the bound), plus the dashboard's own polls: one to see
    # it, one it holds "suspected by all" before "down" (0.2 s each), and a margin
    eventually(lambda: _snapshot(dash)["verdicts"]["E"]["state"] == "down", timeout_s=3.0,
               what="E shown down")
    assert time.monotonic() - t0 < 1.5 + 1.0 + 0.5
    saved = json.loads(Path(state_path).read_text())
    assert next(n for n in saved["nodes"] if n["name"] == "E")["pid"] == 0  # the CLI sees it
    code, body = _post(dash, "/api/action", {"action": "restart", "node": "E"})
    assert code == 200 and "generation 2" in body["message"]
    eventually(lambda: _snapshot(dash)["verdicts"]["E"]["state"] == "up", what="E up again")
    # the restart wrote E's new PID in the state file; the cluster object learns it there,
    # so that closing the cluster stops the new process by its PID
    cluster._procs["E"].proc = None
    cluster._procs["E"].pid = next(n for n in json.loads(Path(state_path).read_text())["nodes"]
                                   if n["name"] == "E")["pid"]
    live_pids.append(cluster._procs["E"].pid)
    lines = [x["text"] for x in dash.dashboard.narrator.lines]
    assert any(t.startswith("E killed with SIGKILL") for t in lines)
    assert any("considers E down" in t for t in lines)
    code, body = _post(dash, "/api/action", {"action": "kill", "node": "nobody"})
    assert code == 400 and "no node" in body["error"]


def test_partition_put_get_and_merge_from_the_dashboard(live):
    cluster, dash, _url, _state = live
    d = dash.dashboard
    # another test of this module may have killed a node (and, failing, not restarted it):
    # start from every node up
    for name in sorted(set(cluster.nodes) - set(cluster.up())):
        assert _post(dash, "/api/action", {"action": "restart", "node": name})[0] == 200
        cluster._procs[name].proc = None
        cluster._procs[name].pid = next(n for n in json.loads(Path(_state).read_text())["nodes"]
                                        if n["name"] == name)["pid"]
        live_pids.append(cluster._procs[name].pid)
    def all_up():
        verdicts = _snapshot(dash).get("verdicts") or {}       # none before the first poll
        running = d.running()
        return (set(verdicts) == set(running) == set(cluster.nodes)
                and all(v["state"] == "up" for v in verdicts.values()) and all(running.values()))
    eventually(all_up, what="every node shown up, its process running")
    key = "cart:merge"
    pref = cluster.ring().successors(key)
    side1, side2 = [pref[0], pref[3]], [pref[1], pref[2], pref[4]]
    code, body = _post(dash, "/api/kv", {"op": "put", "key": key, "value": ["book"],
                                         "via": pref[0]})
    assert code == 200 and body["code"] == 200, (code, body, d.running())
    code, body = _post(dash, "/api/kv", {"op": "get", "key": key, "via": pref[0]})
    ctx = body["answer"]["context"]
    assert body["clock"].startswith("[(")
    code, body = _post(dash, "/api/action", {"action": "partition", "groups": [side1, side2]})
    assert code == 200
    eventually(lambda: len(_snapshot(dash)["groups"]) == 2, what="the split shown")
    assert sorted(map(sorted, _snapshot(dash)["groups"])) == sorted([sorted(side1), sorted(side2)])

    def sides_suspect():
        v = _snapshot(dash)["views"]
        return all(v[a][b] == "cut" for a in side1 for b in side2) and \
            all(v[b][a] == "cut" for a in side1 for b in side2)
    eventually(sides_suspect, what="each side suspects the other")
    for via, item in ((pref[0], "lamp"), (pref[1], "mug")):
        code, body = _post(dash, "/api/kv", {"op": "put", "key": key, "via": via,
                                             "value": ["book", item], "context": ctx})
        assert body["code"] == 200, body
    code, body = _post(dash, "/api/action", {"action": "settle"})
    assert code == 200 and body["message"].startswith("settled")
    code, body = _post(dash, "/api/kv", {"op": "get", "key": key})
    assert sorted(body["answer"]["values"]) == [["book", "lamp"], ["book", "mug"]]
    code, body = _post(dash, "/api/kv", {"op": "put", "key": key, "value": ["book", "lamp", "mug"],
                                         "context": body["answer"]["context"]})
    assert body["code"] == 200
    assert cluster.client("check").get(key).values == [["book", "lamp", "mug"]]
    assert d.snapshot["watch"]["key"] == key
    code, body = _post(dash, "/api/action", {"action": "drop", "probability": 0.2})
    assert code == 200
    eventually(lambda: _snapshot(dash)["drop"] == 0.2, what="the drop rate shown")
    _post(dash, "/api/action", {"action": "heal"})
    eventually(lambda: _snapshot(dash)["drop"] == 0.0, what="the drop rate healed")


def test_a_new_cluster_in_the_state_file_is_followed(tmp_path):
    from dynamo_lab.dashboard.server import Dashboard
    state = tmp_path / "cluster.json"
    d = Dashboard(str(state))
    assert d.follow() is False and d.snapshot["cluster"] is None
    state.write_text(json.dumps({"cluster_id": "dl-1", "nodes": [], "data_dir": str(tmp_path),
                                 "t0_wall": 5.0}))
    assert d.follow() is True and d.t0 == 5.0
    os.utime(state, (time.time() + 5, time.time() + 5))
    assert d.follow() is False                              # same cluster: no reset
    state.unlink()
    assert d.follow() is True and d.state is None


def test_the_last_demo_stays_on_the_page_after_its_cluster_stopped_but_not_beside_a_new_one(
        tmp_path):
    from dynamo_lab.dashboard.demos import status_path
    from dynamo_lab.dashboard.server import Dashboard
    state = tmp_path / "cluster.json"
    d = Dashboard(str(state))
    status_path(str(state)).write_text(json.dumps({"demo": "handoff", "cluster": "dl-1",
                                                   "phase": "finished", "step": 5, "of": 5}))
    d.follow()
    d._pump_demo()                                       # no cluster: the last demo, as it ended
    assert d.demo_state["phase"] == "finished" and d.snapshot["cluster"] is None
    state.write_text(json.dumps({"cluster_id": "dl-2", "nodes": [], "data_dir": str(tmp_path)}))
    d.follow()
    d._pump_demo()
    assert d.demo_state is None                          # another cluster: not its demo
    status_path(str(state)).write_text(json.dumps({"demo": "join", "cluster": "dl-2",
                                                   "phase": "waiting", "step": 1, "of": 4}))
    d._pump_demo()
    assert d.demo_state["demo"] == "join"


# -- the demos: the same outcome every run ------------------------------------------------------------

def _run_demo(name: str, cwd: Path) -> tuple[dict, list[str], list[int]]:
    proc = subprocess.run([sys.executable, "-m", "dynamo_lab.cli", "demo", name, "--auto",
                           "--delay", "0", *FAST], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    out = proc.stdout
    pids = [int(p) for p in re.findall(r"\bpid (\d+)", out)]
    assert proc.returncode == 0, out + proc.stderr
    outcome = json.loads(re.search(r"^outcome: (.*)$", out, re.M).group(1))
    steps = re.findall(r"^-- step \d+/\d+: (.*)$", out, re.M)
    return outcome, steps, pids


@pytest.mark.slow
@pytest.mark.parametrize("name", ["handoff", "siblings", "stale", "antientropy", "join"])
def test_each_demo_ends_the_same_way_twice(name, tmp_path):
    first = _run_demo(name, tmp_path)
    second = _run_demo(name, tmp_path)
    assert first[0] == second[0]
    assert first[1] == second[1]
    assert not [p for p in first[2] + second[2] if pid_alive(p)], "every node stopped by PID"
    assert not (tmp_path / ".dynamo-lab" / "cluster.json").exists()
    outcome = first[0]
    if name == "handoff":
        assert outcome["read"] == [["book", "pen"]] and outcome["stand_in"] not in outcome["preference"]
    elif name == "siblings":
        assert outcome["siblings"] == [["book", "pen", "lamp"], ["book", "pen", "mug"]]
        assert outcome["merged"] == [["book", "lamp", "mug", "pen"]]
    elif name == "stale":
        assert outcome["stale_read"] == ["v1"] and outcome["after_heal"] == ["v2"]
    elif name == "antientropy":
        assert outcome["after_wipe"] == 0 and len(outcome["repaired"]) == outcome["victim_keys"]
    elif name == "join":
        assert outcome["after"]["E"] == len(outcome["new_holds"]) > 0
        assert sum(outcome["after"].values()) == sum(outcome["before"].values()) == 60


def test_a_demo_refuses_a_cluster_already_running_unless_told(tmp_path):
    from dynamo_lab.dashboard.demos import DEMOS, DemoError, start_cluster
    state = str(tmp_path / ".dynamo-lab" / "cluster.json")
    demo = DEMOS["handoff"]
    first = start_cluster(state, demo, {}, detached=False)
    pids = list(first.pids.values())
    try:
        with pytest.raises(DemoError, match="already running"):
            start_cluster(state, demo, {}, detached=False)
        second = start_cluster(state, demo, {}, detached=False, replace=True)
        pids += list(second.pids.values())
        second.close()
    finally:
        first.close()
    assert not [p for p in pids if pid_alive(p)]


# -- the same views in a notebook -----------------------------------------------------------------

def test_the_notebook_widgets_take_a_tcp_cluster_as_they_take_a_sim_cluster(tmp_path):
    import dynamo_lab as dl
    from dynamo_lab.tcp.cluster import TcpCluster
    from dynamo_lab.viz.widgets import RingWidget, SpaceTimeWidget
    sim = dl.SimCluster(nodes=4, seed=1)
    sim.client("a").put("cart", ["book"])
    with TcpCluster(4, data_dir=str(tmp_path / "data"), trace=True, gossip_interval_s=0.3) as tcp:
        pids = list(tcp.pids.values())
        tcp.client("a").put("cart", ["book"], via="A")
        for cluster in (sim, tcp):
            ring = RingWidget(cluster)
            assert ring.nodes == ["A", "B", "C", "D"] and ring.vnodes == 8 and ring.n == 3
            space = SpaceTimeWidget(cluster, key="cart")
            kinds = {type(m.send.msg).__name__ for m in space.messages}
            assert {"ClientPut", "ReplicaPut", "ReplicaPutAck", "ClientReply"} <= kinds, kinds
    assert not [p for p in pids if pid_alive(p)]
