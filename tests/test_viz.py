"""The lab pictures: each drawing is checked by what it drew (artists found by gid, their
points, colours and labels), each widget by driving its controls without a browser, and one
notebook runs headless through nbclient."""

from __future__ import annotations

import base64
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib.colors import to_hex

import dynamo_lab as dl
from dynamo_lab.errors import ConfigError
from dynamo_lab.sim.trace import TraceEvent
from dynamo_lab.viz import (PALETTE, MerkleDiffWidget, RingWidget, SpaceTimeWidget,
                            VersionDagWidget, draw_convergence, draw_load, draw_load_spread,
                            draw_merkle_diff, draw_ring, draw_spacetime, draw_version_dag,
                            match_messages, node_color, node_colors, paper_d1_d5,
                            paper_d1_d5_steps, ring_tokens)

REPO = Path(__file__).resolve().parents[1]
KEYS = [f"cart:{i}" for i in range(60)]


# -- helpers: find what was drawn -------------------------------------------------------------

def artists(fig):
    out = []
    for ax in fig.axes:
        out.extend(ax.get_children())
    return out


def by_gid(fig, gid):
    return [a for a in artists(fig) if a.get_gid() == gid]


def one(fig, gid):
    found = by_gid(fig, gid)
    assert len(found) == 1, f"expected one artist with gid {gid!r}, found {len(found)}"
    return found[0]


def gids(fig, prefix):
    return sorted(a.get_gid() for a in artists(fig) if (a.get_gid() or "").startswith(prefix))


def hexes(collection):
    return {to_hex(c) for c in collection.get_facecolors()}


def title(fig):
    return " ".join(ax.get_title() for ax in fig.axes)


# -- colours -----------------------------------------------------------------------------------

def test_node_colours_are_stable_and_distinct():
    assert [node_color(x) for x in "ABCDE"] == list(PALETTE[:5])
    assert node_color("N26") == PALETTE[26 % len(PALETTE)]
    assert node_color("client:alice") != node_color("A")
    # Removing a node does not recolour the others.
    assert node_colors("ABCD")["D"] == node_colors("BCD")["D"] == node_color("D")
    # Arbitrary names collide in the palette only beyond its size.
    names = [f"server-{c}" for c in "pqrstuvwxyzo"]
    assert len(set(node_colors(names).values())) == len(PALETTE)
    assert node_colors(["Sx", "Sy", "Sz"]) == node_colors(["Sz", "Sy", "Sx"])


# -- rings -------------------------------------------------------------------------------------

class TokensOnly:
    """A student's ring that only exposes its tokens."""

    def __init__(self, nodes, vnodes=8, swap=False):
        ref = dl.Ring(nodes, vnodes=vnodes)
        self.tokens = [(x, t) if swap else (t, x) for t, x in ref.tokens]


class RepeatingRing:
    """A buggy preference list that repeats the coordinator."""

    def __init__(self, nodes, vnodes=8):
        self.ref = dl.Ring(nodes, vnodes=vnodes)
        self.nodes = self.ref.nodes
        self.tokens_of = self.ref.tokens_of

    def preference_list(self, key, n):
        c = self.ref.coordinator(key)
        return [c] * n


def test_ring_tokens_reads_every_documented_shape():
    ring = dl.Ring(["A", "B", "C"], vnodes=4)
    assert ring_tokens(ring) == ring.tokens
    assert ring_tokens(TokensOnly(["A", "B", "C"], 4)) == ring.tokens
    assert ring_tokens(TokensOnly(["A", "B", "C"], 4, swap=True)) == ring.tokens

    class Mapped:
        tokens = ring.token_map()

    assert ring_tokens(Mapped()) == ring.tokens
    class PositionsAndTokensOf:
        tokens = sorted(t for t, _ in ring.tokens)
        nodes = ring.nodes
        tokens_of = ring.tokens_of

    assert ring_tokens(PositionsAndTokensOf()) == ring.tokens
    with pytest.raises(ConfigError, match="tokens"):
        ring_tokens(object())

    class Bad:
        tokens = [(-1, "A")]

    with pytest.raises(ConfigError, match="not a ring position"):
        ring_tokens(Bad())


