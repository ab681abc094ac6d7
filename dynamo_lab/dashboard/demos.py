"""Scripted demos on real processes: ``dynamo-lab demo NAME``.

Each demo starts its own cluster (five node processes on 127.0.0.1, traced, recorded in the
state file so that ``dynamo-lab dashboard`` and ``dynamo-lab cluster status`` follow it), then
goes through its steps. A step says what to tell the class and what to point at, waits for the
lecturer (Enter; ``--auto`` waits ``--delay`` seconds instead), does one thing, and *waits on a
condition* of the cluster (every node suspects the killed one; the stand-in holds its hint; no
hint is held any more) rather than sleeping, so it ends in the same outcome every run. Which
node coordinates, which one is killed and which one stands in are worked out from the ring,
which is the same for the same node names and virtual nodes.

The demos, in lecture order:

=========== =====================================================================
handoff     sloppy quorum and hinted handoff: kill a replica, write, restart it
siblings    a partition, a write on each side, siblings after the heal, a merge
stale       the lecture's stale read: C and D fail, the write goes to E and F,
            C and D come back and a read from them returns the old value
antientropy a replica's disk is wiped; Merkle trees find what it lost
join        a fifth node joins; its keys are transferred to it and dropped elsewhere
=========== =====================================================================

Each run writes its current step to ``demo.json`` beside the cluster's state file
(:func:`status_path`), which the dashboard shows, and which outlives the cluster, so that the
page still shows how the demo ended after its cluster stopped; each run ends with one ``outcome: {...}`` line (the same every run; the tests run each demo twice
and compare).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

#: How long a wait on the cluster may take before the demo says what it is still waiting for.
WAIT_S = 60.0
#: The settings every demo's cluster starts with (``--set`` overrides them): the failure
#: detector reacts in about 2 s, which suits a live audience.
BASE_SETTINGS = {"gossip_interval_s": 0.5, "suspect_after_s": 2.0}


class DemoError(Exception):
    """A demo that cannot go on: the message says which step and what it was waiting for."""


@dataclass
class Step:
    """One step: what to say, what to point at, and what to do (returns the line that says
    what happened)."""
    title: str
    say: str
    point: str
    run: Callable[["Run"], str]


class Run:
    """One run of a demo: its cluster, a client, what the steps found (``found``), and how
    it talks to the lecturer (``out``, ``pause``)."""

    def __init__(self, cluster, out: Callable[[str], None], pause: Callable[["Step"], None],
                 status_file: Optional[Path]):
        self.cluster = cluster
        self.out = out
        self.pause = pause
        self.status_file = status_file
        self.found: dict[str, Any] = {}
        self.client = cluster.client("lecturer")
        self.aborted = False
        self.on_change: Optional[Callable[[], None]] = None   # the node list changed

    # -- waiting on the cluster ---------------------------------------------------------------

    def wait(self, what: str, done: Callable[[], Any], timeout_s: float = WAIT_S) -> float:
        """Poll ``done()`` until it is true; the seconds it took. :class:`DemoError` saying
        ``what`` was awaited when it is not true after ``timeout_s``."""
        t0 = time.monotonic()
        while True:
            if self.aborted:
                raise DemoError("stopped")
            try:
                if done():
                    return time.monotonic() - t0
            except Exception:          # a node restarting; ask again
                pass
            if time.monotonic() - t0 > timeout_s:
                raise DemoError(f"still waiting after {timeout_s:.0f} s for {what}")
            time.sleep(0.05)

    def views(self) -> dict[str, Optional[dict]]:
        return self.cluster.views()

    def everyone_suspects(self, victims: list[str], observers: Optional[list[str]] = None) -> bool:
        views = self.views()
        observers = observers if observers is not None else [
            n for n in self.cluster.up() if n not in victims]
        for o in observers:
            st = views.get(o)
            if st is None:
                return False
            for v in victims:
                m = st["members"].get(v)
                if m is None or not m["suspected"]:
                    return False
        return True

    def hints_for(self, holder: str) -> dict[str, int]:
        st = self.cluster.status(holder)
        return {k: v for k, v in st["hints"].items() if v}

    def values(self, node: str, key: str) -> list:
        """The live values node ``node`` holds for ``key`` in its own data, sorted."""
        own = self.cluster._local(node, key)[0]
        return sorted((v.value for v in own if not v.deleted), key=_sort_key)

    def key_counts(self) -> dict[str, int]:
        return {n: st["keys"] for n, st in self.views().items() if st is not None}

    def expected_counts(self, keys: list[str]) -> dict[str, int]:
        """How many of ``keys`` each node replicates on the ring all members form now."""
        counts = {n: 0 for n in self.cluster.nodes}
        for k in keys:
            for n in self.cluster.preference_list(k):
                counts[n] += 1
        return counts

    # -- client ---------------------------------------------------------------------------------

    def get(self, key: str, via: str):
        return self.client.get(key, via=via)

    def put(self, key: str, value: Any, via: str, context: Optional[str] = None):
        return self.client.put(key, value, context=context, via=via)


# -- the demos -------------------------------------------------------------------------------------

@dataclass
class Demo:
    """A demo: ``build(run)`` makes its steps; its outcome is what the steps found under
    ``outcome_keys`` (the same every run)."""
    name: str
    title: str
    summary: str
    build: Callable[[Run], list[Step]]
    outcome_keys: tuple[str, ...]
    nodes: int = 5
    settings: Optional[dict] = None

    def outcome(self, run: Run) -> dict:
        return {k: run.found.get(k) for k in self.outcome_keys}


def _walk(cluster, key: str) -> list[str]:
    """The key's preference list, then the nodes a sloppy quorum falls back on, in order."""
    return cluster.ring().successors(key)


