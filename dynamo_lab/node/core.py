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

Each part is built as ``Part(services)``: it sees the node only through its
:class:`~.services.NodeServices` (that module lists what a part may use), never the
:class:`Node` or another part. The node owns the membership view (gossip spreads it).

A lab replaces one part (or the ``ring_factory``, the ``versioning`` clock logic, a piece of
the quorum core in :mod:`.quorum` and :mod:`.read_repair`, one of hinted handoff's
decisions in :mod:`.hints`, the Merkle tree or a step of anti-entropy in :mod:`.exchange`)
through :class:`Parts`; the others keep working with it. A message nobody handles raises :class:`ProtocolError`: nothing is
ignored silently.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

from ..errors import ClientError, ProtocolError
from .. import membership as membership_rules
from ..failure_detector import TimeoutDetector
from ..membership import Membership
from ..merkle import MerkleTree
from ..messages import MemberState
from ..ring import Ring
from ..storage import Store
from . import exchange, hints, quorum, read_repair
from .anti_entropy import AntiEntropy
from .common import default_tokens, member_from_json
from .config import NodeConfig, Versioning
from .coordinator import Coordinator
from .gossip import Gossip
from .handoff import HintedHandoff
from .replica import Replica
from .services import NodeServices


def _ring_from_tokens(members: Mapping[str, tuple[int, ...]]) -> Ring:
    return Ring.from_tokens(members)


