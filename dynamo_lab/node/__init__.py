"""The sans-I/O Dynamo node, one module per technique. See :mod:`dynamo_lab.node.core`."""

from .config import NodeConfig, Versioning
from .core import Node, Parts, default_tokens, versions_digest

__all__ = ["Node", "NodeConfig", "Parts", "Versioning", "default_tokens", "versions_digest"]