def _sort_key(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def _handoff(run: Run) -> list[Step]:
    c = run.cluster
    key = "cart"
    walk = _walk(c, key)
    p1, p2, p3 = walk[:3]
    stand_in = walk[3]
    f = run.found

    def write(r: Run) -> str:
        res = r.put(key, ["book"], via=p1)
        r.wait(f"{p1}, {p2} and {p3} to hold the cart",
               lambda: all(r.values(n, key) == [["book"]] for n in (p1, p2, p3)))
        return (f"written by coordinator {res.coordinator}; acknowledged by "
                f"{', '.join(res.replies)}; {p1}, {p2} and {p3} hold it")

    def kill(r: Run) -> str:
        pid = c.pids[p3]
        c.crash(p3)
        took = r.wait(f"every node to suspect {p3}", lambda: r.everyone_suspects([p3]))
        return f"kill -9 {pid}: {p3} is gone; {took:.1f} s later every other node suspects it"

    def write_down(r: Run) -> str:
        ctx = r.get(key, via=p1).context
        res = r.put(key, ["book", "pen"], via=p1, context=ctx)
        r.wait(f"{stand_in} to keep a hint for {p3}",
               lambda: r.hints_for(stand_in).get(p3, 0) >= 1)
        f["stand_in"] = stand_in
        return (f"the write succeeded (acknowledged by {', '.join(res.replies)}): {stand_in} "
                f"stood in for {p3} and keeps the replica with a hint naming {p3}")

    def restart(r: Run) -> str:
        t0 = time.monotonic()
        c.restart(p3)
        r.wait(f"the hint for {p3} to reach it",
                      lambda: not r.hints_for(stand_in) and
                      r.values(p3, key) == [["book", "pen"]])
        f["victim_holds"] = r.values(p3, key)
        took = time.monotonic() - t0
        return (f"{p3} is back at generation {c._procs[p3].generation}; within {took:.1f} s "
                f"{stand_in} handed the hint over and deleted it; {p3} holds "
                f"{json.dumps(f['victim_holds'][0])}")

    def read(r: Run) -> str:
        res = r.get(key, via=p3)
        f["read"] = sorted(res.values, key=_sort_key)
        return f"get cart via {p3}: {json.dumps(res.values)} (replies from {', '.join(res.replies)})"

    f.update(key=key, preference=[p1, p2, p3], victim=p3)
    return [
        Step("Write a cart", f"Every key has N=3 home replicas on the ring: for {key!r} they are "
             f"{p1}, {p2} and {p3}. A put returns once W=2 of them acknowledged it.",
             f"the ring: the key's marker and its three replicas; the strip: put, then acks",
             write),
        Step(f"Kill {p3} with kill -9", f"{p3} dies without a word. Nobody is told: each node "
             f"notices only when {p3}'s heartbeats stop rising (about suspect_after_s).",
             f"{p3}'s card: killed, then suspected by the others, then down", kill),
        Step("Write while a replica is down", f"Ask the class: with {p3} down, can a W=2 write "
             f"still succeed? Sloppy quorum: the next healthy node on the ring stands in.",
             f"{stand_in}'s hints (for {p3}); the narration line 'stands in for'", write_down),
        Step(f"Bring {p3} back", f"{p3} restarts over its SQLite store with a higher "
             f"generation; {stand_in} sees it up and hands the hint over (hinted handoff).",
             f"the strip: a handoff arrow {stand_in} -> {p3}; {stand_in}'s hints drop to 0",
             restart),
        Step(f"Read from {p3}", f"{p3} has the write it missed while it was down.",
             "the cart panel: one value", read),
    ]



def _siblings(run: Run) -> list[Step]:
    c = run.cluster
    key = "cart"
    walk = _walk(c, key)
    p1, p2, p3, x, y = walk[:5]
    side1, side2 = sorted([p1, x]), sorted([p2, p3, y])
    f = run.found
    f.update(key=key, sides=[side1, side2])

    def write(r: Run) -> str:
        r.put(key, ["book", "pen"], via=p1)
        r.wait("the three replicas to hold the cart",
               lambda: all(r.values(n, key) == [["book", "pen"]] for n in (p1, p2, p3)))
        res = r.get(key, via=p1)
        f["context"] = res.context
        return f"cart = {json.dumps(res.values[0])}; the read's context is kept for both sides"

    def split(r: Run) -> str:
        c.partition(side1, side2)
        took = r.wait("each side to suspect the other",
                      lambda: r.everyone_suspects(side2, side1)
                      and r.everyone_suspects(side1, side2))
        return f"split {', '.join(side1)} | {', '.join(side2)}; each side suspects the other after {took:.1f} s"

    def write_both(r: Run) -> str:
        a = r.put(key, ["book", "pen", "lamp"], via=p1, context=f["context"])
        b = r.put(key, ["book", "pen", "mug"], via=p2, context=f["context"])
        return (f"both succeed: lamp acknowledged by {', '.join(a.replies)}, mug by "
                f"{', '.join(b.replies)}; each side formed a sloppy quorum")

    def heal(r: Run) -> str:
        c.heal()
        took = c.wait_quiet(WAIT_S)
        res = r.get(key, via=p1)
        f["siblings"] = sorted(res.values, key=_sort_key)
        f["merge_context"] = res.context
        return (f"healed and settled after {took:.1f} s; get cart: {len(res.values)} "
                f"siblings: " + "  |  ".join(json.dumps(v) for v in f["siblings"]))

    def merge(r: Run) -> str:
        merged = sorted({item for v in f["siblings"] for item in v})
        r.put(key, merged, via=p1, context=f["merge_context"])
        res = r.get(key, via=p2)
        f["merged"] = sorted(res.values, key=_sort_key)
        return f"put the union with the read's context; get cart: {json.dumps(res.values)}"

    return [
        Step("Write a cart and read it", f"{key!r} lives on {p1}, {p2} and {p3}. We keep the "
             f"read's context: both sides will update the same version.",
             "the cart panel: one value", write),
        Step("Split the network", f"{', '.join(side1)} can no longer reach "
             f"{', '.join(side2)}. Each side will think the other side is down.",
             "the view matrix: scissors between the sides; the cards: suspected", split),
        Step("Write on both sides", "Ask the class: will both writes succeed? Each side has "
             "enough healthy nodes for W=2 once stand-ins count.",
             "the strip: puts on both sides; hints kept on each side", write_both),
        Step("Heal and read", "Ask the class: what will a read return once the network heals? "
             "We wait until the hints are delivered, then read.",
             "the cart panel: two siblings side by side", heal),
        Step("Merge", "The application (the cart) merges: the union of the items, written "
             "with the read's context, supersedes both siblings.",
             "the cart panel: the merge button; then one value", merge),
    ]



def _stale(run: Run) -> list[Step]:
    c = run.cluster
    key = "k"
    walk = _walk(c, key)
    b, cc, d, e, ff = walk[:5]
    f = run.found
    f.update(key=key, preference=[b, cc, d], stand_ins=[e, ff])

    def write(r: Run) -> str:
        r.put(key, "v1", via=b)
        r.wait("the three replicas to hold v1",
               lambda: all(r.values(n, key) == ["v1"] for n in (b, cc, d)))
        return f"k = v1 on {b}, {cc} and {d}"

    def fail(r: Run) -> str:
        c.crash(cc)
        c.crash(d)
        took = r.wait(f"{b}, {e} and {ff} to suspect {cc} and {d}",
                      lambda: r.everyone_suspects([cc, d]))
        return f"{cc} and {d} killed; suspected by {b}, {e} and {ff} after {took:.1f} s"

    def write_v2(r: Run) -> str:
        ctx = r.get(key, via=b).context
        res = r.put(key, "v2", via=b, context=ctx)
        r.wait(f"{e} and {ff} to keep the hints",
               lambda: sum(r.hints_for(e).values()) + sum(r.hints_for(ff).values()) >= 2)
        return (f"k = v2 acknowledged by {', '.join(res.replies)}: written to {e} and {ff} "
                f"instead of {cc} and {d}, with hints naming them")

    def recover(r: Run) -> str:
        c.partition([cc, d], [b, e, ff])
        c.restart(cc)
        c.restart(d)
        return (f"{cc} and {d} are back, but cut off from {b}, {e} and {ff} (so that the hints "
                f"cannot reach them yet: the race, made to happen every time)")

    def read(r: Run) -> str:
        res = r.get(key, via=cc)
        f["stale_read"] = res.values
        return (f"get k via {cc}: {json.dumps(res.values)} from {', '.join(res.replies)}: "
                f"R=2 and W=2 with N=3, and still a stale value")

    def heal(r: Run) -> str:
        c.heal()
        took = c.wait_quiet(WAIT_S)
        res = r.get(key, via=cc)
        f["after_heal"] = res.values
        return (f"healed; after {took:.1f} s the hints reached {cc} and {d}; get k via {cc}: "
                f"{json.dumps(res.values)}")

    return [
        Step("Write k everywhere", f"N=3, R=W=2: {key!r} lives on {b}, {cc} and {d}. "
             f"R+W>N, so a read and a write quorum always share a node... do they?",
             "the ring: k's three replicas", write),
        Step(f"{cc} and {d} fail", f"The lecture's example: nodes {cc} and {d} fail.",
             f"{cc} and {d}: suspected, then down", fail),
        Step("Write v2", f"Sloppy quorum: the write goes to {b} and to {e} and {ff} instead, "
             f"which remember they write on behalf of {cc} and {d}.",
             f"{e} and {ff}'s hints", write_v2),
        Step(f"{cc} and {d} recover", f"They come back with the old value, and before the "
             f"hints reach them a client reads from them.",
             f"the view matrix: {cc} and {d} on their own", recover),
        Step(f"Read from {cc} and {d}", "R=2 replies, both stale: the read quorum and the "
             "write quorum did not overlap. Sloppy means: not consistent.",
             "the cart panel: v1", read),
        Step("Heal", "Hinted handoff closes the gap, eventually.",
             "the strip: handoff arrows; then v2", heal),
    ]



def _antientropy(run: Run) -> list[Step]:
    c = run.cluster
    keys = [f"item:{i}" for i in range(12)]
    f = run.found

    def write(r: Run) -> str:
        for k in keys:
            r.put(k, {"item": k}, via=c.preference_list(k)[0])
        want = r.expected_counts(keys)
        r.wait("every replica to hold its keys", lambda: r.key_counts() == want)
        victim = max(c.nodes, key=lambda n: (want[n], -c.nodes.index(n)))
        f.update(victim=victim, victim_keys=want[victim])
        return "12 keys written; keys per node: " + ", ".join(f"{n} {want[n]}" for n in c.nodes)

    def wipe(r: Run) -> str:
        v = f["victim"]
        c.crash(v)
        c.wipe(v)
        # what its disk holds now (read while it is down: anti-entropy starts at once after
        # the restart, so a count taken then would depend on timing)
        f["after_wipe"] = sum(1 for k in keys if r.values(v, k))
        c.restart(v)
        return (f"{v} killed, its disk wiped ({f['after_wipe']} keys left on it), and "
                f"restarted with an empty store")

    def repair(r: Run) -> str:
        v = f["victim"]
        took = r.wait(f"{v} to hold its {f['victim_keys']} keys again",
                      lambda: r.key_counts().get(v) == f["victim_keys"])
        mine = [k for k in keys if v in c.preference_list(k)]
        f["repaired"] = sorted(k for k in mine if r.values(v, k) == [{"item": k}])
        stats = c.status(v)["stats"]
        return (f"after {took:.1f} s {v} holds all {len(f['repaired'])} of its keys again; "
                f"Merkle exchanges so far: {stats.get('ae_exchanges', 0)} by {v}")

    return [
        Step("Write twelve keys", "Twelve keys, three replicas each. Read repair is off in this "
             "cluster, so only anti-entropy can repair a replica nobody reads.",
             "the cards: keys per node", write),
        Step("Lose a disk", "One node dies and comes back with an empty disk: no hints were "
             "kept for it (nobody knew it lost anything).",
             "the victim's card: 0 keys", wipe),
        Step("Anti-entropy", "Every few seconds each node compares a Merkle tree of a key range "
             "with a co-replica: equal roots cost one hash; a difference is found level by "
             "level, and only the differing keys are sent.",
             "the strip: merkle and sync arrows; the narration: 'repaired'", repair),
    ]



def _join(run: Run) -> list[Step]:
    c = run.cluster
    keys = [f"user:{i}" for i in range(20)]
    f = run.found
    new = "E"

    def write(r: Run) -> str:
        for k in keys:
            r.put(k, {"user": k}, via=c.preference_list(k)[0])
        want = r.expected_counts(keys)
        r.wait("every replica to hold its keys", lambda: r.key_counts() == want)
        f["before"] = want
        return "20 keys on 4 nodes: " + ", ".join(f"{n} {want[n]}" for n in c.nodes)

    def join(r: Run) -> str:
        c.add_node(new)
        if r.on_change is not None:
            r.on_change()
        return f"{new} joined through gossip; the ring now has {', '.join(c.nodes)}"

    def moved(r: Run) -> str:
        want = r.expected_counts(keys)
        took = r.wait("the keys to move to their new owners",
                      lambda: r.key_counts() == want and not any(c.hints().values()))
        f["after"] = want
        f["new_holds"] = sorted(k for k in keys if new in c.preference_list(k))
        gave = {n: f["before"][n] - want[n] for n in f["before"] if f["before"][n] > want[n]}
        return (f"after {took:.1f} s {new} holds {want[new]} keys, handed over by "
                + ", ".join(f"{n} ({k})" for n, k in gave.items())
                + "; they dropped their copies")

    return [
        Step("Write twenty keys", "Four nodes, twenty keys, three replicas each.",
             "the cards: keys per node", write),
        Step(f"{new} joins", f"{new} takes its 8 tokens on the ring; gossip tells everyone.",
             f"the ring: {new}'s tokens", join),
        Step("Keys move", f"The nodes that no longer replicate a key transfer it to {new} and "
             "drop it once it is acknowledged. Only the ranges next to the new tokens move.",
             "the strip: transfer arrows; the cards: key counts", moved),
    ]



DEMOS: dict[str, Demo] = {d.name: d for d in [
    Demo("handoff", "Sloppy quorum and hinted handoff",
         "kill a replica, write anyway, bring it back: the hint finds its way home",
         _handoff, ("key", "preference", "victim", "stand_in", "victim_holds",
                                  "read")),
    Demo("siblings", "A partition, siblings and a merge",
         "split the network, write the same cart on both sides, heal, merge",
         _siblings, ("key", "sides", "siblings", "merged")),
    Demo("stale", "A stale read under sloppy quorum (the lecture's C, D, E, F)",
         "R+W>N and still a stale read, then hinted handoff repairs it",
         _stale, ("key", "preference", "stand_ins", "stale_read", "after_heal")),
    Demo("antientropy", "Anti-entropy after a wiped disk",
         "Merkle trees find and repair what a replica lost",
         _antientropy, ("victim", "victim_keys", "after_wipe", "repaired"),
         settings={"read_repair": False, "anti_entropy_interval_s": 0.5}),
    Demo("join", "A node joins: key transfer",
         "a fifth node takes its ranges; the keys move and the old copies go",
         _join, ("before", "after", "new_holds"), nodes=4, settings={"rebalance_interval_s": 0.5}),
]}


# -- running a demo ------------------------------------------------------------------------------

def start_cluster(state_path: str, demo: Demo, overrides: dict, *, detached: bool,
                  replace: bool = False):
    """Start ``demo``'s cluster and record it in ``state_path`` (as ``cluster up`` does);
    :class:`DemoError` if another cluster runs there and ``replace`` is false."""
    from ..cli import CliError, _remove_cluster_files, _write_private, attach, save_state, \
        token_header_path
    from ..tcp.cluster import TcpCluster
    from ..tcp.http_client import TOKEN_HEADER
    if os.path.exists(state_path):
        try:
            old, state = attach(state_path)
        except CliError:
            old, state = None, {}
        if old is not None and old.up():
            if not replace:
                raise DemoError(f"a cluster is already running here (nodes "
                                f"{', '.join(old.up())}; state {state_path}). The demo starts "
                                f"its own: stop that one with `dynamo-lab cluster down`, or "
                                f"pass --replace")
            old.close()
        _remove_cluster_files(state_path, {**state, "owns_data": True})
    data_dir = os.path.join(os.path.dirname(state_path) or ".", "data")
    if os.path.isdir(data_dir):
        import shutil
        shutil.rmtree(data_dir)
    settings = {**BASE_SETTINGS, **(demo.settings or {}), **overrides}
    cluster = TcpCluster(demo.nodes, data_dir=data_dir, detached=detached, trace=True,
                         **settings)
    state = cluster.state()
    state["owns_data"] = True
    state["demo"] = demo.name
    save_state(state_path, state)
    _write_private(token_header_path(state_path), f"{TOKEN_HEADER}: {cluster.token}\n")
    return cluster


def run_demo(name: str, state_path: str, *, out: Callable[[str], None] = print,
             pause: Optional[Callable[[Step], None]] = None, overrides: Optional[dict] = None,
             keep: bool = False, replace: bool = False, runs: Optional[list] = None) -> dict:
    """Run demo ``name`` from start to end and return its outcome. ``pause(step)`` is called
    before each step (the CLI waits for Enter); ``keep``: leave the cluster running at the
    end (else it is stopped by PID and its files removed). ``runs``: a list the
    :class:`Run` is appended to as soon as it exists (so another thread can stop it)."""
    from ..cli import _remove_cluster_files, save_cluster
    demo = DEMOS.get(name)
    if demo is None:
        raise DemoError(f"no demo {name!r}; the demos are {', '.join(DEMOS)}")
    out(f"== {demo.title} ==")
    out(f"starting {demo.nodes} node processes on 127.0.0.1 ...")
    cluster = start_cluster(state_path, demo, overrides or {}, detached=keep, replace=replace)
    status_file = status_path(state_path)
    run = Run(cluster, out, pause or (lambda step: None), status_file)
    run.on_change = lambda: save_cluster(state_path, cluster, {"owns_data": True})
    if runs is not None:
        runs.append(run)
    cfg = cluster.config
    out(f"cluster {cluster.cluster_id}: N={cfg.n} R={cfg.r} W={cfg.w}; nodes "
        + ", ".join(f"{n} (pid {p})" for n, p in cluster.pids.items())
        + "; `dynamo-lab dashboard` shows it live")
    state_of = {"demo": demo.name, "title": demo.title, "of": 0, "step": 0,
                "cluster": cluster.cluster_id}
    ok = False
    try:
        steps = demo.build(run)
        state_of["of"] = len(steps)
        for i, step in enumerate(steps, 1):
            state_of.update(step=i, step_title=step.title, say=step.say, point=step.point,
                            result="", phase="waiting")
            _write_status(status_file, state_of)
            out("")
            out(f"-- step {i}/{len(steps)}: {step.title}")
            out(f"   say:   {step.say}")
            out(f"   point: {step.point}")
            run.pause(step)
            if run.aborted:
                raise DemoError("stopped")
            state_of["phase"] = "running"
            _write_status(status_file, state_of)
            result = step.run(run)
            save_cluster(state_path, cluster, {"owns_data": True})
            state_of.update(result=result, phase="done")
            _write_status(status_file, state_of)
            out(f"   ->     {result}")
        outcome = demo.outcome(run)
        state_of.update(phase="finished", outcome=outcome)
        _write_status(status_file, state_of)
        out("")
        out("outcome: " + json.dumps(outcome, sort_keys=True))
        ok = True
        return outcome
    finally:
        if keep:
            save_cluster(state_path, cluster, {"owns_data": True})
            if ok:
                out(f"the cluster keeps running (state {state_path}); "
                    f"`dynamo-lab cluster down` stops it")
        else:
            _adopt(cluster, state_path)
            out("stopping " + ", ".join(f"{n} (pid {p})" for n, p in cluster.pids.items()))
            cluster.close()
            _remove_cluster_files(state_path, {"owns_data": True, "data_dir": cluster.data_dir})
            out("cluster stopped")


def _adopt(cluster, state_path: str) -> None:
    """Learn the PIDs the state file records for nodes restarted by someone else (the
    dashboard's restart button, ``cluster restart`` in a terminal), so that closing the
    cluster stops those processes too, by their PIDs."""
    from ..tcp.cluster import is_node_process, pid_alive
    try:
        state = json.loads(Path(state_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if state.get("cluster_id") != cluster.cluster_id:
        return
    for obj in state.get("nodes", []):
        p = cluster._procs.get(obj["name"])
        pid = int(obj.get("pid") or 0)
        if p is not None and pid and pid != p.pid and pid_alive(pid) \
                and is_node_process(pid, p.name):
            if p.proc is not None and p.proc.poll() is None:
                continue                 # ours still runs: the file is behind
            p.proc, p.pid = None, pid


def status_path(state_path: str) -> Path:
    """Where a demo writes its current step: ``demo.json`` beside the cluster's state file
    (not in the cluster's data folder, which goes when the cluster stops)."""
    return Path(state_path).with_name("demo.json")


def _write_status(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, path)


class DemoHost:
    """Demos started from the dashboard's page: one at a time, on a worker thread, each step
    waiting for the page's "next" (``control({"action": "next"})``). The cluster is left
    running at the end (``dynamo-lab cluster down`` stops it)."""

    def __init__(self, state_path: str, overrides: Optional[dict] = None):
        self.state_path = state_path
        self.overrides = overrides or {}
        self._thread: Optional[threading.Thread] = None
        self._go = threading.Event()
        self._runs: list[Run] = []
        self.last_error = ""

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def control(self, body: dict, dashboard=None) -> dict:
        action = body.get("action")
        if action == "list":
            return {"demos": [{"name": d.name, "title": d.title, "summary": d.summary}
                              for d in DEMOS.values()], "running": self.running()}
        if action == "start":
            from .server import ActionError
            name = body.get("name")
            if name not in DEMOS:
                raise ActionError(f"no demo {name!r}")
            if self.running():
                raise ActionError("a demo is running: stop it first")
            self._go.clear()
            self._runs = []

            def pause(step: Step) -> None:
                self._go.wait()
                self._go.clear()

            def say(text: str) -> None:
                if dashboard is not None and text.startswith("   ->"):
                    dashboard.say(text.strip()[2:].strip(), "demo")

            def work() -> None:
                try:
                    run_demo(name, self.state_path, out=say, pause=pause, keep=True,
                             replace=bool(body.get("replace", True)), runs=self._runs,
                             overrides=self.overrides)
                    self.last_error = ""
                except Exception as exc:          # shown on the page
                    self.last_error = str(exc)
                    if dashboard is not None:
                        dashboard.say(f"demo stopped: {exc}", "fault")
            self._thread = threading.Thread(target=work, daemon=True, name=f"demo-{name}")
            self._thread.start()
            return {"message": f"demo {name} starting"}
        if action == "next":
            self._go.set()
            return {"message": "next step"}
        if action == "stop":
            for r in self._runs:
                r.aborted = True
            self._go.set()
            return {"message": "demo stopping"}
        from .server import ActionError
        raise ActionError(f"unknown demo action {action!r}")

    def shutdown(self) -> None:
        for r in self._runs:
            r.aborted = True
        self._go.set()
        if self._thread is not None:
            self._thread.join(30)