@dataclass
class Parts:
    """Which implementation of each technique a node uses. Labs swap one at a time.

    The part classes are built as ``Part(services)``; ``ring_factory(members)`` builds the
    ring from ``{node: tokens}``; the quorum core's pieces are those of :mod:`.quorum`
    (``choose_replicas``, ``PutQuorum``, ``GetQuorum``) and :mod:`.read_repair`; hinted
    handoff's decisions are those of :mod:`.hints` (``handoff_tick``, ``handoff_ack``);
    ``merkle_tree(key_range, depth)`` builds a node's tree of one range (an empty
    :class:`~dynamo_lab.merkle.MerkleTree`, then ``update(key, digest)`` and ``remove(key)`` on
    every write), and anti-entropy's steps are those of :mod:`.exchange` (``diff_level``,
    ``differing_keys``, ``repair_key``)."""
    ring_factory: Callable[[Mapping[str, tuple[int, ...]]], Any] = _ring_from_tokens
    versioning: Optional[Versioning] = None
    choose_replicas: Callable = quorum.choose_replicas
    put_quorum: type = quorum.PutQuorum
    get_quorum: type = quorum.GetQuorum
    read_repair: Callable = read_repair.read_repairs
    handoff_tick: Callable = hints.handoff_tick
    handoff_ack: Callable = hints.handoff_ack
    merge_views: Callable = membership_rules.merge_views
    gossip_round: Callable = membership_rules.gossip_round
    failure_detector: Callable = TimeoutDetector
    merkle_tree: Callable = MerkleTree
    diff_level: Callable = exchange.diff_level
    differing_keys: Callable = exchange.differing_keys
    repair_key: Callable = exchange.repair_key
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
        self.config = config or NodeConfig()
        self.address = address
        self.parts = parts or Parts()
        self.services = NodeServices(
            node_id, store, rng, self.config, parts=self.parts, seeds=seeds,
            versioning=self.parts.versioning or Versioning(self.config.clock_threshold))
        self._initial_members = members
        self.coordinator = (self.parts.coordinator or Coordinator)(self.services)
        self.replica = (self.parts.replica or Replica)(self.services)
        self.handoff = (self.parts.handoff or HintedHandoff)(self.services)
        self.anti_entropy = (self.parts.anti_entropy or AntiEntropy)(self.services)
        self.gossip = (self.parts.gossip or Gossip)(self.services)
        self._handlers: dict[str, Callable] = {}
        for part in self._parts():
            for name in dir(type(part)):
                if name.startswith("handle_"):
                    msg = name[len("handle_"):]
                    if msg in self._handlers:
                        raise ProtocolError(f"two parts handle {msg}")
                    self._handlers[msg] = getattr(part, name)

    def _parts(self) -> tuple:
        return (self.coordinator, self.replica, self.handoff, self.anti_entropy, self.gossip)

    # -- runtime entry points -------------------------------------------------------------

    def start(self, now: float) -> list:
        """Begin (or resume after a restart from the same store): take the next generation,
        load the membership view, set the periodic timers."""
        self.services.now = now
        self.services.membership = self._load_membership(now)
        self.services.save_membership()
        for part in (self.gossip, self.handoff, self.anti_entropy):
            part.start()
        return self.services.take_effects()

    def _load_membership(self, now: float) -> Membership:
        store, cfg = self.store, self.config
        generation = int(store.get_meta("generation") or 0) + 1
        saved = store.get_meta("tokens")
        tokens = tuple(int(t) for t in json.loads(saved)) if saved else default_tokens(self.id, cfg.vnodes)
        store.set_meta("tokens", json.dumps([str(t) for t in tokens]))
        known = [member_from_json(o) for o in json.loads(store.get_meta("members") or "[]")]
        if not known:
            initial = self._initial_members
            items = initial.items() if hasattr(initial, "items") else ((m, "") for m in initial)
            known = [MemberState(m, 0, 0, "up", tuple(str(t) for t in default_tokens(m, cfg.vnodes)),
                                 addr or "") for m, addr in items]
        membership = Membership(self.id, generation=generation, tokens=tokens, now=now,
                                suspect_after_s=cfg.suspect_after_s, address=self.address,
                                known=known, merge=self.parts.merge_views,
                                detector=self.parts.failure_detector(cfg.suspect_after_s))
        saved_status = store.get_meta("status")
        if saved_status in ("leaving", "left"):
            membership.set_status(saved_status)
        return membership

    def on_message(self, src: str, msg: Any, now: float) -> list:
        """Handle one message from ``src`` (a node id or a client address)."""
        self.services.now = now
        name = type(msg).__name__
        handler = self._handlers.get(name)
        if handler is None:
            raise ProtocolError(f"node {self.id} has no handler for {name} (from {src})")
        if src in self.membership.view:
            self.membership.heard_from(src, now)
        self._call(handler, src, msg, f"{name} from {src}")
        return self.services.take_effects()

    def on_timer(self, timer: Any, now: float) -> list:
        """Handle a timer set earlier by this node."""
        self.services.now = now
        name = type(timer).__name__
        handler = self._handlers.get(name)
        if handler is None:
            raise ProtocolError(f"node {self.id} has no handler for timer {name}")
        self._call(handler, None, timer, f"timer {name}")
        return self.services.take_effects()

    def _call(self, handler, src, msg, what: str) -> None:
        """Run a handler; input this node cannot accept (a peer's bad key, a malformed range...)
        is refused as a :class:`ProtocolError`, with nothing sent."""
        try:
            handler(src, msg)
        except ClientError as exc:
            self.services.take_effects()
            raise ProtocolError(f"{self.id} refused {what}: {exc}") from None

    # -- what runtimes, tests and widgets read --------------------------------------------

    @property
    def now(self) -> float:
        return self.services.now

    @property
    def membership(self) -> Membership:
        """This node's view of the cluster (it owns it; gossip merges into it)."""
        return self.services.membership

    @property
    def ring(self):
        """The ring as this node sees it now (built from the members it believes up)."""
        return self.services.ring

    @property
    def stats(self) -> dict[str, int]:
        return self.services.stats

    @property
    def left(self) -> bool:
        return self.services.left

    def preference_list(self, key: str) -> list[str]:
        return self.services.preference_list(key)

    def status(self) -> dict:
        """What ``GET /status`` and the widgets show: ring, membership, hints, keys held."""
        ring = self.ring
        m = self.membership
        now = self.now
        return {
            "node": self.id,
            "address": self.address,
            "status": m.mine.status,
            "generation": m.mine.generation,
            "config": self.config.to_json(),
            "ring": {n: [str(t) for t in ring.tokens_of(n)] for n in ring.nodes} if ring else {},
            "members": {n: {"status": st.status, "heartbeat": st.heartbeat,
                            "generation": st.generation, "address": st.address,
                            "suspected": m.suspected(n, now)}
                        for n, st in m.view.items()},
            "suspected": m.suspects(now),
            "hints": {n: len(self.store.hints(n)) for n in self.store.hinted_nodes()},
            "keys": len(self.store),
            "stats": dict(sorted(self.stats.items())),
        }