def test_draw_ring_tokens_keys_and_preference_list():
    ring = dl.Ring(["A", "B", "C", "D"], vnodes=8)
    fig = draw_ring(ring, keys=KEYS, highlight_key="cart:alice", n=3, moved=KEYS[:5])
    for node in ring.nodes:
        sc = one(fig, f"tokens:{node}")
        assert len(sc.get_offsets()) == len(ring.tokens_of(node))
        assert hexes(sc) == {node_color(node)}
    assert len(one(fig, "keys").get_offsets()) == len(KEYS)
    assert len(one(fig, "moved").get_offsets()) == 5
    # One coloured arc per token, so ownership is visible.
    assert len(one(fig, "ring:arcs").get_segments()) == len(ring.tokens)

    pref = ring.preference_list("cart:alice", 3)
    for i, node in enumerate(pref, start=1):
        arrow = one(fig, f"pref:{i}")
        assert to_hex(arrow.get_edgecolor()) == node_color(node)
        label = one(fig, f"pref-label:{i}")
        assert label.get_text() == str(i)
        assert to_hex(label.get_bbox_patch().get_facecolor()) == node_color(node)
    assert gids(fig, "pref:") == ["pref:1", "pref:2", "pref:3"]
    assert " → ".join(pref) in title(fig)
    legend = fig.axes[0].get_legend()
    assert [t.get_text().split()[0] for t in legend.get_texts()][:4] == ring.nodes


def test_draw_ring_walks_a_ring_without_preference_list_and_shows_a_buggy_one():
    nodes = ["A", "B", "C", "D", "E"]
    ref = dl.Ring(nodes, vnodes=8)
    fig = draw_ring(TokensOnly(nodes), highlight_key="cart:bob", n=3)
    colours = [to_hex(one(fig, f"pref:{i}").get_edgecolor()) for i in (1, 2, 3)]
    assert colours == [node_color(x) for x in ref.preference_list("cart:bob", 3)]

    fig = draw_ring(RepeatingRing(nodes), highlight_key="cart:bob", n=3)
    colours = [to_hex(one(fig, f"pref:{i}").get_edgecolor()) for i in (1, 2, 3)]
    assert colours == [node_color(ref.coordinator("cart:bob"))] * 3


def test_draw_ring_into_a_given_axes_and_bad_n():
    from matplotlib.figure import Figure
    fig = Figure()
    ax = fig.add_subplot()
    assert draw_ring(dl.Ring(["A", "B"], vnodes=2), highlight_key="k", n=5, ax=ax) is fig
    assert gids(fig, "pref:") == ["pref:1", "pref:2"]  # n capped at the node count
    with pytest.raises(ConfigError):
        draw_ring(dl.Ring(["A"]), n=0)


def test_draw_load_bars_and_fair_share():
    ring = dl.Ring(["A", "B", "C", "D", "E"], vnodes=4)
    fig = draw_load(ring)
    own = ring.ownership()
    for node, share in own.items():
        bar = one(fig, f"load:{node}")
        assert bar.get_height() == pytest.approx(share)
        assert to_hex(bar.get_facecolor()) == node_color(node)
    assert one(fig, "fair-share").get_ydata()[0] == pytest.approx(0.2)
    assert f"{max(own.values()) / 0.2:.2f}×" in title(fig)
    # A mapping works too, and expected overrides the fair share; a student ring is read
    # from its tokens.
    fig = draw_load({"X": 0.7, "Y": 0.3}, expected=0.4)
    assert one(fig, "fair-share").get_ydata()[0] == pytest.approx(0.4)
    fig = draw_load(TokensOnly(["A", "B", "C", "D", "E"], 4))
    assert one(fig, "load:C").get_height() == pytest.approx(own["C"])
    with pytest.raises(ConfigError):
        draw_load({})


