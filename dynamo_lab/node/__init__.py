"""The sans-I/O Dynamo node, one module per technique. See :mod:`dynamo_lab.node.core`."""

from .config import NodeConfig, Versioning
from .common import default_tokens, versions_digest
from .core import Node, Parts
from .services import NodeServices

__all__ = ["Node", "NodeConfig", "NodeServices", "Parts", "Versioning", "default_tokens", "versions_digest"]
