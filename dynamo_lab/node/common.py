"""Small things the node's parts share: the digest of a key's siblings, a node's first tokens,
and the stored form of a membership view. Imported by the parts and by the node; imports
neither, so ``dynamo_lab.node`` has no import cycle (``tests/test_node_imports.py``)."""

from __future__ import annotations

import hashlib
import json
from typing import Iterable, Mapping, Sequence

from ..hashing import key_hash
from ..messages import MemberState
from ..versions import Versioned


def versions_digest(versions: Iterable[Versioned]) -> str:
    """One digest for a set of siblings (order-free): what a Merkle leaf entry holds."""
    ds = sorted(v.digest() for v in versions)
    return hashlib.sha256("|".join(ds).encode()).hexdigest()


def same_versions(a: Sequence[Versioned], b: Sequence[Versioned]) -> bool:
    """``versions_digest(a) == versions_digest(b)``, without hashing: the same digests."""
    if len(a) != len(b):
        return False
    if len(a) == 1:
        return a[0].digest() == b[0].digest()
    return sorted(v.digest() for v in a) == sorted(v.digest() for v in b)


def default_tokens(node_id: str, vnodes: int) -> tuple[int, ...]:
    """The tokens a node takes when it first joins: the paper's strategy 1, deterministic."""
    return tuple(sorted(key_hash(f"{node_id}#{i}") for i in range(vnodes)))


def member_from_json(obj: dict) -> MemberState:
    return MemberState(obj["node"], int(obj["generation"]), int(obj["heartbeat"]),
                       obj["status"], tuple(obj.get("tokens", ())), obj.get("address", ""))


def member_to_json(st: MemberState) -> dict:
    return {"node": st.node, "generation": st.generation, "heartbeat": st.heartbeat,
            "status": st.status, "tokens": list(st.tokens), "address": st.address}


def dump_members(view: Mapping[str, MemberState]) -> str:
    return json.dumps([member_to_json(st) for st in view.values()], separators=(",", ":"))
