"""Gossip membership and failure detection, as pure data (the paper, section 4.8).

Every node keeps a *view*: for each member it has heard of, the latest :class:`MemberState`
that member published about itself. Views are merged by one rule, :func:`merge_state`:

* a higher ``(generation, heartbeat)`` wins: a member's own newest word is the truth;
  a restart bumps the generation so that a rebooted node overrides what was said before;
* on a tie, the further status wins (``up`` < ``leaving`` < ``left``), so a departure is
  never forgotten.

A member's generation is the member's own to raise: gossip *relayed* by another node may carry
a member's next generation (a restart, ``+1``, status ``up``) but no bigger jump and no new
generation that announces anything else (:func:`relayed_claim_ok`); the member tells such
news itself. And a member that hears a claim about itself with a generation above its own (a
forgery, or word from a life before its disk was wiped) takes a generation above that claim,
so no claim, however large, can evict it for good.

Failure detection is *local*, as in Dynamo: node A suspects B when B's heartbeat has not
risen for ``suspect_after_s`` of A's time, or when B failed to answer one of A's requests and
A has heard nothing directly from B since. Suspicion only steers the sloppy quorum (skip B,
write a hint elsewhere); it never removes B from the ring. Only an explicit leave does that.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Mapping

from .messages import MemberState

STATUS_RANK = {"up": 0, "leaving": 1, "left": 2}
#: Generations and heartbeats stay exact JSON numbers (below 2**53) in every language.
MAX_COUNTER = 2 ** 53


def merge_state(a: MemberState | None, b: MemberState) -> MemberState:
    """The state to keep when the view holds ``a`` and gossip brings ``b`` (same member).

    Commutative, associative and idempotent, so views converge whatever the gossip order.
    """
    if a is None:
        return b
    ka = (a.generation, a.heartbeat, STATUS_RANK.get(a.status, 0), a.tokens, a.address)
    kb = (b.generation, b.heartbeat, STATUS_RANK.get(b.status, 0), b.tokens, b.address)
    return a if ka >= kb else b


def relayed_claim_ok(known: MemberState | None, claim: MemberState) -> bool:
    """May gossip from a node other than ``claim.node`` change what we hold (``known``)?

    Yes within the generation we know (heartbeats and status spread epidemically), for a
    member we have not heard of (a join spreads the same way), and for a restart: the next
    generation, status ``up``. Anything else about a new generation only the member says.
    """
    if known is None or claim.generation <= known.generation:
        return True
    return claim.generation == known.generation + 1 and claim.status == "up"


def merge_views(local: Mapping[str, MemberState],
                remote: Iterable[MemberState]) -> dict[str, MemberState]:
    """Merge a remote view into a copy of ``local`` with :func:`merge_state`, member by member."""
    out = dict(local)
    for st in remote:
        out[st.node] = merge_state(out.get(st.node), st)
    return {k: out[k] for k in sorted(out)}


class Membership:
    """One node's view of the cluster, with its failure detector.

    ``now`` is always the node's own clock; nothing here reads a real clock.
    """

    def __init__(self, me: str, *, generation: int, tokens: tuple[int, ...], now: float,
                 suspect_after_s: float, address: str = "",
                 known: Iterable[MemberState] = ()):
        self.me = me
        self.suspect_after_s = suspect_after_s
        self.view: dict[str, MemberState] = {}
        self._last_rise: dict[str, float] = {}
        self._timed_out: dict[str, float] = {}
        for st in known:
            if st.node != me:
                self.view[st.node] = st
                self._last_rise[st.node] = now
        self.view[me] = MemberState(me, generation, 0, "up",
                                    tuple(str(t) for t in tokens), address)
        self._last_rise[me] = now
        self.view = {k: self.view[k] for k in sorted(self.view)}
        self.ring_version = 0     # bumped whenever the ring members, status or tokens change

    # -- my own state ---------------------------------------------------------------------

    @property
    def mine(self) -> MemberState:
        return self.view[self.me]

    def beat(self, now: float) -> None:
        """One gossip round: raise my heartbeat so others see I am alive."""
        self.view[self.me] = replace(self.mine, heartbeat=self.mine.heartbeat + 1)
        self._last_rise[self.me] = now

    def set_status(self, status: str) -> None:
        if status not in STATUS_RANK:
            raise ValueError(f"unknown member status {status!r}")
        self.view[self.me] = replace(self.mine, status=status, heartbeat=self.mine.heartbeat + 1)
        self.ring_version += 1

    # -- gossip ---------------------------------------------------------------------------

    def merge(self, remote: Iterable[MemberState], now: float, src: str | None = None) -> bool:
        """Merge gossip (``src``: the node it came from; claims it relays about others are
        bounded by :func:`relayed_claim_ok`). Returns True when the ring may have changed
        (members, status, tokens)."""
        before = self.ring_signature()
        for st in remote:
            if st.node == self.me:
                # Others may hold an old word of mine (from before a restart, or forged):
                # outrank it. My generation is mine to raise, above any claim.
                mine = self.mine
                if st.generation > mine.generation:
                    self.view[self.me] = replace(
                        mine, generation=min(st.generation + 1, MAX_COUNTER - 1), heartbeat=0)
                elif st.generation == mine.generation and st.heartbeat >= mine.heartbeat \
                        and st != mine:
                    self.view[self.me] = replace(mine, heartbeat=st.heartbeat + 1)
                continue
            old = self.view.get(st.node)
            if src is not None and st.node != src and not relayed_claim_ok(old, st):
                continue
            new = merge_state(old, st)
            if old is None or (new.generation, new.heartbeat) > (old.generation, old.heartbeat):
                self._last_rise[st.node] = now
            self.view[st.node] = new
        self.view = {k: self.view[k] for k in sorted(self.view)}
        changed = self.ring_signature() != before
        if changed:
            self.ring_version += 1
        return changed

    def ring_signature(self) -> tuple:
        return tuple((n, st.tokens) for n, st in self.view.items() if st.status == "up")

    # -- failure detection ----------------------------------------------------------------

    def heard_from(self, node: str, now: float) -> None:
        """Direct evidence that ``node`` is alive and reachable: a message from it arrived."""
        self._timed_out.pop(node, None)
        if node in self.view:
            self._last_rise[node] = max(self._last_rise.get(node, now), now)

    def timed_out(self, node: str, now: float) -> None:
        """``node`` did not answer a request in time: suspect it until it talks to us again."""
        if node != self.me:
            self._timed_out[node] = now

    def suspected(self, node: str, now: float) -> bool:
        if node == self.me:
            return False
        if node in self._timed_out:
            return True
        last = self._last_rise.get(node)
        return last is None or now - last > self.suspect_after_s

    def suspects(self, now: float) -> list[str]:
        return [n for n in self.view if n != self.me and self.view[n].status != "left"
                and self.suspected(n, now)]

    # -- queries --------------------------------------------------------------------------

    def ring_members(self) -> dict[str, tuple[int, ...]]:
        """Members that own ring positions now: status ``up`` (leaving nodes hand off)."""
        return {n: tuple(int(t) for t in st.tokens)
                for n, st in self.view.items() if st.status == "up"}

    def peers(self) -> list[str]:
        """Every other member that has not left, sorted."""
        return [n for n, st in self.view.items() if n != self.me and st.status != "left"]

    def status_of(self, node: str) -> str | None:
        st = self.view.get(node)
        return st.status if st else None

    def address_of(self, node: str) -> str:
        st = self.view.get(node)
        return st.address if st else ""