def test_a_ring_without_answers_is_answered_by_the_reference_ring():
    from dynamo_lab.viz.ring import coordinators
    nodes = ["A", "B", "C", "D"]
    ref = dl.Ring(nodes, vnodes=4)
    assert coordinators(TokensOnly(nodes, 4), KEYS) == {k: ref.coordinator(k) for k in KEYS}
    # RepeatingRing answers preference_list itself but has no coordinator.
    assert coordinators(RepeatingRing(nodes, 4), KEYS[:5]) == {k: ref.coordinator(k) for k in KEYS[:5]}

    class Collided:
        tokens = [(7, "A"), (7, "B")]   # two nodes on one token: A's arc is the whole ring

    assert one(draw_load(Collided()), "load:A").get_height() == pytest.approx(1.0)
    assert one(draw_load(Collided()), "load:B").get_height() == 0


def test_lab2_story_lives_with_lab2_and_is_still_importable_from_viz():
    from dynamo_lab import viz
    from dynamo_lab.labs.lab2_vector_clocks import story
    assert viz.paper_d1_d5 is story.paper_d1_d5 is paper_d1_d5
    assert viz.paper_d1_d5_steps is story.paper_d1_d5_steps
    with pytest.raises(AttributeError):
        viz.no_such_picture


def test_draw_load_spread_lines():
    v = [1, 4, 16, 64]
    formula = [math.sqrt(4 / (5 * x + 1)) for x in v]
    fig = draw_load_spread(v, [0.8, 0.4, 0.2, 0.1], formula)
    assert list(one(fig, "measured").get_ydata()) == [0.8, 0.4, 0.2, 0.1]
    assert list(one(fig, "formula").get_ydata()) == pytest.approx(formula)
    assert fig.axes[0].get_xscale() == "log"
    with pytest.raises(ConfigError):
        draw_load_spread([1, 2], [0.5], [0.5, 0.4])


# -- versions ----------------------------------------------------------------------------------

def test_paper_d1_d5_clocks():
    story = dict(paper_d1_d5())
    assert list(story) == ["D1", "D2", "D3", "D4", "D5"]
    assert [story[k].clock.counters() for k in story] == [
        {"Sx": 1}, {"Sx": 2}, {"Sx": 2, "Sy": 1}, {"Sx": 2, "Sz": 1}, {"Sx": 3, "Sy": 1, "Sz": 1}]
    assert set(dl.reconcile([story[k] for k in ("D1", "D2", "D3", "D4")])) == {story["D3"], story["D4"]}
    steps = paper_d1_d5_steps()
    assert [s[0] for s in steps] == list(story) and all(s[2] for s in steps)


def box_colours(fig, label):
    patch = one(fig, f"version:{label}").get_bbox_patch()
    return to_hex(patch.get_facecolor()), to_hex(patch.get_edgecolor())


def test_version_dag_edges_are_the_transitive_reduction():
    fig = draw_version_dag(paper_d1_d5())
    assert gids(fig, "edge:") == sorted(["edge:D1->D2", "edge:D2->D3", "edge:D2->D4",
                                         "edge:D3->D5", "edge:D4->D5"])
    assert one(fig, "version:D3").get_text().splitlines()[:2] == ["D3", "[(Sx,2),(Sy,1)]"]
    # D5 alone survives: green; the rest are obsolete: white.
    assert box_colours(fig, "D5")[1] != box_colours(fig, "D1")[1]
    assert box_colours(fig, "D1")[0] == "#ffffff"
    assert "D5" in title(fig)
    # Generations left to right; D3 and D4 share a column.
    x = {k: one(fig, f"version:{k}").get_position()[0] for k in ("D1", "D2", "D3", "D4", "D5")}
    assert x["D1"] < x["D2"] < x["D3"] == x["D4"] < x["D5"]
    assert one(fig, "writer:D4").get_text() == "written by Sz"


