"""dynamo_lab.node has no import cycle: the node imports its parts, the parts import what they
share (node.common), nothing imports the node back."""

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
    assert {"core", "coordinator", "gossip", "common"} <= set(graph)
    cycles = list(nx.simple_cycles(graph.subgraph(n for n in graph if n != "__init__")))
    assert cycles == [], f"import cycles in dynamo_lab.node: {cycles}"
    assert not any(graph.has_edge(part, "core") for part in
                   ("coordinator", "replica", "handoff", "anti_entropy", "gossip")), \
        "a part imports the node"
