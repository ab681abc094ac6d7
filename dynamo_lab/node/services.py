"""What a part of a node may use: the whole contract between the node and its parts.

Every part (coordinator, replica, hinted handoff, anti-entropy, gossip, or a student's
replacement for one) is built as ``Part(services)`` and sees the node only through this
object. Parts never call each other: they share the node's data through these services, and
talk to other nodes (and to parts of their own node on another machine) by messages.

=========================  ==================================================================
who and when               ``id``, ``now``, ``config``, ``rng``, ``seeds``, ``parts``
effects                    ``send(dst, msg)``, ``set_timer(delay_s, timer)``, ``note(text)``,
                           ``count(stat, by=1)``
clock logic                ``versioning`` (``new_clock``, ``reconcile``, ``merged_clock``)
this node's own data       ``versions(key)``, ``keys()``, ``key_count()``,
                           ``merge_local(key, versions)``, ``drop_local(key)``,
                           ``set_local(key, versions)``,
                           ``tree(key_range, depth)`` (its Merkle tree, kept up to date)
hinted replicas            ``held(key)`` (own and hinted copies), ``hinted_nodes()``,
                           ``hints_for(intended)``, ``hint(intended, key)``,
                           ``merge_hint(intended, key, versions)``, ``delete_hint(intended, key)``,
                           ``hint_count()``
the ring                   ``ring``, ``n_eff()``, ``preference_list(key)``, ``successors(key)``,
                           ``on_ring_change(callback)``
membership (the node's)    ``membership``, ``suspected(node)``, ``save_membership()``,
                           ``set_status(status)``, ``left``
=========================  ==================================================================

A write to the store is durable before any effect of the input that made it leaves the node
(the simulator's store is memory; the TCP runtime commits each group of inputs' writes before
it lets their effects go), so an acknowledgement a part sends always follows its write.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from typing import Any, Callable, Iterable, Optional

from ..errors import ProtocolError
from ..hashing import key_hash
from ..membership import Membership
from ..merkle import MerkleTree
from ..messages import Note, Send, SetTimer
from ..ring import KeyRange
from ..storage import Hint, Store
from ..versions import Versioned
from .common import dump_members, same_versions, versions_digest
from .config import NodeConfig, Versioning


class NodeServices:
    """The services one node offers its parts (see the module docstring for the list)."""

    def __init__(self, node_id: str, store: Store, rng: random.Random, config: NodeConfig, *,
                 versioning: Versioning, parts: Any, seeds: Iterable[str] = ()):
        self.id = node_id
        self.config = config
        self.rng = rng
        self.seeds = [s for s in seeds if s != node_id]
        self.versioning = versioning
        self.parts = parts
        self.now = 0.0
        self.stats: dict[str, int] = {}
        self.membership: Optional[Membership] = None    # the node's, set when it starts
        self._store = store
        self._out: list = []
        self._ring = None
        self._ring_size = 0
        self._ring_sig: Optional[int] = None
        self._ring_listeners: list[Callable[[], None]] = []
        self._trees: dict[tuple[KeyRange, int], MerkleTree] = {}
        self._trees_of_key: dict[str, list[MerkleTree]] = {}   # the trees a key is in
        self._hash_memo: dict[str, int] = {}
        # Every own key by ring position, built on the first tree: (hashes, keys), sorted
        # together, so the keys of one range are one or two slices (see _keys_in).
        self._by_hash: Optional[tuple[list[int], list[str]]] = None

    # -- effects --------------------------------------------------------------------------------

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

    def take_effects(self) -> list:
        """(For the node.) The effects of the input just handled; nothing, if it was refused."""
        out, self._out = self._out, []
        return out

    # -- this node's own data -------------------------------------------------------------------

    def versions(self, key: str) -> list[Versioned]:
        """This node's own siblings of ``key`` (empty when it holds none)."""
        return self._store.get(key)

    def keys(self) -> list[str]:
        return self._store.keys()

    def key_count(self) -> int:
        return len(self._store)

    def merge_local(self, key: str, incoming: Iterable[Versioned]) -> list[Versioned]:
        """Merge versions into this node's own copy of ``key``: never overwrite, reconcile.

        Returns the siblings now held. The Merkle trees follow every change.
        """
        local = self._store.get(key)
        merged = self.versioning.reconcile(list(local) + list(incoming))
        if not same_versions(merged, local):
            self._store.put(key, merged)
            if not local:
                self._index_add(key)
            self._tree_update(key, merged)
        return merged

    def drop_local(self, key: str) -> None:
        self._store.delete(key)
        self._index_remove(key)
        self._tree_update(key, [])
        self._trees_of_key.pop(key, None)     # (kept for stored keys only: see tree())

    def set_local(self, key: str, versions: Iterable[Versioned]) -> None:
        """Store exactly ``versions`` as this node's own siblings of ``key`` (a repair that
        reconciled them itself; nothing is merged here); none drops the key."""
        versions = list(versions)
        local = self._store.get(key)
        if not versions:
            if local:
                self.drop_local(key)
            return
        if not same_versions(versions, local):
            self._store.put(key, versions)
            if not local:
                self._index_add(key)
            self._tree_update(key, versions)

    def tree(self, key_range: KeyRange, depth: int) -> MerkleTree:
        """The Merkle tree of this node's own data in ``key_range`` (built once from the keys
        of that range, then kept up to date on every write; rebuilt after the ring changes).
        It is made by ``parts.merkle_tree(key_range, depth)``: a lab may swap in its own."""
        t = self._trees.get((key_range, depth))
        if t is None:
            t = self.parts.merkle_tree(key_range, depth)
            for key in self._keys_in(key_range):
                t.update(key, versions_digest(self._store.get(key)))
                trees = self._trees_of_key.get(key)
                if trees is not None:         # the trees of a stored key, worked out before
                    trees.append(t)
            self._trees[(key_range, depth)] = t
            self.count("merkle_builds")
        return t

    # -- the index of own keys by ring position (so a tree reads only its range) ----------------

    def _keys_in(self, key_range: KeyRange) -> list[str]:
        """The own keys whose hash lies in ``key_range`` (start exclusive, end inclusive)."""
        if self._by_hash is None:
            pairs = sorted((self._hash_of(k), k) for k in self._store.keys())
            self._by_hash = ([h for h, _ in pairs], [k for _, k in pairs])
        hashes, keys = self._by_hash
        lo, hi = bisect_right(hashes, key_range.start), bisect_right(hashes, key_range.end)
        if key_range.start < key_range.end:
            return keys[lo:hi]
        return keys[lo:] + keys[:hi]          # the range wraps past 0 (or is the whole ring)

    def _index_add(self, key: str) -> None:
        if self._by_hash is not None:
            hashes, keys = self._by_hash
            h = self._hash_of(key)
            i = bisect_left(hashes, h)
            hashes.insert(i, h)
            keys.insert(i, key)

    def _index_remove(self, key: str) -> None:
        if self._by_hash is not None:
            hashes, keys = self._by_hash
            h = self._hash_of(key)
            i = bisect_left(hashes, h)
            while i < len(hashes) and hashes[i] == h:
                if keys[i] == key:
                    del hashes[i], keys[i]
                    return
                i += 1

    def _tree_update(self, key: str, versions: list[Versioned]) -> None:
        if not self._trees:
            return
        trees = self._trees_of_key.get(key)
        if trees is None:
            h = self._hash_of(key)
            trees = self._trees_of_key[key] = [t for (rng_, _depth), t in self._trees.items()
                                               if rng_.contains(h)]
        d = versions_digest(versions) if versions else None
        for t in trees:
            if d is None:
                t.remove(key)
            else:
                t.update(key, d)

    def _hash_of(self, key: str) -> int:
        h = self._hash_memo.get(key)
        if h is None:
            h = self._hash_memo[key] = key_hash(key)
        return h

    # -- hinted replicas ------------------------------------------------------------------------

    def held(self, key: str) -> list[Versioned]:
        """Every copy of ``key`` this node keeps: its own, then the hinted ones (as stored, not
        reconciled)."""
        versions = list(self._store.get(key))
        for intended in self._store.hinted_nodes():
            versions += self._store.get_hint(intended, key)
        return versions

    def hinted_nodes(self) -> list[str]:
        """The nodes this node keeps hinted replicas for, sorted."""
        return self._store.hinted_nodes()

    def hints_for(self, intended: str) -> list[Hint]:
        return self._store.hints(intended)

    def hint(self, intended: str, key: str) -> list[Versioned]:
        return self._store.get_hint(intended, key)

    def merge_hint(self, intended: str, key: str, incoming: Iterable[Versioned]) -> None:
        """Keep versions for ``intended`` apart from this node's own data (a hinted replica)."""
        if intended == self.id:
            self.merge_local(key, incoming)
            return
        held = self._store.get_hint(intended, key)
        self._store.put_hint(intended, key, self.versioning.reconcile(list(held) + list(incoming)))
        self.count("hints_stored")

    def delete_hint(self, intended: str, key: str) -> None:
        self._store.delete_hint(intended, key)

    def hint_count(self) -> int:
        return self._store.hint_count()

    # -- the ring -------------------------------------------------------------------------------

    @property
    def ring(self):
        """The ring as this node sees it now (built from the members it believes up), or None."""
        sig = self.membership.ring_version
        if sig != self._ring_sig:
            members = self.membership.ring_members()
            self._ring = self.parts.ring_factory(members) if members else None
            self._ring_size = len(members)
            self._ring_sig = sig
            self._trees.clear()
            self._trees_of_key.clear()
            for callback in self._ring_listeners:
                callback()
        return self._ring

    def on_ring_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever this node's ring is rebuilt (members, tokens changed)."""
        self._ring_listeners.append(callback)

    def n_eff(self) -> int:
        """N, or fewer when the ring has fewer nodes."""
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

    # -- membership -----------------------------------------------------------------------------

    def suspected(self, node: str) -> bool:
        """Does this node believe ``node`` down now (its failure detector)?"""
        return self.membership.suspected(node, self.now)

    def save_membership(self) -> None:
        """Make the view (and this node's generation) durable, to resume from after a restart."""
        self._store.set_meta("generation", str(self.membership.mine.generation))
        self._store.set_meta("members", dump_members(self.membership.view))

    def set_status(self, status: str) -> None:
        """Announce this node ``up``, ``leaving`` or ``left`` (kept across restarts)."""
        self.membership.set_status(status)
        self._store.set_meta("status", status)
        self.save_membership()

    @property
    def left(self) -> bool:
        """This node has left the ring for good: it handles nothing periodic any more."""
        return self.membership is not None and self.membership.mine.status == "left"
