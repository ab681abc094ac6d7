"""Student parts on real processes: Lab 1's ring and Lab 2's clock functions, as a notebook
defines them, inside a ``TcpCluster``.

The solutions' code (the answer cells of ``solutions/``, as the grader extracts them) runs in
a real IPython shell in a child process, the "kernel": its classes and functions live in a
``__main__`` with no file, exactly as in a notebook, so the cluster must ship them to its node
processes as source (:mod:`dynamo_lab.shipping`). The kernel prints what it saw as one JSON
line; the test checks it, and that every process is stopped by its PID.
"""

from __future__ import annotations

import json
import linecache
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dynamo_lab as dl
from dynamo_lab import shipping
from dynamo_lab.tcp.cluster import TcpCluster, pid_alive

from test_tcp_cluster import FAST

ROOT = Path(__file__).resolve().parents[1]


def solution_cells(lab: str) -> list[str]:
    """The setup cell and every answer cell of a lab's solution notebook (``"lab3"``), with the
    solution markers removed (what the grader's fixtures put in a correct submission); magics
    are dropped."""
    from dynamo_lab.labs import lab as lab_spec
    spec = lab_spec(lab)
    nb = json.loads((ROOT / "solutions" / spec.id / f"{spec.notebook}.ipynb").read_text(
        encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") or meta.get("grade_id") == "setup":
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            out.append("\n".join(line for line in src.splitlines()
                                 if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
                                 and not line.startswith("%")))
    return out


def run_kernel(tmp_path: Path, scenario: str, timeout_s: float = 240,
               labs: tuple[str, ...] = ("lab1", "lab2")) -> dict:
    """Run the ``labs``' solution cells, then ``scenario``, as cells of an IPython shell in a
    child process; return the JSON the scenario printed. The child is stopped by its PID."""
    cells = [c for lab in labs for c in solution_cells(lab)] + [
        f"FAST = {FAST!r}\nDATA = {str(tmp_path / 'cluster')!r}\n" + textwrap.dedent(scenario)]
    script = tmp_path / "kernel.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance(colors="NoColor")
        for cell in json.loads({json.dumps(json.dumps(cells))}):
            if not shell.run_cell(cell).success:
                sys.exit(3)
    """), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, out[-4000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert not [p for p in result["pids"] if pid_alive(p)], "every node process is stopped"
    return result


def test_lab1_and_lab2_solution_parts_run_in_five_node_processes(tmp_path):
    r = run_kernel(tmp_path, """
        import json, sys, time
        from pathlib import Path
        from dynamo_lab.tcp.cluster import TcpCluster
        assert "__file__" not in vars(sys.modules["__main__"]), "a notebook's __main__"
        parts = dl.Parts(ring_factory=grading.student_ring_factory(ConsistentHashRing, vnodes=8),
                         versioning=grading.student_versioning(increment, merge, compare, reconcile))
        out = {}
        with TcpCluster(nodes=5, seed=3, data_dir=DATA, parts=parts, **FAST) as cluster:
            out["pids"] = list(cluster.pids.values())
            out["parts"] = [cluster.status(n)["parts"] for n in cluster.nodes]
            out["shipped"] = {p.name: p.read_text() for p in Path(DATA, "parts").glob("*.py")}
            alice, bob = cluster.client("alice"), cluster.client("bob")
            keys = [f"cart:{i}" for i in range(12)]
            cluster.wait(*[alice.submit_put(k, [k]) for k in keys])
            reference = dl.Ring(cluster.nodes, vnodes=8)
            deadline = time.monotonic() + 30
            while True:
                held = {k: sorted(cluster.holders(k)) for k in keys}
                if all(len(v) == 3 for v in held.values()) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            out["held"] = held
            out["reference"] = {k: sorted(reference.preference_list(k, 3)) for k in keys}
            base = alice.get("cart")
            pref = cluster.preference_list("cart")
            cluster.wait(alice.submit_put("cart", ["book"], context=base.context, via=pref[0]),
                         bob.submit_put("cart", ["pen"], context=base.context, via=pref[1]))
            siblings = alice.get("cart", via=pref[0])
            out["siblings"] = sorted(siblings.values)
            merged = alice.put("cart", merge_carts(siblings.values), context=siblings.context)
            out["after_merge"] = alice.get("cart", via=pref[2]).values
            out["context_clock"] = dl.decode_context(merged.context,
                                                     cluster.config.cluster_key).counters()
            out["errors"] = [cluster.status(n)["errors"] for n in cluster.nodes]
        print("RESULT " + json.dumps(out))
    """)
    # Every node rebuilt the student's parts from a description naming the shipped source.
    ring, versioning = r["parts"][0]["ring_factory"], r["parts"][0]["versioning"]
    assert all(p == r["parts"][0] for p in r["parts"])
    assert ring["call"]["ref"].startswith("dynamo_lab.labs.lab1_consistent_hashing")
    assert ring["args"][0]["ref"].endswith("shipped_main.py:ConsistentHashRing")
    assert [a["ref"].rsplit(":", 1)[1] for a in versioning["args"]] == [
        "increment", "merge", "compare", "reconcile"]
    shipped = r["shipped"]["shipped_main.py"]
    for name in ("class ConsistentHashRing", "def successor_index", "def vnode_token",
                 "def increment", "def descends", "def compare", "def reconcile"):
        assert name in shipped
    assert "def merge_carts" not in shipped          # only what the parts use travels
    # The student's ring placed every key on its reference preference list, on 3 nodes.
    assert r["held"] == r["reference"]
    # The student's clocks kept racing writes apart and a merge put supersedes them.
    assert r["siblings"] == [["book"], ["pen"]]
    assert r["after_merge"] == [["book", "pen"]]
    assert set(r["context_clock"]) <= set("ABCDE") and len(r["context_clock"]) >= 2
    assert r["errors"] == [0] * 5


@pytest.mark.slow
def test_the_d1_d5_story_holds_on_real_processes_with_the_solutions_parts(tmp_path):
    r = run_kernel(tmp_path, """
        import dataclasses, json
        from dynamo_lab.labs.lab2_vector_clocks.checks import (_d1_d5_story,
            _make_student_versioning, _reference_clock_functions)
        from dynamo_lab.tcp.cluster import TcpCluster
        pids = []

        def on_tcp(parts, **kw):
            ring = grading.student_ring_factory(ConsistentHashRing, vnodes=8)
            cluster = TcpCluster(data_dir=DATA, parts=dataclasses.replace(parts, ring_factory=ring),
                                 **FAST, **kw)
            pids.extend(cluster.pids.values())
            return cluster

        want = _d1_d5_story(_make_student_versioning(*_reference_clock_functions(), trusted=True), 1)
        got = _d1_d5_story(grading.student_versioning(increment, merge, compare, reconcile), 1,
                           make_cluster=on_tcp)
        print("RESULT " + json.dumps({"pids": pids, "want": want, "got": got}))
    """)
    assert len(r["pids"]) == 3
    assert r["got"] == r["want"]
    story = dict(map(tuple, r["got"]))
    assert story["D5: alice writes the merged cart through Sx; its clock"] == {
        "Sx": 3, "Sy": 1, "Sz": 1}
    assert story["consistency checker"] == []


# -- what cannot travel, and references ------------------------------------------------------

class NotShippable:
    def new_clock(self, context, node, now, local):
        raise AssertionError("never called")


def test_a_part_that_cannot_travel_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(dl.ConfigError, match=r"Parts.versioning is a NotShippable object.*"
                                             r"my_parts.py:PARTS"):
        TcpCluster(nodes=3, data_dir=str(tmp_path), parts=dl.Parts(versioning=NotShippable()))

    def local_factory(members):
        return dl.Ring.from_tokens(members)
    with pytest.raises(dl.ConfigError, match="defined inside a function"):
        shipping.describe_parts(dl.Parts(ring_factory=local_factory), tmp_path)
    lock = __import__("threading").Lock()
    module = type(sys)("notebook_like")            # code a shell compiled from a cell
    cell = "def ring(members):\n    return LOCK\n"
    linecache.cache["<cell-1>"] = (len(cell), None, cell.splitlines(True), "<cell-1>")
    exec(compile(cell, "<cell-1>", "exec"), vars(module))
    module.LOCK = lock
    sys.modules["notebook_like"] = module
    try:
        with pytest.raises(dl.ConfigError, match="the global LOCK, a lock object"):
            shipping.describe_parts(dl.Parts(ring_factory=module.ring), tmp_path)
    finally:
        del sys.modules["notebook_like"]
    with pytest.raises(dl.ConfigError, match="not a dynamo_lab.Parts"):
        shipping.load_parts("dynamo_lab.hashing:RING_SIZE")
    assert not list(tmp_path.glob("*.sqlite3")), "nothing started"


def test_parts_by_reference_from_a_source_file(tmp_path):
    source = tmp_path / "my_parts.py"
    source.write_text(textwrap.dedent("""
        import dynamo_lab as dl
        from dynamo_lab import grading

        class Ring:
            def __init__(self, nodes, vnodes=8):
                self.ring = dl.Ring(nodes, vnodes)
            def preference_list(self, key, n):
                return list(reversed(self.ring.preference_list(key, len(self.ring.nodes))))[:n]
            def coordinator(self, key):
                return self.preference_list(key, 1)[0]
            def tokens(self):
                return list(self.ring.tokens)

        PARTS = dl.Parts(ring_factory=grading.student_ring_factory(Ring, vnodes=8, _trusted=True))
    """))
    ref = f"{source}:PARTS"
    parts = shipping.load_parts(ref)
    assert shipping.describe_parts(ref, tmp_path) == ref
    desc = shipping.describe_parts(parts, tmp_path / "ship")
    assert desc["ring_factory"]["args"][0] == {"ref": f"{source}:Ring"}
    rebuilt = shipping.build_parts(json.loads(json.dumps(desc)))
    members = {n: dl.node.default_tokens(n, 8) for n in "ABCD"}
    assert rebuilt.ring_factory(members).preference_list("cart", 3) == \
        parts.ring_factory(members).preference_list("cart", 3) != \
        dl.Ring.from_tokens(members).preference_list("cart", 3)[:3]
    # The same reference runs a whole cluster: the nodes place keys with the odd ring.
    with TcpCluster(nodes=4, seed=2, data_dir=str(tmp_path / "c"), parts=ref, **FAST) as cluster:
        pids = list(cluster.pids.values())
        assert cluster.status("A")["parts"] == ref
        alice = cluster.client("alice")
        alice.put("cart", ["book"])
        pref = cluster.preference_list("cart")
        assert pref == parts.ring_factory(members).preference_list("cart", 3)
        assert set(cluster.holders("cart")) <= set(pref)
    assert not [p for p in pids if pid_alive(p)]
