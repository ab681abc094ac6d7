"""What a student sees when a "see it" cell goes wrong (dynamo_lab.grading.see_it).

* A part that raises inside the cluster is folded to one short message: the part's own frame
  and line, and what the node was doing; the exception keeps its type and message, the checks'
  reports are unchanged, and the whole traceback is one ``%tb`` away.
* A cell that needs a part not written yet, or a name an earlier cell did not make, says which
  one it waits for instead of failing with ``NameError``.

The in-kernel tests run a real IPython kernel (nbclient), as JupyterLab does.
"""

from __future__ import annotations

import re

import pytest

import dynamo_lab as dl
from dynamo_lab import grading
from dynamo_lab.grading import GradingFailure
from dynamo_lab.grading.see_it import WaitingFor, folded_lines, stubs, waits_for
from dynamo_lab.labs.lab1_consistent_hashing.test_checks import DictRing
from dynamo_lab.labs.lab2_vector_clocks.test_checks import CLOCKS


class CrashingRing(DictRing):
    def preference_list(self, key, n):
        found = super().preference_list(key, n)
        return found[n + 5]


def _ring_cluster(ring_class):
    parts = dl.Parts(ring_factory=grading.student_ring_factory(ring_class, vnodes=8))
    return dl.SimCluster(nodes=5, seed=7, parts=parts)


def test_a_part_that_crashes_inside_the_cluster_is_folded_to_its_frame_and_what_the_node_did():
    cluster = _ring_cluster(CrashingRing)
    with pytest.raises(IndexError, match="list index out of range") as info:
        cluster.client("alice").put("cart", ["book"], via="C")
    lines = folded_lines(info.value)
    assert lines[0] == ("IndexError: your `CrashingRing.preference_list` raised IndexError while "
                        "node C coordinated a put of 'cart' from client alice")
    assert "message: list index out of range" in lines[1]
    assert re.search(r"at test_see_it\.py, line \d+, in CrashingRing\.preference_list: "
                     r"return found\[n \+ 5\]", lines[2])
    assert "folded away: run %tb" in lines[-1] and len(lines) <= 5
    # IPython's hook: folded the first time, every frame after (what %tb shows).
    short, full = info.value._render_traceback_(), info.value._render_traceback_()
    assert len(short) == len(lines) and "CrashingRing.preference_list" in short[0]
    text = "\n".join(full)
    assert "simulator.py" in text and "coordinator.py" in text and len(full) > len(short)


def test_the_fold_names_the_part_even_when_a_notebook_helper_started_the_cluster():
    def increment(clock, node):
        raise NotImplementedError()

    def play(versioning):             # like Lab 2's play_d1_d5: the student's code calls it
        cluster = dl.SimCluster(nodes=3, seed=4, parts=dl.Parts(versioning=versioning))
        return cluster.client("a").put("k", ["x"], via="B")

    with pytest.raises(NotImplementedError) as info:
        play(grading.student_versioning(increment, *CLOCKS[1:]))
    first = folded_lines(info.value)[0]
    assert first.startswith("NotImplementedError: your `")
    assert "increment` raised NotImplementedError while node B coordinated a put of 'k'" in first
    assert "play" not in first.split("while")[0]


def test_a_timer_or_a_replica_is_named_as_what_the_node_was_doing():
    from dynamo_lab.grading.see_it import _phrase
    from dynamo_lab.messages import GossipTick, ReplicaGet
    assert _phrase(GossipTick(), None) == "gossiped (its periodic timer)"
    assert _phrase(ReplicaGet("r1", "cart"), "B") == "read its replica of 'cart' for node B"


def test_the_checks_reports_are_unchanged_by_the_fold():
    with pytest.raises(GradingFailure) as info:
        grading.check_ring_in_cluster(CrashingRing)
    text = str(info.value)
    assert text.startswith("cluster-with-your-ring-matches-the-reference: ")
    assert "got:      raised IndexError: list index out of range (in preference_list, line" in text
    assert "return found[n + 5]" in text and "folded" not in text
    assert "seed 7: replay with grading.check_ring_in_cluster(<your ring class>, seed=7)" in text