def test_version_dag_highlights_concurrent_siblings():
    fig = draw_version_dag(paper_d1_d5()[:4])
    sibling = box_colours(fig, "D3")
    assert sibling == box_colours(fig, "D4") != box_colours(fig, "D2")
    assert sibling != box_colours(draw_version_dag(paper_d1_d5()), "D5")
    assert "Siblings" in title(fig) and "D3 and D4" in title(fig)


def test_version_dag_inputs():
    a, b = dl.VectorClock({"A": 1}), dl.VectorClock({"A": 1, "B": 1})
    fig = draw_version_dag([("x", a), ("y", b)])
    assert gids(fig, "edge:") == ["edge:x->y"]
    v1, v2 = dl.Versioned(1, a), dl.Versioned(2, dl.VectorClock({"B": 1}))
    fig = draw_version_dag([v1, v2])
    assert gids(fig, "version:") == ["version:v1", "version:v2"] and gids(fig, "edge:") == []
    fig = draw_version_dag([v1, v2], labels=["first", "second"])
    assert gids(fig, "version:") == ["version:first", "version:second"]
    # Equal clocks are one version as far as reconcile goes: not siblings.
    fig = draw_version_dag([("p", a), ("q", a)])
    assert "Siblings" not in title(fig)
    with pytest.raises(ConfigError, match="distinct"):
        draw_version_dag([("p", a), ("p", b)])
    with pytest.raises(ConfigError):
        draw_version_dag([42])
    with pytest.raises(ConfigError):
        draw_version_dag([v1], labels=["a", "b"])


# -- Merkle trees ------------------------------------------------------------------------------

def trees(depth=4, changed=("k7",)):
    items = {f"k{i}": f"v{i}".encode() for i in range(200)}
    a = dl.MerkleTree.build(items, depth=depth)
    for k in changed:
        items[k] = b"changed"
    return a, dl.MerkleTree.build(items, depth=depth)


def test_merkle_diff_colours_the_path_to_one_differing_leaf():
    a, b = trees(depth=4)
    fig = draw_merkle_diff(a, b, max_depth=4)
    # One differing leaf: its path (depth + 1 nodes) is red, each sibling on it green,
    # the rest never compared; 2D + 1 hashes.
    assert len(one(fig, "merkle:differ").get_offsets()) == 5
    assert len(one(fig, "merkle:same").get_offsets()) == 4
    assert len(one(fig, "merkle:skipped").get_offsets()) == 31 - 9
    assert hexes(one(fig, "merkle:differ")) == {"#d62728"}
    assert len(one(fig, "merkle:path").get_segments()) == 8
    assert "9 hashes exchanged vs 200" in title(fig)
    assert dl.merkle_diff(a, b).hashes_exchanged == 9


