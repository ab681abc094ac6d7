"""dynamo_lab.node has no import cycle: the node imports its parts, the parts import what they
share (node.common, node.services), nothing imports the node back, and a part uses nothing of
its node but what NodeServices offers."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

NODE = Path(__file__).resolve().parents[1] / "dynamo_lab" / "node"


def import_graph() -> nx.DiGraph:
    """module -> the modules of dynamo_lab.node it imports (at any depth of its code)."""
    graph = nx.DiGraph()
    names = {p.stem for p in NODE.glob("*.py")}
    for path in NODE.glob("*.py"):
        graph.add_node(path.stem)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [a.name for a in node.names]
                for target in targets:
                    if target.split(".")[0] in names:
                        graph.add_edge(path.stem, target.split(".")[0])
    return graph


def test_the_node_package_has_no_import_cycle():
    graph = import_graph()
    assert {"core", "coordinator", "gossip", "common", "services", "quorum"} <= set(graph)
    cycles = list(nx.simple_cycles(graph.subgraph(n for n in graph if n != "__init__")))
    assert cycles == [], f"import cycles in dynamo_lab.node: {cycles}"
    parts = ("coordinator", "replica", "handoff", "anti_entropy", "gossip")
    assert not any(graph.has_edge(part, "core") for part in parts), "a part imports the node"
    assert not any(graph.has_edge(a, b) for a in parts for b in parts), "a part imports another"
    assert not set(graph.successors("quorum")) - {"common"}, "the quorum core imports the node"


def _uses_of_the_node(path: Path) -> set[str]:
    """The attributes a part reads off its node: ``node.x`` and ``self.node.x``."""
    used = set()
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(n, ast.Attribute):
            v = n.value
            if (isinstance(v, ast.Name) and v.id == "node") or (
                    isinstance(v, ast.Attribute) and v.attr == "node"
                    and isinstance(v.value, ast.Name) and v.value.id == "self"):
                used.add(n.attr)
    return used


def test_the_parts_use_nothing_of_their_node_but_its_services():
    import random
    from dynamo_lab.node import Node
    from dynamo_lab.storage import MemoryStore
    services = Node("A", MemoryStore(), random.Random(1), members=["A"]).services
    offered = {name for name in dir(services) if not name.startswith("_")}
    for part in ("coordinator", "replica", "handoff", "anti_entropy", "gossip"):
        used = _uses_of_the_node(NODE / f"{part}.py")
        assert used, part
        assert used <= offered, f"{part} uses {sorted(used - offered)}, which NodeServices lacks"
        assert "take_effects" not in used, part