# -- cells that wait for a part ------------------------------------------------------------------

def _stub(clock, node):
    """Not written yet."""
    # YOUR CODE HERE
    raise NotImplementedError()


class HalfRing:
    def __init__(self, nodes, vnodes=8):
        self.nodes = nodes

    def preference_list(self, key, n):
        raise NotImplementedError()


class EmptyRing:
    def __init__(self, nodes, vnodes=8):
        raise NotImplementedError()

    def tokens(self):
        raise NotImplementedError()


def test_stubs_are_the_release_s_unwritten_functions_and_methods():
    assert stubs(_stub) == ["_stub"]
    assert stubs(EmptyRing) == ["EmptyRing"]
    assert stubs(HalfRing) == ["HalfRing.preference_list"]
    assert stubs(DictRing) == [] and stubs(CLOCKS[0]) == [] and stubs(42) == []


def test_a_cell_waits_for_an_unwritten_part_then_for_a_name_an_earlier_cell_makes():
    ns = {"increment": _stub, "ConsistentHashRing": HalfRing, "merge": CLOCKS[1]}
    with pytest.raises(WaitingFor) as info:
        waits_for("increment", "ConsistentHashRing", "story", namespace=ns)
    assert isinstance(info.value, NameError)
    assert "`increment`, `ConsistentHashRing.preference_list` are written" in str(info.value)
    assert "story" not in str(info.value)             # the parts come first
    with pytest.raises(WaitingFor, match=r"needs `story`, which an earlier cell makes"):
        waits_for("merge", "story", namespace=ns)
    assert waits_for("merge", namespace=ns) is None
    assert len(info.value._render_traceback_()) == 1


# -- in a real kernel ----------------------------------------------------------------------------

CELLS = [
    "import dynamo_lab as dl\nfrom dynamo_lab import grading\n"
    "from dynamo_lab.grading.see_it import waits_for\n"
    "from dynamo_lab.labs.lab1_consistent_hashing.test_checks import DictRing",
    "class Broken(DictRing):\n    def preference_list(self, key, n):\n"
    "        return super().preference_list(key, n)[n + 5]",
    "cluster = dl.SimCluster(nodes=5, seed=7, parts=dl.Parts(\n"
    "    ring_factory=grading.student_ring_factory(Broken, vnodes=8)))\n"
    "cluster.client('alice').put('cart', ['book'], via='C')",
    "%tb",
    "waits_for('Broken', 'story')",
]


def _plain(lines) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(lines))


@pytest.mark.slow
def test_in_a_kernel_the_cell_shows_the_fold_and_tb_the_whole_traceback(tmp_path):
    import importlib.util
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient
    spec = importlib.util.spec_from_file_location(
        "grader_fixtures", Path(__file__).parent / "fixtures" / "submissions" / "grader_fixtures.py")
    fx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fx)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    with fx.isolated_jupyter_env(tmp_path / "home"):
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    errors = [[o for o in c.outputs if o.output_type == "error"] for c in nb.cells]
    assert errors[0] == errors[1] == []
    (folded,), = errors[2:3]
    text = _plain(folded.traceback)
    assert folded.ename == "IndexError" and len(text.splitlines()) <= 5
    assert text.startswith("IndexError: your `Broken.preference_list` raised IndexError while "
                           "node C coordinated a put of 'cart' from client alice")
    assert re.search(r"at Cell In\[2\], line 3, in Broken\.preference_list", text)
    assert "your cell: Cell In[3], line 3: cluster.client('alice').put" in text
    # %tb prints the last exception again: now every frame.
    full = _plain(o.get("text", "") for o in nb.cells[3].outputs) + \
        _plain(t for o in nb.cells[3].outputs for t in o.get("traceback", []))
    assert "simulator.py" in full and "coordinator.py" in full and len(full.splitlines()) > 40
    (waiting,) = errors[4]
    assert waiting.ename == "WaitingFor"
    assert _plain(waiting.traceback) == ("waiting: this cell needs `story`, which an earlier cell "
                                         "makes: that cell did not run to the end (run it again "
                                         "and fix what it reports), then this one")
