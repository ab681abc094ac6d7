"""What gossip relayed by one node may claim about another (issue 8, item 3).

A forged ``Gossip`` saying "E has left" with a huge generation used to evict E for good: every
view kept the claim, and E, restarting at its stored generation + 1, could never outrank it.
Now a generation is the member's own to raise: a relay may announce only the next generation
of a restart, and a member outranks any claim about itself.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_lab.membership import Membership, MemberState, relayed_claim_ok

TOKENS = ("12345",)


def view_of(me: str = "A", **others: MemberState) -> Membership:
    return Membership(me, generation=1, tokens=(1,), now=0.0, suspect_after_s=4.0,
                      known=others.values())


def e(generation: int, heartbeat: int = 0, status: str = "up") -> MemberState:
    return MemberState("E", generation, heartbeat, status, TOKENS if status == "up" else (), "")


def test_a_relayed_claim_cannot_evict_a_member_with_a_bigger_generation():
    m = view_of(E=e(1, 5))
    m.merge([e(10**9, 0, "left")], now=1.0, src="B")
    assert m.view["E"] == e(1, 5) and "E" in m.ring_members()
    m.merge([e(2, 0, "left")], now=1.0, src="B")          # a new generation that is not a restart
    assert m.view["E"] == e(1, 5)
    m.merge([e(3, 0, "up")], now=1.0, src="B")            # two restarts at once: E says it itself
    assert m.view["E"] == e(1, 5)


def test_a_relay_spreads_heartbeats_leaves_and_restarts_and_the_member_says_the_rest():
    m = view_of(E=e(1, 5))
    m.merge([e(1, 9)], now=1.0, src="B")
    assert m.view["E"] == e(1, 9)                         # a heartbeat within the generation
    m.merge([e(2, 0)], now=1.0, src="B")
    assert m.view["E"] == e(2, 0)                         # a restart: the next generation, up
    m.merge([e(2, 1, "left")], now=1.0, src="B")
    assert m.view["E"].status == "left"                   # a leave, within the generation
    m.merge([e(40, 0, "up")], now=1.0, src="E")
    assert m.view["E"] == e(40, 0)                        # E's own word
    m.merge([MemberState("F", 7, 3, "up", TOKENS, "")], now=1.0, src="B")
    assert m.view["F"].generation == 7                    # a node not heard of yet: a join


def test_a_member_outranks_any_claim_about_itself():
    m = view_of("E")
    assert m.mine.generation == 1
    m.merge([e(10**6, 3, "left")], now=1.0, src="B")
    assert m.mine.generation == 10**6 + 1 and m.mine.status == "up"
    mine = m.mine
    m.merge([MemberState("E", mine.generation, mine.heartbeat, "left", (), "")], now=1.0, src="B")
    assert m.mine.status == "up" and m.mine.heartbeat == mine.heartbeat + 1   # a same-rank tie


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.integers(0, 5), st.integers(0, 5), st.sampled_from(["up", "leaving", "left"]),
       st.integers(0, 9))
def test_relays_never_raise_a_generation_by_more_than_one(known_gen, claim_gen, status, hb):
    known, claim = e(known_gen, 1), e(claim_gen, hb, status)
    m = view_of(E=known)
    m.merge([claim], now=1.0, src="B")
    got = m.view["E"]
    assert got.generation <= known_gen + 1
    if got.generation == known_gen + 1:
        assert got.status == "up"
    assert relayed_claim_ok(known, claim) == (claim_gen <= known_gen or
                                              (claim_gen == known_gen + 1 and status == "up"))
