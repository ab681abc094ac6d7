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
from typing import Callable, Iterable, Mapping, Optional, Sequence, Set

from .failure_detector import TimeoutDetector
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


def merge_views(me: str, local: Mapping[str, MemberState],
                remote: Mapping[str, MemberState]) -> dict[str, MemberState]:
    """The view node ``me`` keeps after gossip brings ``remote`` into its view ``local``
    (both ``{member: state}``; neither is modified). What :attr:`Membership.merge` calls.

    * every other member: :func:`merge_state` (the higher ``(generation, heartbeat)``, then
      the further status); a member only one side knows is kept; tokens go with the state;
    * ``me``: never replaced by a claim. A claim of a higher generation makes ``me`` take the
      generation above it (heartbeat 0); a claim of my generation with a heartbeat at or above
      mine that is not my own state makes me take the heartbeat above it (:func:`own_state`).
    """
    out = dict(local)
    for node, st in remote.items():
        if node != me:
            out[node] = merge_state(out.get(node), st)
    claim, mine = remote.get(me), local.get(me)
    if claim is not None and mine is not None:
        out[me] = own_state(mine, claim)
    return {k: out[k] for k in sorted(out)}


def own_state(mine: MemberState, claim: MemberState) -> MemberState:
    """My state after hearing ``claim`` about myself: I outrank any claim that outranks me."""
    if claim.generation > mine.generation:
        return replace(mine, generation=min(claim.generation + 1, MAX_COUNTER - 1), heartbeat=0)
    if claim.generation == mine.generation and claim.heartbeat >= mine.heartbeat \
            and claim != mine:
        return replace(mine, heartbeat=claim.heartbeat + 1)
    return mine


def pick(candidates: Sequence[str], r: float) -> str:
    """The member of ``candidates`` that the draw ``r`` (uniform in [0, 1)) picks: each is
    equally likely."""
    return candidates[min(int(r * len(candidates)), len(candidates) - 1)]


def gossip_round(me: str, view: Mapping[str, MemberState], suspected: Set[str],
                 seeds: Sequence[str], rand: tuple[float, float]
                 ) -> tuple[dict[str, MemberState], list[str]]:
    """One gossip round of node ``me``: its view afterwards and whom it sends that view to.

    ``view``: ``{member: state}``; ``suspected``: the members believed down; ``seeds``: the
    node's seeds; ``rand``: two draws uniform in [0, 1). My heartbeat is raised by one
    (nothing else changes). The peers are the other members that have not left, sorted; the
    targets are, in this order: one peer not suspected (:func:`pick` with ``rand[0]``), or the
    first seed when there are no peers at all; one suspected peer (``rand[1]``), to notice
    when it is back; every seed the view does not hold yet.
    """
    out = dict(view)
    out[me] = replace(view[me], heartbeat=view[me].heartbeat + 1)
    peers = [n for n in sorted(view) if n != me and view[n].status != "left"]
    live = [p for p in peers if p not in suspected]
    suspects = [p for p in peers if p in suspected]
    targets: list[str] = []
    if live:
        targets.append(pick(live, rand[0]))
    elif not peers and seeds:
        targets.append(seeds[0])
    if suspects:
        targets.append(pick(suspects, rand[1]))
    for seed in seeds:
        if seed not in view and seed not in targets:
            targets.append(seed)
    return out, targets


class Membership:
    """One node's view of the cluster, with its failure detector.

    ``now`` is always the node's own clock; nothing here reads a real clock. ``merge`` is the
    view merge (:func:`merge_views`, or a lab's); ``detector`` the failure detector, with
    ``heard(node, now)`` and ``suspected(node, now)`` (:class:`~.failure_detector.TimeoutDetector`
    by default, or a lab's).
    """

    def __init__(self, me: str, *, generation: int, tokens: tuple[int, ...], now: float,
                 suspect_after_s: float, address: str = "",
                 known: Iterable[MemberState] = (), merge: Optional[Callable] = None,
                 detector: Optional[object] = None):
        self.me = me
        self.suspect_after_s = suspect_after_s
        self._merge = merge or merge_views
        self.detector = detector if detector is not None else TimeoutDetector(suspect_after_s)
        self.view: dict[str, MemberState] = {}
        self._timed_out: dict[str, float] = {}
        for st in known:
            if st.node != me:
                self.view[st.node] = st
        self.view[me] = MemberState(me, generation, 0, "up",
                                    tuple(str(t) for t in tokens), address)
        self.view = {k: self.view[k] for k in sorted(self.view)}
        for node in self.view:
            self.detector.heard(node, now)
        self.ring_version = 0     # bumped whenever the ring members, status or tokens change

    # -- my own state ---------------------------------------------------------------------

    @property
    def mine(self) -> MemberState:
        return self.view[self.me]

    def beat(self, now: float, state: Optional[MemberState] = None) -> None:
        """One gossip round: raise my heartbeat so others see I am alive (``state``: my state
        with its heartbeat raised, as the round computed it; default: mine plus one)."""
        if state is None:
            state = replace(self.mine, heartbeat=self.mine.heartbeat + 1)
        if state.node != self.me or (state.generation, state.heartbeat) <= (
                self.mine.generation, self.mine.heartbeat):
            raise ValueError(f"a gossip round raises {self.me}'s own heartbeat; got {state}")
        self.view[self.me] = state
        self.detector.heard(self.me, now)

    def set_status(self, status: str) -> None:
        if status not in STATUS_RANK:
            raise ValueError(f"unknown member status {status!r}")
        self.view[self.me] = replace(self.mine, status=status, heartbeat=self.mine.heartbeat + 1)
        self.ring_version += 1

    # -- gossip ---------------------------------------------------------------------------

    def merge(self, remote: Iterable[MemberState], now: float, src: str | None = None) -> bool:
        """Merge gossip (``src``: the node it came from; claims it relays about others are
        bounded by :func:`relayed_claim_ok` and dropped before the merge) with ``merge``.
        Returns True when the ring may have changed (members, status, tokens)."""
        before = self.ring_signature()
        old = self.view
        incoming: dict[str, MemberState] = {}
        for st in remote:
            if st.node != self.me and src is not None and st.node != src \
                    and not relayed_claim_ok(old.get(st.node), st):
                continue
            incoming[st.node] = merge_state(incoming.get(st.node), st)
        new = self._merge(self.me, old, incoming)
        for node, st in new.items():
            was = old.get(node)
            if node != self.me and (was is None or (st.generation, st.heartbeat)
                                    > (was.generation, was.heartbeat)):
                self.detector.heard(node, now)
        self.view = {k: new[k] for k in sorted(new)}
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
            self.detector.heard(node, now)

    def timed_out(self, node: str, now: float) -> None:
        """``node`` did not answer a request in time: suspect it until it talks to us again."""
        if node != self.me:
            self._timed_out[node] = now

    def suspected(self, node: str, now: float) -> bool:
        if node == self.me:
            return False
        if node in self._timed_out:
            return True
        return bool(self.detector.suspected(node, now))

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
