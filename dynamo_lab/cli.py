"""``dynamo-lab``: run a real Dynamo cluster on this machine and talk to it.

::

    dynamo-lab cluster up --nodes 5          # node processes on 127.0.0.1; prints their ports
    dynamo-lab put cart '["book"]'           # prints the context to write with next
    dynamo-lab get cart                      # values (siblings) and context
    dynamo-lab cluster kill C                # SIGKILL one node's process
    dynamo-lab cluster partition A,B C,D,E   # cut the network in two; `cluster heal` mends it
    dynamo-lab cluster status                # each node's view: who is up, suspected, hints
    dynamo-lab cluster down                  # stop every node (by PID) and delete the data

The running cluster is recorded in a state file (``.dynamo-lab/cluster.json`` in the current
directory by default; ``--state`` to change it), which every other command reads.

Exit codes: 0 success; 1 the operation failed (key not found, quorum not reached, a node
down, a cluster that would not start); 2 bad input or no cluster running.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Optional

DEFAULT_STATE = os.path.join(".dynamo-lab", "cluster.json")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A message for the user and the exit code to leave with (never a traceback)."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


# -- parsing helpers ----------------------------------------------------------------------------

def parse_json_value(text: str, what: str = "VALUE") -> Any:
    """Strict JSON from the command line (no NaN); :class:`CliError` saying how to quote it."""
    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")
    try:
        return json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise CliError(f"{what} must be JSON, e.g. '[\"book\"]', '{{\"qty\": 2}}' or '\"text\"' "
                       f"(strings need their double quotes inside shell quotes); got {text!r} "
                       f"({exc})") from None


def parse_settings(items: list[str]) -> dict:
    """``--set NAME=VALUE`` items -> NodeConfig keyword arguments (:class:`CliError` if bad)."""
    from .errors import ConfigError
    from .tcp.process import config_settings
    try:
        return config_settings(items)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


# -- the state file -----------------------------------------------------------------------------

def load_state(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise CliError(f"no cluster running here (no state file {path}); start one with "
                       f"`dynamo-lab cluster up --nodes 5`, or point --state at its file") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the cluster state {path}: {exc}; if no cluster runs, "
                       f"delete that file") from None


def save_state(path: str, state: dict) -> None:
    """Write the state atomically, readable by this user only (it holds the cluster's secret
    and admin token): the file is created 0600, never widened afterwards."""
    _write_private(path, json.dumps(state, indent=2))


def token_header_path(state_path: str) -> str:
    """Where ``cluster up`` writes the admin token as a header line, for ``curl -H @FILE``
    (so the token never appears on curl's command line either)."""
    return str(Path(state_path).with_suffix(".token-header"))


def _write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by this user only (0600)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def attach(path: str):
    from .errors import ConfigError
    from .tcp.cluster import TcpCluster
    state = load_state(path)
    try:
        cluster = TcpCluster.attach(state)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    return cluster, state


def save_cluster(path: str, cluster, state: dict) -> None:
    new = cluster.state()
    new["owns_data"] = state.get("owns_data", False)
    save_state(path, new)


# -- cluster commands ---------------------------------------------------------------------------

def cmd_cluster_up(args) -> int:
    from .errors import ConfigError
    from .tcp.cluster import ClusterError, TcpCluster
    from .tcp.http_client import TOKEN_HEADER
    state_path = args.state
    if os.path.exists(state_path):
        cluster, state = attach(state_path)
        running = cluster.up()
        if running:
            raise CliError(f"a cluster is already running here (nodes {', '.join(running)}; "
                           f"state {state_path}); stop it with `dynamo-lab cluster down`")
        print(f"note: clearing the state of a stopped cluster ({state_path})")
        _remove_cluster_files(state_path, state)
    data_dir = args.data_dir or os.path.join(os.path.dirname(state_path) or ".", "data")
    owns = args.data_dir is None
    if os.path.isdir(data_dir) and any(Path(data_dir).iterdir()):
        raise CliError(f"{data_dir} holds files from an earlier cluster; remove it or pass "
                       f"--data-dir with a new directory")
    settings = parse_settings(args.set or [])
    try:
        cluster = TcpCluster(args.nodes, n=args.n, r=args.r, w=args.w, vnodes=args.vnodes,
                             seed=args.seed, data_dir=data_dir, detached=True,
                             max_inflight=args.max_inflight, parts=args.parts,
                             startup_timeout_s=args.timeout,
                             trace=args.trace or args.dashboard, **settings)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    except ClusterError as exc:
        raise CliError(f"the cluster did not start: {exc}", EXIT_FAILED) from None
    state = cluster.state()
    state["owns_data"] = owns
    save_state(state_path, state)
    _write_private(token_header_path(state_path), f"{TOKEN_HEADER}: {cluster.token}\n")
    cfg = cluster.config
    print(f"cluster {cluster.cluster_id} is up: {len(cluster.nodes)} nodes, N={cfg.n} R={cfg.r} "
          f"W={cfg.w}, data in {data_dir}")
    _print_nodes(cluster)
    print(f"\nstate: {state_path}   logs: {os.path.join(data_dir, 'logs')}   admin token "
          f"header (curl -H @FILE): {token_header_path(state_path)}")
    print("next: dynamo-lab put cart '[\"book\"]'   dynamo-lab get cart   "
          "dynamo-lab cluster status   dynamo-lab cluster down", flush=True)
    if args.dashboard:
        from .dashboard.server import serve
        return serve(state_path, port=args.dashboard_port, open_browser=args.open)
    return EXIT_OK


def _print_nodes(cluster) -> None:
    rows = [("node", "pid", "peer address", "http address")]
    for name in cluster.nodes:
        p = cluster._procs[name]
        rows.append((name, str(p.pid or "-"), p.address, f"http://{p.http}"))
    _table(rows)


def _table(rows: list[tuple]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def cmd_cluster_status(args) -> int:
    cluster, _state = attach(args.state)
    views = cluster.views()
    if args.json:
        print(json.dumps(views, indent=2, sort_keys=True))
        return EXIT_OK
    cfg = cluster.config
    print(f"cluster {cluster.cluster_id}: N={cfg.n} R={cfg.r} W={cfg.w}  (state {args.state})")
    rows = [("node", "pid", "http address", "gen", "keys", "hints", "view (what this node believes)")]
    for name in cluster.nodes:
        p, st = cluster._procs[name], views[name]
        if st is None:
            rows.append((name, "-", p.http, "-", "-", "-", "DOWN (no process)"
                         if not cluster._alive(p) else "not answering"))
            continue
        view = []
        for other, m in st["members"].items():
            mark = {"leaving": "!", "left": "x"}.get(m["status"], "?" if m["suspected"] else "")
            view.append(other + mark)
        hints = sum(st["hints"].values())
        held = ",".join(f"{n}:{c}" for n, c in st["hints"].items())
        rows.append((name, str(st["pid"]), st["http"], str(st["generation"]), str(st["keys"]),
                     f"{hints} ({held})" if hints else "0", " ".join(view)))
    _table(rows)
    print("view: X up, X? suspected, X! leaving, Xx left")
    if cluster.blocked:
        print("blocked links: " + ", ".join(f"{a}->{b}" for a, b in sorted(cluster.blocked)))
    return EXIT_OK


def _remove_cluster_files(state_path: str, state: dict, keep_data: bool = False) -> None:
    if state.get("owns_data") and state.get("data_dir") and not keep_data:
        shutil.rmtree(state["data_dir"], ignore_errors=True)
    for path in (state_path, token_header_path(state_path)):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def cmd_cluster_down(args) -> int:
    cluster, state = attach(args.state)
    running = cluster.pids
    cluster.close(kill=args.kill)
    for name, pid in running.items():
        print(f"stopped {name} (pid {pid})")
    _remove_cluster_files(args.state, state, keep_data=args.keep_data)
    if args.keep_data:
        print(f"data kept in {state.get('data_dir')}")
    print("cluster down")
    return EXIT_OK


def cmd_cluster_kill(args) -> int:
    cluster, state = attach(args.state)
    _check_node(cluster, args.node)
    pid = cluster.pids.get(args.node)
    if pid is None:
        raise CliError(f"{args.node} is not running", EXIT_FAILED)
    cluster.crash(args.node)
    save_cluster(args.state, cluster, state)
    print(f"killed {args.node} (pid {pid}) with SIGKILL; its store stays on disk. "
          f"Bring it back with `dynamo-lab cluster restart {args.node}`")
    return EXIT_OK


def cmd_cluster_restart(args) -> int:
    from .tcp.cluster import ClusterError
    cluster, state = attach(args.state)
    _check_node(cluster, args.node)
    if args.node in cluster.up():
        raise CliError(f"{args.node} is already running (pid {cluster.pids[args.node]})", EXIT_FAILED)
    try:
        cluster.restart(args.node)
    except ClusterError as exc:
        save_cluster(args.state, cluster, state)
        raise CliError(str(exc), EXIT_FAILED) from None
    save_cluster(args.state, cluster, state)
    p = cluster._procs[args.node]
    print(f"restarted {args.node} (pid {p.pid}, generation {p.generation}) from its store; "
          f"peers {p.address}, http://{p.http}")
    return EXIT_OK


def cmd_cluster_partition(args) -> int:
    from .errors import ConfigError
    from .faults import describe_partition
    cluster, state = attach(args.state)
    groups = [[x for x in g.split(",") if x] for g in args.groups]
    try:
        cluster.partition(*groups, one_way=args.one_way)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    save_cluster(args.state, cluster, state)
    print("partitioned: " + describe_partition(groups, args.one_way))
    return EXIT_OK


def cmd_cluster_heal(args) -> int:
    from .tcp.cluster import ClusterError
    cluster, state = attach(args.state)
    cluster.heal()
    save_cluster(args.state, cluster, state)
    print("healed: every link restored", flush=True)
    if args.wait:
        try:
            took = cluster.wait_quiet(args.timeout)
        except ClusterError as exc:
            raise CliError(f"not settled: {exc}", EXIT_FAILED) from None
        print(f"settled after {took:.1f} s: every node sees every other up and no hints are "
              f"held, so a read now meets every acknowledged write")
    return EXIT_OK


def _check_node(cluster, name: str) -> None:
    if name not in cluster.nodes:
        raise CliError(f"no node {name!r}; nodes are {', '.join(cluster.nodes)}")


# -- key-value commands -------------------------------------------------------------------------

def _kv(args, method: str, body: Any) -> tuple[int, dict, str]:
    """Send one request to --node, or to the first node that answers."""
    from .tcp.cluster import is_node_process, pid_alive
    from .tcp.http_client import http_json, kv_path
    state = load_state(args.state)
    nodes = {n["name"]: n for n in state.get("nodes", []) if n["name"] not in state.get("removed", [])}
    if args.node is not None and args.node not in nodes:
        raise CliError(f"no node {args.node!r}; nodes are {', '.join(nodes)}")
    order = [args.node] if args.node else list(nodes)
    tried = []
    for name in order:
        node = nodes[name]
        if not args.node and not (pid_alive(node["pid"]) and is_node_process(node["pid"], name)):
            tried.append(f"{name} is down")
            continue
        try:
            code, answer = http_json(method, node["http"], kv_path(args.key), body,
                                     timeout_s=30.0)
        except ConnectionRefusedError:
            tried.append(f"{name} is down")
            continue
        except (OSError, ValueError) as exc:
            raise CliError(f"{name} failed to answer: {exc}", EXIT_FAILED) from None
        if not isinstance(answer, dict):
            raise CliError(f"{name} answered {code} with {answer!r}", EXIT_FAILED)
        return code, answer, name
    raise CliError("no node answered: " + "; ".join(tried), EXIT_FAILED)


def _check_key(key: str) -> None:
    from .errors import InvalidKey
    from .hashing import check_key
    try:
        check_key(key)
    except InvalidKey as exc:
        raise CliError(str(exc)) from None


def _outcome(code: int, answer: dict, args) -> int:
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    if code == 400 or code == 413:
        raise CliError(f"refused: {answer.get('error')}")
    if code == 503 and answer.get("error_kind") == "overloaded":
        raise CliError(f"{answer.get('error')}", EXIT_FAILED)
    if code == 503:
        applied = ("the write MAY have been applied on some replicas"
                   if answer.get("may_have_applied") else "nothing was applied")
        if answer.get("op") == "get":
            applied = "nothing was changed"
        raise CliError(f"quorum not reached ({answer.get('got')} of {answer.get('needed')} "
                       f"replies): {applied}. {answer.get('error') or ''}".strip(), EXIT_FAILED)
    if code not in (200, 404):
        raise CliError(f"unexpected answer {code}: {answer.get('error')}", EXIT_FAILED)
    return EXIT_OK


def cmd_get(args) -> int:
    _check_key(args.key)
    code, answer, via = _kv(args, "GET", None)
    _outcome(code, answer, args)
    if args.json:
        return EXIT_OK if code == 200 else EXIT_FAILED
    if args.context_only:
        print(answer.get("context") or "")
        return EXIT_OK if code == 200 else EXIT_FAILED
    replies = ",".join(answer.get("replies") or [])
    values = answer.get("values") or []
    if code == 404:
        deleted = " (deleted: write over the tombstone with this context)" \
            if answer.get("context") else "; put without --context to create it"
        print(f"{args.key}: no value (coordinator {answer.get('coordinator')}, replies "
              f"{replies}){deleted}")
    elif len(values) == 1:
        print(f"{args.key} = {json.dumps(values[0])}   "
              f"(coordinator {answer.get('coordinator')}, replies {replies})")
    else:
        print(f"{args.key}: {len(values)} concurrent siblings (coordinator "
              f"{answer.get('coordinator')}, replies {replies}); reconcile them and put the "
              f"result with this context:")
        for v in values:
            print(f"  {json.dumps(v)}")
    if answer.get("context"):
        print(f"context: {answer['context']}")
    return EXIT_OK if code == 200 else EXIT_FAILED


def cmd_put(args) -> int:
    _check_key(args.key)
    value = parse_json_value(args.value)
    code, answer, via = _kv(args, "PUT", {"value": value, "context": args.context})
    _outcome(code, answer, args)
    if args.context_only:
        print(answer.get("context") or "")
    elif not args.json:
        print(f"ok: {args.key} written (coordinator {answer.get('coordinator')}, replicas "
              f"{','.join(answer.get('replies') or [])})")
        print(f"context: {answer.get('context')}")
    return EXIT_OK


def cmd_delete(args) -> int:
    _check_key(args.key)
    code, answer, via = _kv(args, "DELETE", {"context": args.context})
    _outcome(code, answer, args)
    if args.context_only:
        print(answer.get("context") or "")
    elif not args.json:
        print(f"ok: {args.key} deleted (a tombstone; coordinator {answer.get('coordinator')}, "
              f"replicas {','.join(answer.get('replies') or [])})")
        print(f"context: {answer.get('context')}")
    return EXIT_OK


# -- the lecture: dashboard and demos ------------------------------------------------------------

def cmd_dashboard(args) -> int:
    from .dashboard.server import serve
    if not os.path.exists(args.state):
        print(f"no cluster here yet ({args.state}); the page waits for one "
              f"(`dynamo-lab cluster up --dashboard` or `dynamo-lab demo NAME`)", flush=True)
    return serve(args.state, port=args.port, open_browser=args.open)


def cmd_demo(args) -> int:
    from .dashboard.demos import DEMOS, DemoError, run_demo
    if args.list or not args.name:
        for d in DEMOS.values():
            print(f"{d.name:12} {d.title}: {d.summary}")
        return EXIT_OK
    settings = parse_settings(args.set or [])
    dash = None
    if args.dashboard:
        from .dashboard.server import DashboardThread
        dash = DashboardThread(args.state)
        print(f"dashboard: {dash.start()}", flush=True)

    def pause(step) -> None:
        import time
        if args.auto:
            time.sleep(args.delay)
        else:
            input("   [Enter] ")

    try:
        run_demo(args.name, args.state, out=lambda t: print(t, flush=True), pause=pause,
                 overrides=settings, keep=args.keep, replace=args.replace)
    except DemoError as exc:
        raise CliError(f"demo {args.name}: {exc}", EXIT_FAILED) from None
    finally:
        if dash is not None:
            dash.stop()
    return EXIT_OK


# -- one node -----------------------------------------------------------------------------------

def cmd_node(args) -> int:
    from .errors import ConfigError
    from .tcp.process import NodeOptions, run
    try:
        opts = NodeOptions.from_args(args)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    return run(opts)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


# -- the parser ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="dynamo-lab", formatter_class=fmt,
        description="Run a real Dynamo cluster (one process per node, on 127.0.0.1) and talk "
                    "to it.", epilog=(__doc__ or "::").split("::", 1)[1])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def state_arg(q):
        q.add_argument("--state", default=DEFAULT_STATE, metavar="FILE",
                       help=f"the cluster's state file (default {DEFAULT_STATE})")

    c = sub.add_parser("cluster", help="start, inspect, break and stop a local cluster",
                       description="Start, inspect, break and stop a cluster of node processes "
                                   "on 127.0.0.1.")
    csub = c.add_subparsers(dest="action", metavar="ACTION")
    csub.required = True
    up = csub.add_parser("up", help="start node processes and print their ports",
                         description="Start one process per node on 127.0.0.1 (ports chosen by "
                                     "the OS), wait until they see each other, record them in "
                                     "the state file and return; the nodes keep running.")
    up.add_argument("--nodes", type=int, default=5, help="how many nodes (default 5: A..E)")
    up.add_argument("--n", type=int, default=3, help="replicas per key, N (default 3)")
    up.add_argument("--r", type=int, default=2, help="read quorum, R (default 2)")
    up.add_argument("--w", type=int, default=2, help="write quorum, W (default 2)")
    up.add_argument("--vnodes", type=int, default=8, help="virtual nodes per node (default 8)")
    up.add_argument("--seed", type=int, default=0, help="seed of the nodes' random choices")
    up.add_argument("--set", action="append", metavar="NAME=VALUE",
                    help="any other node setting, e.g. --set gossip_interval_s=0.5 "
                         "--set read_repair=false (repeatable)")
    up.add_argument("--max-inflight", type=_positive_int, default=16, metavar="N",
                    help="client requests each node works on at once; more get a fast 503 "
                         "'overloaded' (default 16)")
    up.add_argument("--parts", metavar="REF",
                    help="run these parts in every node: module:NAME or path/to/file.py:NAME "
                         "naming a dynamo_lab.Parts (or a function returning one)")
    up.add_argument("--data-dir", metavar="DIR",
                    help="where stores and logs go (default: data/ next to the state file)")
    up.add_argument("--timeout", type=float, default=60.0, metavar="S",
                    help="give up if the nodes are not up after S seconds (default 60)")
    up.add_argument("--trace", action="store_true",
                    help="every node writes its trace (data/trace/), which the dashboard's "
                         "space-time strip and TcpCluster.trace() read")
    up.add_argument("--dashboard", action="store_true",
                    help="then serve the live dashboard (implies --trace) until Ctrl-C; the "
                         "cluster keeps running after it")
    up.add_argument("--dashboard-port", type=int, default=0, metavar="P",
                    help="with --dashboard: its port on 127.0.0.1 (default 0: the OS picks)")
    up.add_argument("--open", action="store_true", help="with --dashboard: open a browser")
    state_arg(up)
    up.set_defaults(func=cmd_cluster_up)

    st = csub.add_parser("status", help="each node's view: up, suspected, keys, hints",
                         description="Ask every node for its status and print what each "
                                     "believes about the others.")
    st.add_argument("--json", action="store_true", help="print every node's full /status")
    state_arg(st)
    st.set_defaults(func=cmd_cluster_status)

    dn = csub.add_parser("down", help="stop every node (by PID) and delete the data",
                         description="Stop every node process of the cluster by its PID "
                                     "(SIGTERM, then SIGKILL) and delete its data.")
    dn.add_argument("--keep-data", action="store_true", help="keep the stores and logs")
    dn.add_argument("--kill", action="store_true", help="SIGKILL at once instead of SIGTERM")
    state_arg(dn)
    dn.set_defaults(func=cmd_cluster_down)

    k = csub.add_parser("kill", help="SIGKILL one node's process (a crash)",
                        description="Crash one node: SIGKILL its process by PID. Its SQLite "
                                    "store stays on disk for `cluster restart`.")
    k.add_argument("node", help="the node to kill, e.g. C")
    state_arg(k)
    k.set_defaults(func=cmd_cluster_kill)

    rs = csub.add_parser("restart", help="start a killed node again over its store",
                         description="Start a killed node again: a new process reopens its "
                                     "store (on its old ports if free) and rejoins.")
    rs.add_argument("node", help="the node to restart, e.g. C")
    state_arg(rs)
    rs.set_defaults(func=cmd_cluster_restart)

    pt = csub.add_parser("partition", help="cut the network between groups of nodes",
                         description="Cut every link between nodes of different groups (in "
                                     "each node's transport). Example: partition A,B C,D,E")
    pt.add_argument("groups", nargs="+", metavar="GROUP",
                    help="comma-separated node names; at least two groups")
    pt.add_argument("--one-way", action="store_true",
                    help="only messages from the first group to the others are lost")
    state_arg(pt)
    pt.set_defaults(func=cmd_cluster_partition)

    hl = csub.add_parser("heal", help="restore every link",
                         description="Undo every partition and drop rule. Returns at once: "
                                     "hints and repair then run in the background, so a read "
                                     "right away may meet only one side's writes (real Dynamo "
                                     "behaviour). --wait returns once every node's view agrees "
                                     "and no hints are held.")
    hl.add_argument("--wait", action="store_true",
                    help="return only when every node sees every other up and no hints are held")
    hl.add_argument("--timeout", type=float, default=60.0, metavar="S",
                    help="with --wait: give up (exit code 1) after S seconds (default 60)")
    state_arg(hl)
    hl.set_defaults(func=cmd_cluster_heal)

    db = sub.add_parser("dashboard", help="a live page of the cluster for a projector",
                        description="Serve the live dashboard of the cluster in the state file "
                                    "on 127.0.0.1 (follows it when it changes, or waits for "
                                    "one): ring, views, hints, a space-time strip, narration "
                                    "and controls. Prints the address to open; Ctrl-C stops "
                                    "the dashboard, not the cluster.")
    db.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: the OS picks)")
    db.add_argument("--open", action="store_true", help="open the page in a browser")
    state_arg(db)
    db.set_defaults(func=cmd_dashboard)

    dm = sub.add_parser("demo", help="a scripted classroom demo on real processes",
                        description="Run a scripted demo on its own cluster of real processes: "
                                    "each step prints what to say and what to point at, waits "
                                    "for Enter (or --delay with --auto), acts, and waits on the "
                                    "cluster's state, so every run ends the same way. "
                                    "`dynamo-lab dashboard` in another terminal follows it.",
                        epilog="demos: handoff, siblings, stale, antientropy, join "
                               "(`dynamo-lab demo --list`)")
    dm.add_argument("name", nargs="?", help="the demo to run")
    dm.add_argument("--list", action="store_true", help="list the demos")
    dm.add_argument("--auto", action="store_true", help="do not wait for Enter")
    dm.add_argument("--delay", type=float, default=3.0, metavar="S",
                    help="with --auto: seconds between steps (default 3)")
    dm.add_argument("--keep", action="store_true",
                    help="leave the cluster running at the end (`cluster down` stops it)")
    dm.add_argument("--replace", action="store_true",
                    help="stop a cluster already running here and start the demo's own")
    dm.add_argument("--dashboard", action="store_true",
                    help="serve the dashboard in this process too (prints its address)")
    dm.add_argument("--set", action="append", metavar="NAME=VALUE",
                    help="a node setting for the demo's cluster, e.g. --set suspect_after_s=1")
    state_arg(dm)
    dm.set_defaults(func=cmd_demo)

    def kv_args(q, node_help="the node that receives the request (default: the first up)"):
        q.add_argument("key", help="the key, e.g. cart:alice")
        q.add_argument("--node", metavar="NODE", help=node_help)
        out = q.add_mutually_exclusive_group()
        out.add_argument("--json", action="store_true", help="print the node's JSON answer")
        out.add_argument("--context-only", action="store_true",
                         help="print only the context, for a shell variable: "
                              "CTX=$(dynamo-lab get cart --context-only)")
        state_arg(q)

    g = sub.add_parser("get", help="read a key: its siblings and a context",
                       description="Read KEY. Prints its value (or its concurrent siblings) and "
                                   "the context to pass to the next put. Exit code 1 if the key "
                                   "has no value.")
    kv_args(g)
    g.set_defaults(func=cmd_get)

    pu = sub.add_parser("put", help="write a JSON value",
                        description="Write VALUE (JSON) under KEY. Pass the context of the get "
                                    "it is based on, or none for a blind write.",
                        epilog="example: dynamo-lab put cart '[\"book\",\"pen\"]' --context ...")
    kv_args(pu)
    pu.add_argument("value", metavar="JSON", help="the value, as JSON: '[\"book\"]', '\"text\"', 3")
    pu.add_argument("--context", metavar="C", help="the context a get printed")
    pu.set_defaults(func=cmd_put)

    de = sub.add_parser("delete", help="delete a key (a tombstone)",
                        description="Delete KEY: a tombstone that descends --context. A write "
                                    "concurrent with it survives.")
    kv_args(de)
    de.add_argument("--context", metavar="C", help="the context a get printed")
    de.set_defaults(func=cmd_delete)

    nd = sub.add_parser("node", help="run one node in the foreground (what `cluster up` spawns)",
                        formatter_class=fmt,
                        description="Run one Dynamo node: peer transport on --port, HTTP API on "
                                    "--http-port (0: the OS picks), store in DATA_DIR/ID.sqlite3. "
                                    "Prints `READY {json}` with the ports it got, then serves "
                                    "until SIGTERM or Ctrl-C.",
                        epilog="example, a 3-node cluster by hand:\n"
                               "  (umask 077; python -c 'import secrets; print(secrets.token_hex(32))'"
                               " > secret)\n"
                               "  dynamo-lab node --id A --port 7001 --http-port 8001 --members A,B,C "
                               "--peers B=127.0.0.1:7002,C=127.0.0.1:7003 --data-dir data "
                               "--secret-file secret\n"
                               "  (and the same for B and C)\n"
                               "a node joining a running cluster:\n"
                               "  dynamo-lab node --id D --seeds A=127.0.0.1:7001 --data-dir data "
                               "--secret-file secret\n"
                               "a node running your own parts (a dynamo_lab.Parts in a .py file):\n"
                               "  dynamo-lab node --id A --members A --data-dir data --secret-file "
                               "secret --parts my_parts.py:PARTS\n"
                               "what `cluster up` runs: every option in one JSON file,\n"
                               "  dynamo-lab node --id A --options data/run/A.options.json\n"
                               "admin endpoints (partition, heal...) answer only requests carrying "
                               "$DYNAMO_LAB_TOKEN in X-Dynamo-Token; without it they are off.")
    from .tcp.process import NodeOptions
    NodeOptions.add_arguments(nd)
    nd.set_defaults(func=cmd_node)
    return p


def run(argv: Optional[list[str]] = None) -> int:
    """Run the command line ``argv`` and return the exit code (errors printed, not raised)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"dynamo-lab: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


def main() -> None:
    """The ``dynamo-lab`` console script."""
    sys.exit(run())


if __name__ == "__main__":
    main()
