"""Lab 5 through the whole grading pipeline (nbgrader autograde, the trusted checks, the
student's code in the sandbox): the solution gets full marks, the release zero, a correct
solution written another way full marks, and each of the lab's classic mistakes loses the
points of the promises it breaks, with feedback that names the promise, the smallest input,
expected against got, and the seed."""

from __future__ import annotations

import pytest

from fixtures.submissions import grader_fixtures as fx  # tests/ is on sys.path under pytest

LAB5 = "lab5_gossip"
pytestmark = pytest.mark.slow


def last_heard_merge() -> dict:
    """The merge takes whatever the remote view says of every other member."""
    return fx.replace_in(fx.answered(LAB5), "merge_views", "if rank_theirs > rank_ours:",
                         "if True:")


def others_set_my_entry() -> dict:
    """A claim of a later generation of mine replaces my state instead of being outranked."""
    return fx.replace_in(fx.answered(LAB5), "merge_views",
                         "out[me] = (claim[0] + 1, 0, status, tokens)", "out[me] = tuple(claim)")


def no_heartbeat() -> dict:
    """The round forgets to raise the node's own heartbeat."""
    return fx.replace_in(fx.answered(LAB5), "gossip_round",
                         "after[me] = (generation, heartbeat + 1, status, tokens)",
                         "after[me] = (generation, heartbeat, status, tokens)")


def at_least_timeout() -> dict:
    """The time-out suspects at exactly suspect_after_s of silence."""
    return fx.replace_in(fx.answered(LAB5), "detectors",
                         "now - self.last[node] > self.suspect_after_s",
                         "now - self.last[node] >= self.suspect_after_s")


REWRITTEN_MERGE = '''def merge_views(me, local, remote):
    """Written another way: a sort key per state, max over both sides."""
    def key(state):
        g, hb, status, tokens = state
        return (g, hb, STATUS_RANK[status], tuple(tokens))
    merged = {}
    for member in set(local) | set(remote):
        if member == me:
            continue
        merged[member] = max([s for s in (local.get(member), remote.get(member)) if s], key=key)
    g, hb, status, tokens = local[me]
    claim = remote.get(me)
    if claim and claim[0] > g:
        g, hb = claim[0] + 1, 0
    elif claim and claim[0] == g and claim[1] >= hb and tuple(claim) != tuple(local[me]):
        hb = claim[1] + 1
    merged[me] = (g, hb, status, tokens)
    return dict(sorted(merged.items()))
'''

REWRITTEN_ROUND = '''import math


def gossip_round(me, view, suspected, seeds, rand):
    """Written another way: candidates by a filter, floor for the pick."""
    g, hb, status, tokens = view[me]
    new_view = {**view, me: (g, hb + 1, status, tokens)}
    peers = sorted(filter(lambda n: n != me and view[n][2] != "left", view))
    up = [p for p in peers if p not in suspected]
    down = [p for p in peers if p in suspected]
    out = []
    if up:
        out.append(up[math.floor(rand[0] * len(up))])
    if not peers and seeds:
        out.append(seeds[0])
    if down:
        out.append(down[math.floor(rand[1] * len(down))])
    out.extend(s for s in seeds if s not in view and s not in out)
    return new_view, out
'''


def written_differently() -> dict:
    nb = fx.answered(LAB5)
    fx.set_source(nb, "merge_views", REWRITTEN_MERGE)
    return fx.set_source(nb, "gossip_round", REWRITTEN_ROUND)


WRONG = {"last-heard-merge": (LAB5, last_heard_merge),
         "others-set-my-entry": (LAB5, others_set_my_entry),
         "no-heartbeat": (LAB5, no_heartbeat),
         "at-least-timeout": (LAB5, at_least_timeout),
         "written-differently": (LAB5, written_differently)}

#: student -> (tests that must score 0, tests that must keep their points)
BROKEN = {
    "last-heard-merge": (
        ["merge_keeps_the_higher_generation_and_heartbeat",
         "cluster_with_your_gossip_matches_the_reference"],
        ["my_own_entry_is_raised_only_by_me", "a_round_gossips_with_one_peer_picked_uniformly",
         "a_timeout_detector_suspects_after_suspect_after_s"]),
    "others-set-my-entry": (
        ["my_own_entry_is_raised_only_by_me"],
        ["merge_keeps_the_higher_generation_and_heartbeat",
         "a_round_raises_my_heartbeat_and_nothing_else"]),
    "no-heartbeat": (
        ["a_round_raises_my_heartbeat_and_nothing_else",
         "cluster_with_your_gossip_matches_the_reference"],
        ["a_round_gossips_with_one_peer_picked_uniformly",
         "merge_keeps_the_higher_generation_and_heartbeat"]),
    "at-least-timeout": (
        ["a_timeout_detector_suspects_after_suspect_after_s"],
        ["phi_grows_with_silence_in_units_of_the_mean_interval",
         "merge_keeps_the_higher_generation_and_heartbeat"]),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, request):
    return fx.shared_once(tmp_path_factory, request, "lab5-grading",
                          lambda work: fx.grade_lab(work, LAB5, WRONG))


def _row(graded, student):
    found = [r for r in graded["rows"] if r["student"] == student and r["lab"] == LAB5]
    assert found, f"{student} was not graded; problems: {graded['problems']}"
    return found[0]


def test_the_solution_and_a_rewrite_get_full_marks_and_the_release_zero(graded):
    assert graded["problems"] == []
    assert _row(graded, "solution")["score"] == graded["max"] == fx.POINTS[LAB5] == 18
    assert _row(graded, "written-differently")["score"] == graded["max"]
    assert _row(graded, "release")["score"] == 0
    assert _row(graded, "solution")["flags"] == [] and _row(graded, "release")["flags"] == []


@pytest.mark.parametrize("student", sorted(BROKEN))
def test_each_classic_mistake_loses_the_points_of_the_promise_it_breaks(graded, student):
    zero, kept = BROKEN[student]
    tests = graded["scores"][student][LAB5]["tests"]
    assert {t: tests[t] for t in zero} == {t: 0.0 for t in zero}
    assert all(tests[t] > 0 for t in kept), tests
    assert _row(graded, student)["score"] < graded["max"]


def test_feedback_names_the_promise_the_input_expected_got_and_the_seed(graded):
    import html
    import re
    page = graded["pages"][f"last-heard-merge/{LAB5}/{fx.NOTEBOOK[LAB5]}.html"]
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "merge-keeps-the-higher-generation-and-heartbeat" in text
    assert "smallest failing input: merge_views(me=" in text
    assert "expected:" in text and "got:" in text
    assert "seed 5101: replay with grading.check_merge_views" in text
    assert "BEGIN HIDDEN TESTS" not in page
