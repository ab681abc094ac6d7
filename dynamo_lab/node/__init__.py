"""The sans-I/O Dynamo node, one module per technique. See :mod:`dynamo_lab.node.core`."""

from .config import NodeConfig, Versioning
from .common import default_tokens, versions_digest
from .core import Node, Parts

__all__ = ["Node", "NodeConfig", "Parts", "Versioning", "default_tokens", "versions_digest"]
