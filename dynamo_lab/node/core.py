"""The sans-I/O Dynamo node.

A :class:`Node` never touches a socket, a clock, a thread, a file or the global ``random``.
Its runtime (the simulator or the TCP process) hands it one input at a time:

* ``start(now)`` once, after construction (or after a restart, with the same store);
* ``on_message(src, msg, now)`` for a message from another node or a client;
* ``on_timer(timer, now)`` for a timer the node set earlier;

and each call returns the effects to carry out: :class:`Send` a message, :class:`SetTimer`,
:class:`Note` a line for the trace. Writes to the store happen during the call, so they are
durable before any acknowledgement that follows them leaves the node.

The node is assembled from parts, one per technique, each in its own module with a handler
``handle_<Message>`` for every message it owns:

=================  =============================================================
``Coordinator``    client get/put/delete, quorums, sloppy quorum, read repair
``Replica``        storing and serving versions, tombstone reaping
``HintedHandoff``  delivering hinted replicas to the node they were meant for
``AntiEntropy``    Merkle-tree exchange per key range and repair
``Gossip``         membership, failure detection, join, leave, key transfers
=================  =============================================================

A lab replaces one part (or the ``ring_factory`` or the ``versioning`` clock logic) through
:class:`Parts`; the others keep working with it. A message nobody handles raises
:class:`ProtocolError`: nothing is ignored silently.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

from ..errors import ClientError, ProtocolError
from ..hashing import key_hash
from ..merkle import MerkleTree
from ..messages import Note, Send, SetTimer
from ..ring import KeyRange, Ring
from ..storage import Store
from ..versions import Versioned
from .anti_entropy import AntiEntropy
from .common import versions_digest
from .config import NodeConfig, Versioning
from .coordinator import Coordinator
from .gossip import Gossip
from .handoff import HintedHandoff
from .replica import Replica


def _ring_from_tokens(members: Mapping[str, tuple[int, ...]]) -> Ring:
    return Ring.from_tokens(members)


@dataclass
class Parts:
    """Which implementation of each technique a node uses. Labs swap one at a time."""
    ring_factory: Callable[[Mapping[str, tuple[int, ...]]], Any] = _ring_from_tokens
    versioning: Optional[Versioning] = None
    coordinator: Optional[type] = None
    replica: Optional[type] = None
    handoff: Optional[type] = None
    anti_entropy: Optional[type] = None
    gossip: Optional[type] = None
    stats: dict = field(default_factory=dict)


class Node:
    """One Dynamo storage node. See the module docstring for the runtime contract."""

    def __init__(self, node_id: str, store: Store, rng: random.Random,
                 config: NodeConfig | None = None, *, members: Iterable[str] | Mapping = (),
                 seeds: Iterable[str] = (), address: str = "", parts: Parts | None = None):
        self.id = node_id
        self.store = store
        self.rng = rng
        self.config = config or NodeConfig()
        self.address = address
        self.seeds = [s for s in seeds if s != node_id]
        self.parts = parts or Parts()
        self.versioning = self.parts.versioning or Versioning(self.config.clock_threshold)
        self.now = 0.0
        self._out: list = []
        self._initial_members = members
        self._ring = None
        self._ring_sig: tuple | None = None
        self._trees: dict[tuple[KeyRange, int], MerkleTree] = {}
        self._hash_memo: dict[str, int] = {}
        self.stats: dict[str, int] = {}
        self.left = False
        self.coordinator = (self.parts.coordinator or Coordinator)(self)
        self.replica = (self.parts.replica or Replica)(self)
        self.handoff = (self.parts.handoff or HintedHandoff)(self)
        self.anti_entropy = (self.parts.anti_entropy or AntiEntropy)(self)
        self.gossip = (self.parts.gossip or Gossip)(self)
        self._handlers: dict[str, Callable] = {}
        for part in (self.coordinator, self.replica, self.handoff, self.anti_entropy, self.gossip):
            for name in dir(type(part)):
                if name.startswith("handle_"):
                    msg = name[len("handle_"):]
                    if msg in self._handlers:
                        raise ProtocolError(f"two parts handle {msg}")
                    self._handlers[msg] = getattr(part, name)

    # -- runtime entry points -------------------------------------------------------------

    def start(self, now: float) -> list:
        """Begin (or resume after a restart from the same store): set the periodic timers."""
        self.now = now
        self.gossip.start(now, self._initial_members)
        for part in (self.handoff, self.anti_entropy):
            part.start()
        return self._flush()

    def on_message(self, src: str, msg: Any, now: float) -> list:
        """Handle one message from ``src`` (a node id or a client address)."""
        self.now = now
        name = type(msg).__name__
        handler = self._handlers.get(name)
        if handler is None:
            raise ProtocolError(f"node {self.id} has no handler for {name} (from {src})")
        if src in self.gossip.membership.view:
            self.gossip.membership.heard_from(src, now)
        self._call(handler, src, msg, f"{name} from {src}")
        return self._flush()

    def on_timer(self, timer: Any, now: float) -> list:
        """Handle a timer set earlier by this node."""
        self.now = now
        name = type(timer).__name__
        handler = self._handlers.get(name)
        if handler is None:
            raise ProtocolError(f"node {self.id} has no handler for timer {name}")
        self._call(handler, None, timer, f"timer {name}")
        return self._flush()

    def _call(self, handler, src, msg, what: str) -> None:
        """Run a handler; input this node cannot accept (a peer's bad key, a malformed range...)
        is refused as a :class:`ProtocolError`, with nothing sent."""
        try:
            handler(src, msg)
        except ClientError as exc:
            self._out = []
            raise ProtocolError(f"{self.id} refused {what}: {exc}") from None

    def _flush(self) -> list:
        out, self._out = self._out, []
        return out

    # -- services the parts use -----------------------------------------------------------

    def send(self, dst: str, msg: Any) -> None:
        if dst == self.id:
            raise ProtocolError(f"{self.id} tried to send {type(msg).__name__} to itself")
        self._out.append(Send(dst, msg))

    def set_timer(self, delay_s: float, timer: Any) -> None:
        self._out.append(SetTimer(delay_s, timer))

    def note(self, text: str) -> None:
        self._out.append(Note(text))

    def count(self, stat: str, by: int = 1) -> None:
        self.stats[stat] = self.stats.get(stat, 0) + by

    @property
    def membership(self):
        return self.gossip.membership

    @property
    def ring(self):
        """The ring as this node sees it now (built from the members gossip says are up)."""
        sig = self.membership.ring_version
        if sig != self._ring_sig:
            members = self.membership.ring_members()
            self._ring = self.parts.ring_factory(members) if members else None
            self._ring_size = len(members)
            self._ring_sig = sig
            self._trees.clear()
            self.anti_entropy.ring_changed()
        return self._ring

    def suspected(self, node: str) -> bool:
        return self.membership.suspected(node, self.now)

    def hash_of(self, key: str) -> int:
        h = self._hash_memo.get(key)
        if h is None:
            h = self._hash_memo[key] = key_hash(key)
        return h

    def n_eff(self) -> int:
        if self.ring is None:
            return 0
        return min(self.config.n, self._ring_size)

    def preference_list(self, key: str) -> list[str]:
        """The key's top-N distinct nodes in this node's current ring."""
        n = self.n_eff()
        return self.ring.preference_list(key, n) if n else []

    def successors(self, key: str) -> list[str]:
        """Every node of the ring, clockwise from the key: the sloppy quorum's walk."""
        ring = self.ring
        if ring is None:
            return []
        if hasattr(ring, "successors"):
            return list(ring.successors(key))
        return list(ring.preference_list(key, self._ring_size))

    # -- local data -------------------------------------------------------------------------

    def merge_local(self, key: str, incoming: Iterable[Versioned]) -> list[Versioned]:
        """Merge versions into this node's own copy of ``key``: never overwrite, reconcile.

        Returns the siblings now held. The Merkle trees follow every change.
        """
        local = self.store.get(key)
        merged = self.versioning.reconcile(list(local) + list(incoming))
        if versions_digest(merged) != versions_digest(local):
            self.store.put(key, merged)
            self._tree_update(key, merged)
        return merged

    def merge_hint(self, intended: str, key: str, incoming: Iterable[Versioned]) -> None:
        """Keep versions for ``intended`` apart from this node's own data (a hinted replica)."""
        if intended == self.id:
            self.merge_local(key, incoming)
            return
        held = self.store.get_hint(intended, key)
        self.store.put_hint(intended, key, self.versioning.reconcile(list(held) + list(incoming)))
        self.count("hints_stored")

    def drop_local(self, key: str) -> None:
        self.store.delete(key)
        self._tree_update(key, [])

    def tree(self, key_range: KeyRange, depth: int) -> MerkleTree:
        """The Merkle tree of this node's own data in ``key_range`` (built once, then kept
        up to date on every write)."""
        t = self._trees.get((key_range, depth))
        if t is None:
            t = MerkleTree(key_range, depth)
            for key, versions in self.store.items():
                if key_range.contains(self.hash_of(key)):
                    t.update(key, versions_digest(versions))
            self._trees[(key_range, depth)] = t
            self.count("merkle_builds")
        return t

    def _tree_update(self, key: str, versions: list[Versioned]) -> None:
        if not self._trees:
            return
        h = self.hash_of(key)
        d = versions_digest(versions) if versions else None
        for (rng_, _depth), t in self._trees.items():
            if rng_.contains(h):
                if d is None:
                    t.remove(key)
                else:
                    t.update(key, d)

    # -- views for people -----------------------------------------------------------------

    def status(self) -> dict:
        """What ``GET /status`` and the widgets show: ring, membership, hints, keys held."""
        ring = self.ring
        m = self.membership
        return {
            "node": self.id,
            "address": self.address,
            "status": m.mine.status,
            "generation": m.mine.generation,
            "config": self.config.to_json(),
            "ring": {n: [str(t) for t in ring.tokens_of(n)] for n in ring.nodes} if ring else {},
            "members": {n: {"status": st.status, "heartbeat": st.heartbeat,
                            "generation": st.generation, "address": st.address,
                            "suspected": m.suspected(n, self.now)}
                        for n, st in m.view.items()},
            "suspected": m.suspects(self.now),
            "hints": {n: len(self.store.hints(n)) for n in self.store.hinted_nodes()},
            "keys": len(self.store),
            "stats": dict(sorted(self.stats.items())),
        }