def test_merkle_diff_depth_cap_and_equal_trees():
    a, b = trees(depth=6, changed=())
    fig = draw_merkle_diff(a, b, max_depth=2)
    assert len(one(fig, "merkle:same").get_offsets()) == 1
    assert by_gid(fig, "merkle:differ")[0].get_offsets().shape[0] == 0
    assert len(one(fig, "merkle:skipped").get_offsets()) == 6
    assert any("levels 3..6 not drawn" in t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(ConfigError):
        draw_merkle_diff(a, dl.MerkleTree.build({}, depth=5))
    with pytest.raises(ConfigError):
        draw_merkle_diff(a, b, max_depth=-1)


# -- space-time diagrams -----------------------------------------------------------------------

def ev(seq, time, kind, node, peer="", msg=None, detail=""):
    return TraceEvent(seq, time, kind, node, peer, msg, detail)


def test_match_messages_pairs_sends_with_their_ends():
    m1 = dl.messages.ClientGet("r1", "cart")
    m2 = dl.messages.ClientGet("r2", "cart")
    events = [
        ev(1, 0.0, "send", "A", "B", m1),
        ev(2, 0.0, "send", "A", "B", m2),
        ev(3, 0.1, "deliver", "B", "A", m2),    # reordered: matched by message, not order
        ev(4, 0.2, "deliver", "B", "A", m1),
        ev(5, 0.3, "deliver", "B", "A", m1),    # the network duplicated m1
        ev(6, 0.4, "send", "B", "C", m1),
        ev(7, 0.4, "drop", "B", "C", m1, "partition"),
        ev(8, 0.5, "send", "C", "A", m2),       # never arrives
    ]
    got = [(m.send.seq, m.end.seq if m.end else None, m.fate, m.duplicate)
           for m in match_messages(events)]
    assert got == [(1, 4, "deliver", False), (1, 5, "deliver", True), (2, 3, "deliver", False),
                   (6, 7, "drop", False), (8, None, "in-flight", False)]


def test_draw_spacetime_on_synthetic_events():
    m1, m2 = dl.messages.ClientGet("r1", "cart"), dl.messages.ClientGet("r2", "other")
    events = [
        ev(1, 0.0, "send", "A", "B", m1), ev(2, 0.01, "deliver", "B", "A", m1),
        ev(3, 0.02, "crash", "C", detail="down"),
        ev(4, 0.03, "send", "B", "C", m1), ev(5, 0.04, "drop", "B", "C", m1, "node is down"),
        ev(6, 0.05, "send", "A", "C", m2), ev(7, 0.06, "deliver", "C", "A", m2),
        ev(8, 0.07, "restart", "C"),
    ]
    fig = draw_spacetime(events, key="cart")
    assert gids(fig, "msg:") == ["msg:deliver:ClientGet", "msg:drop:ClientGet"]
    assert len(one(fig, "drops").get_offsets()) == 1
    one(fig, "crash:C")
    one(fig, "restart:C")
    assert gids(fig, "lane:") == ["lane:A", "lane:B", "lane:C"]
    assert [to_hex(one(fig, f"lane:{x}").get_color()) for x in "ABC"] == [node_color(x) for x in "ABC"]
    # The deliver arrow goes from A's lifeline to B's, downwards (time flows down).
    (xa, ya), (xb, yb) = one(fig, "msg:deliver:ClientGet")._posA_posB
    assert (xa, xb) == (0, 1) and yb > ya
    # Without a key every message shows; with a window only those sent inside it.
    assert len(gids(draw_spacetime(events), "msg:")) == 3
    assert gids(draw_spacetime(events, start=0.045, end=1.0), "msg:") == ["msg:deliver:ClientGet"]
    assert gids(draw_spacetime(events, nodes=["A", "B"]), "msg:") == ["msg:deliver:ClientGet"]
    capped = draw_spacetime(events, max_messages=1)
    assert len(gids(capped, "msg:")) == 1 and "first 1 of 3" in title(capped)
    assert len(gids(draw_spacetime(events, time_axis="time"), "msg:")) == 3
    with pytest.raises(ConfigError):
        draw_spacetime([object()])
    with pytest.raises(ConfigError):
        draw_spacetime(events, time_axis="lamport")


def about_cart(msg):
    """The messages the diagram must keep for key 'cart', written out by message type."""
    if getattr(msg, "key", None) == "cart":
        return True
    if getattr(getattr(msg, "request", None), "key", None) == "cart":
        return True
    listed = [k for k, _ in getattr(msg, "items", ())] + list(getattr(msg, "wants", ()))
    listed += list(getattr(msg, "keys", ())) + [k for k, _ in getattr(msg, "entries", ())]
    return "cart" in listed


@pytest.fixture(scope="module")
def cluster():
    c = dl.SimCluster(nodes=5, n=3, r=2, w=2, seed=7)
    c.run_for(1.0)
    alice = c.client("alice")
    res = alice.put("cart", ["book"], via="B")
    c.crash("C")
    c.partition({"A", "B"}, {"C", "D", "E"})
    alice.put("cart", ["book", "pen"], context=res.context, via="B")
    c.heal()
    c.restart("C")
    c.run_for(2.0)
    return c


def test_draw_spacetime_on_a_cluster_trace(cluster):
    events = cluster.sim.trace.events
    about = [m for m in match_messages(events) if about_cart(m.send.msg)]
    fig = draw_spacetime(cluster, key="cart")
    drawn = gids(fig, "msg:")
    assert len(drawn) == len(about) > 0
    assert not any("Gossip" in g or "Merkle" in g for g in drawn)
    drops = [m for m in about if m.fate == "drop"]
    assert drops and len(one(fig, "drops").get_offsets()) == len(drops)
    one(fig, "partition")
    one(fig, "heal")
    one(fig, "crash:C")
    # Every deliver of the trace was matched to its send.
    delivers = [e for e in events if e.kind == "deliver"]
    assert sum(1 for m in match_messages(events) if m.fate == "deliver") == len(delivers)


# -- gossip ------------------------------------------------------------------------------------

def test_draw_convergence():
    fig = draw_convergence([1, 2, 4, 8, 14, 16], n=16)
    assert list(one(fig, "informed").get_ydata()) == [1, 2, 4, 8, 14, 16]
    assert one(fig, "theory").get_xdata()[0] == pytest.approx(math.log2(16) + math.log(16))
    assert one(fig, "all").get_ydata()[0] == 16
    assert "after 5 rounds" in title(fig)
    assert "3 of 16" in title(draw_convergence([1, 2, 3], n=16))
    with pytest.raises(ConfigError):
        draw_convergence([])


# -- widgets -----------------------------------------------------------------------------------

def test_ring_widget_explains_a_move_far_from_the_average_by_the_nodes_share():
    """With 2 tokens per node, removing D moves 70 of 100 keys: D owned 75% of the ring.
    The status says so, beside the 1/n average, and suggests more vnodes."""
    w = RingWidget(nodes=("A", "B", "C", "D"), vnodes=2)
    share = w.ring.ownership()["D"]
    assert w.remove_node("D") is True
    text = re.sub(r"<[^>]+>", "", w.status.value)
    assert f"{len(w.moved)} of 100 keys ({len(w.moved) / 100:.0%}) changed coordinator" in text
    assert f"It owned {share:.0%} of the ring" in text and share > 0.5
    assert "the average node owns 1/4 = 25%" in text and "raise vnodes" in text
    w = RingWidget(nodes=("A", "B", "C", "D"), vnodes=64)
    assert w.add_node() is True
    text = re.sub(r"<[^>]+>", "", w.status.value)
    assert f"which now owns {w.ring.ownership()['E']:.0%} of the ring" in text
    assert "the average node owns 1/5 = 20%" in text and "raise vnodes" not in text


def test_ring_widget_slider_add_and_remove():
    w = RingWidget(nodes=("A", "B", "C", "D"), vnodes=4, keys=KEYS, n=3)
    assert w.error is None and w.renders == 1 and w.out.outputs[0]["data"]["image/png"]
    assert len(w.ring.tokens) == 16
    png = w.png
    w.vnodes_slider.value = 16
    assert len(w.ring.tokens) == 64 and w.renders == 2 and w.png != png
    assert len(one(w.figure, "tokens:A").get_offsets()) == 16

    old = w.ring
    assert w.add_node() is True                       # the suggested name: E
    assert w.nodes == ["A", "B", "C", "D", "E"] and w.last_change == ("add", "E")
    expected = dl.moved_keys(old, w.ring, KEYS, n=1)
    assert set(w.moved) == set(expected) and w.moved
    assert all(new == "E" for _old, new in w.moved.values())  # keys move only to the newcomer
    assert len(one(w.figure, "moved").get_offsets()) == len(w.moved)
    assert "added E" in w.status.value and w.remove_picker.options == ("A", "B", "C", "D", "E")
    assert w.new_node.value == "F"
    assert len(gids(w.figure, "load:")) == 5

    assert w.add_node("A") is False and "pick a new node name" in w.status.value
    w.remove_picker.value = "B"
    w.remove_button.click()
    assert w.nodes == ["A", "C", "D", "E"] and all(old == "B" for old, _new in w.moved.values())

    w.key_box.value = "cart:alice"
    pref = w.ring.preference_list("cart:alice", 3)
    assert [to_hex(one(w.figure, f"pref:{i}").get_edgecolor()) for i in (1, 2, 3)] == \
        [node_color(x) for x in pref]
    w.vnodes_slider.value = 8
    assert w.moved == {} and w.last_change is None
    with pytest.raises(ConfigError):
        RingWidget(nodes=("A", "A"))


def test_ring_widget_with_a_student_ring_and_a_failing_one():
    w = RingWidget(nodes=("A", "B", "C"), vnodes=4, keys=KEYS,
                   ring_factory=lambda nodes, v: TokensOnly(nodes, v))
    assert w.error is None
    w.add_button.click()
    assert w.nodes == ["A", "B", "C", "D"] and w.moved

    def broken(nodes, v):
        if len(nodes) > 3:
            raise NotImplementedError("add_node is not written yet")
        return dl.Ring(nodes, vnodes=v)

    w = RingWidget(nodes=("A", "B", "C"), keys=KEYS, ring_factory=broken)
    assert w.add_node("D") is False
    assert "add_node is not written yet" in w.status.value and w.nodes == ["A", "B", "C"]


def test_version_dag_widget_steps():
    w = VersionDagWidget(paper_d1_d5_steps())
    assert w.step == 1 and [x for x, _ in w.versions] == ["D1"] and w.prev_button.disabled
    w.next_button.click()
    w.next_button.click()
    w.next_button.click()
    assert w.step == 4 and w.kept == ["D3", "D4"] and "Step 4/5" in w.caption.value
    assert gids(w.figure, "version:") == ["version:D1", "version:D2", "version:D3", "version:D4"]
    w.step = 5
    assert w.kept == ["D5"] and w.next_button.disabled and len(gids(w.figure, "edge:")) == 5
    w.prev_button.click()
    assert w.step == 4

    # Plain lists of versions, a version seen twice, and a step that only explains.
    a = dl.Versioned("a", dl.VectorClock({"X": 1}))
    b = dl.Versioned("b", dl.VectorClock({"X": 1, "Y": 1}))
    c = dl.Versioned("c", dl.VectorClock({"X": 2}))
    w = VersionDagWidget([("start", "nothing written yet"), ("one", [a]), ("two", [a, b, c])])
    assert w.versions == [] and w.figure is None
    w.step = 3
    assert [x for x, _ in w.versions] == ["v1", "v2", "v3"] and w.kept == ["v2", "v3"]
    assert w.renders == 1 and w.error is None     # step 1 drew nothing
    w.step = 2
    assert w.renders == 2 and [x for x, _ in w.versions] == ["v1"]
    # paper_d1_d5() itself is a scenario.
    w = VersionDagWidget(paper_d1_d5())
    w.step = 5
    assert w.kept == ["D5"]
    with pytest.raises(ConfigError):
        VersionDagWidget([])


def test_space_time_widget_window_and_key(cluster):
    w = SpaceTimeWidget(cluster, key="cart")
    start, end = w.window
    assert w.error is None and 0 < w.shown <= SpaceTimeWidget.DEFAULT_MESSAGES
    assert len(gids(w.figure, "msg:")) == w.shown
    renders = w.renders
    w.window = (start, start + (end - start) / 3)
    assert w.renders == renders + 1 and len(gids(w.figure, "msg:")) == w.shown
    w.key_box.value = ""
    assert len(w.messages) > len([m for m in w.messages if "cart" in repr(m.send.msg)])
    assert w.shown == SpaceTimeWidget.DEFAULT_MESSAGES


def test_merkle_diff_widget_depth_slider():
    a, b = trees(depth=6)
    w = MerkleDiffWidget(a, b)
    assert w.max_depth == 5 and w.diff == dl.merkle_diff(a, b)

    def drawn(fig):
        return sum(len(one(fig, f"merkle:{k}").get_offsets()) for k in ("differ", "same", "skipped"))

    assert drawn(w.figure) == 2 ** 6 - 1
    w.depth_slider.value = 2
    assert drawn(w.figure) == 7 and w.renders == 2
    assert w.depth_slider.max == 6


# -- determinism and a real (headless) notebook ------------------------------------------------

SCRIPT = textwrap.dedent("""
    import hashlib, matplotlib
    matplotlib.use("Agg")
    import dynamo_lab as dl
    from dynamo_lab.viz import draw_ring, draw_version_dag, paper_d1_d5, figure_png, node_colors
    ring = dl.Ring(["A", "B", "C", "D", "E"], vnodes=8)
    keys = [f"cart:{i}" for i in range(50)]
    pngs = [figure_png(draw_ring(ring, keys=keys, highlight_key="cart:1", moved=keys[:7])),
            figure_png(draw_version_dag(paper_d1_d5()))]
    print(hashlib.sha256(b"".join(pngs)).hexdigest(), node_colors(["Sx", "Sy", "Sz", "q"]))
""")


def test_drawings_do_not_depend_on_the_hash_seed():
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=REPO,
                              env=dict(os.environ, PYTHONHASHSEED=seed, MPLBACKEND="Agg"))
             for seed in ("0", "12345")]
    outs = set()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.add(out)
    assert len(outs) == 1


