"""The ``dynamo-lab`` command line: help everywhere, clear errors, and a whole live session.

The live session starts a real detached cluster with ``dynamo-lab cluster up`` (as a lecturer
would) and stops it with ``cluster down``; whatever happens, the test kills every PID the
state file names before it ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dynamo_lab import cli
from dynamo_lab.tcp.cluster import is_node_process, pid_alive

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--set", "gossip_interval_s=0.2", "--set", "suspect_after_s=1.0",
        "--set", "request_timeout_s=0.3", "--set", "handoff_interval_s=0.2"]


@pytest.mark.parametrize("argv", [
    [], ["cluster"], ["cluster", "up"], ["cluster", "status"], ["cluster", "down"],
    ["cluster", "kill"], ["cluster", "restart"], ["cluster", "partition"], ["cluster", "heal"],
    ["get"], ["put"], ["delete"], ["node"],
])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.run(argv + ["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: dynamo-lab") and len(out) > 200


@pytest.mark.parametrize("argv,message", [
    (["get", "cart"], "no cluster running here"),
    (["put", "cart", "[1]"], "no cluster running here"),
    (["delete", "cart", "--context", "x"], "no cluster running here"),
    (["cluster", "status"], "no cluster running here"),
    (["cluster", "down"], "no cluster running here"),
    (["cluster", "kill", "A"], "no cluster running here"),
    (["put", "cart", "[oops"], "must be JSON"),
    (["put", "cart", "NaN"], "must be JSON"),
    (["put", "cart", "book"], "strings need their double quotes"),
    (["get", ""], "empty string is not a key"),
    (["cluster", "up", "--set", "colour=blue"], "--set takes NAME=VALUE"),
    (["cluster", "up", "--nodes", "2"], "need at least 3 nodes"),
    (["cluster", "up", "--r", "4"], "R and W cannot exceed N"),
])
def test_errors_are_one_clear_line_with_exit_code_2(argv, message, tmp_path, capsys):
    code = cli.run(argv + ["--state", str(tmp_path / "state.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "state.json").exists()


def test_a_broken_state_file_is_reported_not_a_traceback(tmp_path, capsys):
    state = tmp_path / "state.json"
    state.write_text("{\"nodes\": 3}")
    assert cli.run(["cluster", "status", "--state", str(state)]) == 2
    assert "not a dynamo-lab cluster state" in capsys.readouterr().err


def _kill_leftovers(state_file: Path) -> list[int]:
    """Whatever the test did, stop every node the state file names, by PID."""
    pids = []
    if state_file.exists():
        for node in json.loads(state_file.read_text())["nodes"]:
            pid = node["pid"]
            if pid and pid_alive(pid) and is_node_process(pid, node["name"]):
                os.kill(pid, signal.SIGKILL)
            pids.append(pid)
    return pids


@pytest.mark.slow
def test_a_live_demo_session_from_up_to_down(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = tmp_path / ".dynamo-lab" / "cluster.json"          # the default place
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    seen_pids: set[int] = set()
    try:
        up = subprocess.run([sys.executable, "-m", "dynamo_lab.cli", "cluster", "up",
                             "--nodes", "3", *FAST], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
        assert up.returncode == 0, up.stderr
        nodes = json.loads(state.read_text())["nodes"]
        pids = {n["name"]: n["pid"] for n in nodes}
        seen_pids.update(pids.values())
        assert sorted(pids) == ["A", "B", "C"] and all(pid_alive(p) for p in pids.values())
        # The state file and the curl header hold the secrets: this user's only; no node has
        # a secret on its command line (any user of the machine can read those in `ps`).
        saved = json.loads(state.read_text())
        header = state.with_suffix(".token-header")
        assert state.stat().st_mode & 0o777 == 0o600 and header.stat().st_mode & 0o777 == 0o600
        assert header.read_text() == f"X-Dynamo-Token: {saved['token']}\n"
        for pid in pids.values():
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
            assert saved["secret"] not in argv and saved["token"] not in argv
        for n in nodes:
            assert n["http"].split(":")[1] in up.stdout and str(n["pid"]) in up.stdout
        assert cli.run(["cluster", "up"]) == 2
        assert "already running" in capsys.readouterr().err

        assert cli.run(["put", "cart", "[\"book\"]"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("ok: cart written") and "context: c1." in out
        assert cli.run(["get", "cart", "--node", "B"]) == 0
        out = capsys.readouterr().out
        assert "cart = [\"book\"]" in out
        context = out.split("context: ")[1].strip()
        assert cli.run(["get", "nothing-here"]) == 1
        out = capsys.readouterr().out
        assert "no value" in out and "put without --context" in out and "context" not in \
            out.replace("--context", "")                    # no "context: None"
        assert cli.run(["get", "cart", "--context-only"]) == 0
        assert capsys.readouterr().out == context + "\n"

        assert cli.run(["cluster", "kill", "B"]) == 0
        assert not pid_alive(pids["B"])
        capsys.readouterr()
        assert cli.run(["cluster", "status"]) == 0
        assert "DOWN" in capsys.readouterr().out
        assert cli.run(["put", "cart", "[\"book\",\"pen\"]", "--context", context,
                        "--node", "A"]) == 0
        assert cli.run(["cluster", "restart", "B"]) == 0
        restarted = json.loads(state.read_text())["nodes"][1]
        seen_pids.add(restarted["pid"])
        assert restarted["pid"] != pids["B"] and pid_alive(restarted["pid"])
        assert restarted["generation"] == 2

        assert cli.run(["cluster", "partition", "A", "B,C"]) == 0
        assert json.loads(state.read_text())["blocked"] == [["A", "B"], ["A", "C"],
                                                            ["B", "A"], ["C", "A"]]
        assert cli.run(["cluster", "heal", "--wait"]) == 0
        assert "settled after" in capsys.readouterr().out
        assert json.loads(state.read_text())["blocked"] == []
        capsys.readouterr()
        assert cli.run(["get", "cart", "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["values"] == [["book", "pen"]]
        assert cli.run(["delete", "cart", "--context", answer["context"]]) == 0
        assert cli.run(["get", "cart"]) == 1

        assert cli.run(["cluster", "down"]) == 0
        assert "cluster down" in capsys.readouterr().out
        assert not state.exists() and not (tmp_path / ".dynamo-lab" / "data").exists()
        assert not header.exists()
        assert not any(pid_alive(p) for p in seen_pids)
        assert cli.run(["get", "cart"]) == 2
    finally:
        seen_pids.update(_kill_leftovers(state))
    assert not any(pid_alive(p) for p in seen_pids if p)


def test_the_console_script_is_installed_and_answers_help():
    script = Path(sys.executable).with_name("dynamo-lab")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "dynamo_lab.cli"]
    out = subprocess.run(argv + ["cluster", "up", "--help"], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0 and "--nodes" in out.stdout


@pytest.mark.slow
def test_heal_wait_makes_the_demo_climax_deterministic(tmp_path, capsys):
    """The lecturer guide's climax: concurrent writes on both sides of a partition, heal, get.
    Right after a plain heal a read may meet only one side (hints not yet delivered); after
    `heal --wait` every hint is home, so any read quorum meets both writes."""
    state = tmp_path / "state.json"
    st = ["--state", str(state)]
    try:
        assert cli.run(["cluster", "up", "--nodes", "4", *FAST, *st]) == 0
        capsys.readouterr()
        assert cli.run(["put", "cart", "[\"book\"]", "--context-only", *st]) == 0
        ctx = capsys.readouterr().out.strip()
        assert ctx.startswith("c1.")
        assert cli.run(["cluster", "partition", "A,B", "C,D", *st]) == 0

        def sides_apart() -> bool:
            capsys.readouterr()
            cli.run(["cluster", "status", "--json", *st])
            views = json.loads(capsys.readouterr().out)
            return all(set(views[n]["suspected"]) == ({"C", "D"} if n in "AB" else {"A", "B"})
                       for n in "ABCD")
        deadline = time.monotonic() + 30
        while not sides_apart():
            assert time.monotonic() < deadline, "each side suspects the other"
            time.sleep(0.05)
        assert cli.run(["put", "cart", "[\"book\",\"lamp\"]", "--context", ctx, "--node", "A",
                        *st]) == 0
        assert cli.run(["put", "cart", "[\"book\",\"mug\"]", "--context", ctx, "--node", "C",
                        *st]) == 0
        capsys.readouterr()
        assert cli.run(["cluster", "heal", "--wait", *st]) == 0
        assert "settled after" in capsys.readouterr().out
        for node in "ABCD":           # whichever node coordinates, both siblings come back
            assert cli.run(["get", "cart", "--node", node, "--json", *st]) == 0
            values = json.loads(capsys.readouterr().out)["values"]
            assert sorted(values) == [["book", "lamp"], ["book", "mug"]], (node, values)
        assert cli.run(["cluster", "down", *st]) == 0
    finally:
        _kill_leftovers(state)


def test_an_overloaded_node_is_reported_as_such_not_as_a_quorum_failure():
    import argparse
    answer = {"ok": False, "error_kind": "overloaded", "needed": 0, "got": 0,
              "error": "node A is overloaded (16 requests in flight, its limit); nothing was "
                       "applied: retry after a short pause or ask another node"}
    with pytest.raises(cli.CliError) as err:
        cli._outcome(503, answer, argparse.Namespace(json=False))
    assert err.value.code == 1 and "overloaded" in str(err.value)
    assert "quorum" not in str(err.value)