def test_widgets_render_in_a_headless_notebook(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import dynamo_lab as dl\n"
                                  "from dynamo_lab.viz import RingWidget, draw_version_dag, paper_d1_d5"),
        nbformat.v4.new_code_cell("w = RingWidget(nodes=('A', 'B', 'C', 'D'), vnodes=8)\n"
                                  "w.add_node('E')\nw"),
        nbformat.v4.new_code_cell("draw_version_dag(paper_d1_d5())"),
        nbformat.v4.new_code_cell("assert w.error is None\nprint('moved', len(w.moved))"),
    ]
    env_dirs = {name: tmp_path / name for name in ("home", "config", "data", "runtime", "ipython")}
    for d in env_dirs.values():
        d.mkdir()
    saved = {k: os.environ.get(k) for k in ("HOME", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR",
                                            "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLBACKEND",
                                            "PYTHONPATH")}
    os.environ.update(HOME=str(env_dirs["home"]), JUPYTER_CONFIG_DIR=str(env_dirs["config"]),
                      JUPYTER_DATA_DIR=str(env_dirs["data"]),
                      JUPYTER_RUNTIME_DIR=str(env_dirs["runtime"]),
                      IPYTHONDIR=str(env_dirs["ipython"]), MPLBACKEND="Agg",
                      PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), saved["PYTHONPATH"]])))
    try:
        client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    assert "moved" in nb.cells[3].outputs[0]["text"]
    # The widget was displayed, and its Output model holds the drawing as a PNG; a drawing
    # returned by a cell shows as a PNG too (VizFigure, no pyplot).
    views = [o for o in nb.cells[1].outputs
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    pngs = [out["data"]["image/png"] for model in state.values()
            for out in model["state"].get("outputs", []) if "image/png" in out.get("data", {})]
    pngs += [o["data"]["image/png"] for o in nb.cells[2].outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 2
    assert all(base64.b64decode(p)[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
