"""Lab 5's checks: merging two membership views, one gossip round, the two failure detectors,
and all of them inside a cluster.

The student's parts are plain data in and out (so that they cross the grading sandbox). A
member's state is a tuple ``(generation, heartbeat, status, tokens)`` (``tokens`` a tuple of
ring positions as strings) and a view a dict ``{member: state}``:

* ``merge_views(me, local, remote)`` -> the merged view;
* ``gossip_round(me, view, suspected, seeds, rand)`` -> ``(view, targets)``;
* ``TimeoutDetector(suspect_after_s)`` and ``PhiAccrualDetector(threshold, window,
  first_interval_s)``, each with ``heard(node, now)`` and ``suspected(node, now)`` (and
  ``phi(node, now)`` for the accrual detector).

The adapters (``student_*``, all :func:`~dynamo_lab.shipping.recipe`) plug them into the
reference node through :class:`~dynamo_lab.Parts`; :func:`student_gossip_parts` plugs them all.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any, Callable, Mapping, Optional

from ...errors import ConfigError
from ...grading.failures import DEFAULT_BUDGET_S, STATE, Expected, Mismatch
from ...grading.harness import (describe_exc, hypothesis_run, run_check, same_trace,
                                scope_of, start_check)
from ...shipping import recipe

__all__ = [
    "student_form", "student_merge_views", "student_gossip_round", "student_failure_detector",
    "student_gossip_parts", "check_merge_views", "check_own_entry", "check_heartbeat_raised",
    "check_gossip_targets", "check_timeout_detector", "check_phi_detector",
    "check_gossip_cluster",
]

#: The student's parts, as the cluster check takes them (in this order).
PARTS = ("merge_views", "gossip_round", "TimeoutDetector")

#: What :func:`~dynamo_lab.grading.self_check` runs for each test cell (kept equal to the
#: cells file by ``tests/test_self_check.py``).
SELF_CHECK = {
    "merge_keeps_the_higher_generation_and_heartbeat":
        ("check_merge_views", ("merge_views",), {"seed": 5101, "examples": 150}),
    "my_own_entry_is_raised_only_by_me":
        ("check_own_entry", ("merge_views",), {"seed": 5102, "examples": 150}),
    "a_round_raises_my_heartbeat_and_nothing_else":
        ("check_heartbeat_raised", ("gossip_round",), {"seed": 5103, "examples": 100}),
    "a_round_gossips_with_one_peer_picked_uniformly":
        ("check_gossip_targets", ("gossip_round",), {"seed": 5104, "examples": 150}),
    "a_timeout_detector_suspects_after_suspect_after_s":
        ("check_timeout_detector", ("TimeoutDetector",), {"seed": 5105, "examples": 120}),
    "phi_grows_with_silence_in_units_of_the_mean_interval":
        ("check_phi_detector", ("PhiAccrualDetector",), {"seed": 5106, "examples": 120}),
    "cluster_with_your_gossip_matches_the_reference":
        ("check_gossip_cluster", PARTS, {"seed": 51}),
}

_NODES = ("A", "B", "C", "D", "E", "F")
_STATUSES = ("up", "leaving", "left")


# -- states as the student sees them ------------------------------------------------------------

def student_form(view: Mapping) -> dict:
    """A reference view ``{member: MemberState}`` in the lab's form: ``{member: (generation,
    heartbeat, status, tokens)}``."""
    return {n: (st.generation, st.heartbeat, st.status, tuple(st.tokens)) for n, st in view.items()}


def _clean_state(x: Any) -> Optional[tuple]:
    if not isinstance(x, (tuple, list)) or len(x) != 4:
        return None
    g, hb, status, tokens = x
    if isinstance(g, bool) or isinstance(hb, bool) or not isinstance(g, int) \
            or not isinstance(hb, int) or status not in _STATUSES \
            or not isinstance(tokens, (tuple, list)) or not all(isinstance(t, str) for t in tokens):
        return None
    return (g, hb, status, tuple(tokens))


def _clean_view(got: Any, what: str, *given: Mapping) -> dict:
    """The student's view, checked (a state that is one of the ``given`` views' own tuples,
    unchanged, needs no checking)."""
    if not isinstance(got, Mapping):
        raise ConfigError(f"your {what} returned {_short(got)}: return a dict {{member: "
                          f"(generation, heartbeat, status, tokens)}}")
    out = {}
    for n, st in got.items():
        if any(g.get(n) is st for g in given):
            out[n] = st
            continue
        clean = _clean_state(st)
        if not isinstance(n, str) or clean is None:
            raise ConfigError(f"your {what} returned {_short(got)}: return a dict {{member: "
                              f"(generation, heartbeat, status, tokens)}}; {n!r} has "
                              f"{_short(st)}")
        out[n] = clean
    return out


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 200 else text[:197] + "..."


def _back(node: str, state: tuple, *candidates) -> Any:
    """The reference's MemberState for the student's ``state`` of ``node``: the candidate it
    names (the one the reference merge keeps when two do), else a new one built on the first
    candidate (a node raising its own state)."""
    from ...membership import merge_state
    from ...messages import MemberState
    same = [c for c in candidates if c is not None and
            (c.generation, c.heartbeat, c.status, tuple(c.tokens)) == state]
    if same:
        best = same[0]
        for c in same[1:]:
            best = merge_state(best, c)
        return best
    base = next((c for c in candidates if c is not None), None)
    g, hb, status, tokens = state
    if base is None:
        return MemberState(node, g, hb, status, tokens, "")
    return replace(base, generation=g, heartbeat=hb, status=status, tokens=tokens)


# -- adapters -------------------------------------------------------------------------------------

@recipe        # so that TcpCluster(parts=...) can make it again in each node process
def student_merge_views(merge_views: Callable, *, _trusted: bool = False) -> Callable:
    """A ``Parts.merge_views`` that asks the student's ``merge_views(me, local, remote)``
    (views in the lab's form) and gives the node the states it names. Raises
    :class:`ConfigError` inside the cluster when it returns something that is not a view."""
    scope = scope_of(_trusted)

    def merge(me, local, remote):
        mine, theirs = student_form(local), student_form(remote)
        with scope():
            got = merge_views(me, dict(mine), dict(theirs))    # copies: theirs to change
        clean = _clean_view(got, "merge_views", mine, theirs)
        if me not in clean:
            raise ConfigError(f"your merge_views dropped {me}'s own entry (the node merging)")
        out = {}
        for n, st in sorted(clean.items()):
            a, b = mine.get(n), theirs.get(n)
            if a == st and (b != st or local[n].address >= remote[n].address):
                out[n] = local[n]         # (what the reference keeps on a full tie)
            elif b == st and a != st:
                out[n] = remote[n]
            else:
                out[n] = _back(n, st, local.get(n), remote.get(n))
        return out

    merge.__name__ = f"student_merge_views({getattr(merge_views, '__name__', '?')})"
    return merge


@recipe
def student_gossip_round(gossip_round: Callable, *, _trusted: bool = False) -> Callable:
    """A ``Parts.gossip_round`` that asks the student's ``gossip_round(me, view, suspected,
    seeds, rand)``; the node takes its own state from the view returned and sends to the
    targets, in order. Raises :class:`ConfigError` inside the cluster for anything else."""
    scope = scope_of(_trusted)

    def round_(me, view, suspected, seeds, rand):
        with scope():
            got = gossip_round(me, student_form(view), set(suspected), list(seeds), tuple(rand))
        # (the view is converted again below: the student may have changed the one given)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise ConfigError(f"your gossip_round returned {_short(got)}: return (view, targets)")
        given = student_form(view)
        new_view = _clean_view(got[0], "gossip_round (its view)", given)
        targets = got[1]
        if isinstance(targets, (str, bytes)) or not isinstance(targets, (list, tuple)) \
                or not all(isinstance(t, str) for t in targets):
            raise ConfigError(f"your gossip_round returned targets {_short(targets)}: return a "
                              f"list of node names")
        if me not in new_view:
            raise ConfigError(f"your gossip_round dropped {me}'s own entry")
        out = dict(view)
        out[me] = _back(me, new_view[me], view[me])
        return out, list(targets)

    round_.__name__ = f"student_gossip_round({getattr(gossip_round, '__name__', '?')})"
    return round_


class _StudentDetector:
    """A failure detector that asks the student's detector (built in the student's scope)."""

    def __init__(self, cls, args, scope):
        self._scope = scope
        with scope():
            self.mine = cls(*args)

    def heard(self, node, now):
        with self._scope():
            self.mine.heard(node, now)

    def suspected(self, node, now):
        with self._scope():
            got = self.mine.suspected(node, now)
        if not isinstance(got, (bool, int)):
            raise ConfigError(f"your detector's suspected({node!r}, {now}) returned "
                              f"{_short(got)}: return True or False")
        return bool(got)


@recipe
def student_failure_detector(detector_class: Any, *args: Any, _trusted: bool = False) -> Callable:
    """A ``Parts.failure_detector``: each node builds the student's detector as
    ``detector_class(suspect_after_s)`` (or ``detector_class(*args)`` when ``args`` are given,
    e.g. ``PhiAccrualDetector, 8.0, 100, 1.0``) and asks it whom to suspect."""
    scope = scope_of(_trusted)

    def make(suspect_after_s):
        return _StudentDetector(detector_class, args or (suspect_after_s,), scope)

    make.__name__ = f"student_failure_detector({getattr(detector_class, '__name__', '?')})"
    return make


def student_gossip_parts(merge_views: Optional[Callable] = None,
                         gossip_round: Optional[Callable] = None,
                         TimeoutDetector: Any = None, *, _trusted: bool = False, **others):
    """A :class:`~dynamo_lab.Parts` with each of the student's parts given plugged in (the
    others stay the reference's); ``others`` sets further fields::

        parts = grading.student_gossip_parts(merge_views, gossip_round, TimeoutDetector)
        cluster = dl.SimCluster(nodes=6, seed=1, parts=parts)
    """
    from ...node import Parts
    fields = dict(others)
    if merge_views is not None:
        fields["merge_views"] = student_merge_views(merge_views, _trusted=_trusted)
    if gossip_round is not None:
        fields["gossip_round"] = student_gossip_round(gossip_round, _trusted=_trusted)
    if TimeoutDetector is not None:
        fields["failure_detector"] = student_failure_detector(TimeoutDetector, _trusted=_trusted)
    return Parts(**fields)


# -- the reference in the student's form (trusted: for expected values and tests) ---------------

def _states(view: Mapping[str, tuple]) -> dict:
    from ...messages import MemberState
    return {n: MemberState(n, g, hb, status, tuple(tokens), "")
            for n, (g, hb, status, tokens) in view.items()}


def reference_merge_views(me: str, local: Mapping, remote: Mapping) -> dict:
    from ...membership import merge_views
    return student_form(merge_views(me, _states(local), _states(remote)))


def reference_gossip_round(me, view, suspected, seeds, rand):
    from ...membership import gossip_round
    out, targets = gossip_round(me, _states(view), set(suspected), list(seeds), tuple(rand))
    return student_form(out), targets


def _reference_parts_in_student_form():
    from ...failure_detector import PhiAccrualDetector, TimeoutDetector
    return reference_merge_views, reference_gossip_round, TimeoutDetector, PhiAccrualDetector


# -- A: merging two views -----------------------------------------------------------------------

def _state_strategy(st):
    tokens = st.sampled_from([("10",), ("20",), ("10", "30"), ("40", "50")])
    return st.tuples(st.integers(0, 3), st.integers(0, 5), st.sampled_from(_STATUSES), tokens)


def _views_strategy(claims_about_me: bool):
    from hypothesis import strategies as st

    @st.composite
    def case(draw):
        me = draw(st.sampled_from(_NODES))
        others = [n for n in _NODES if n != me]
        local = draw(st.dictionaries(st.sampled_from(others), _state_strategy(st), max_size=5))
        local[me] = draw(_state_strategy(st).filter(lambda s: s[2] == "up"))
        remote = draw(st.dictionaries(st.sampled_from(others), _state_strategy(st), max_size=5))
        # Remote states close to the local ones (ties, one step above or below) are where
        # the rule is decided, so half of them are.
        for n in list(remote):
            if n in local and draw(st.booleans()):
                g, hb, status, tokens = local[n]
                dg, dh = draw(st.sampled_from([(0, 0), (0, 1), (0, -1), (1, -hb), (-1, 2)]))
                remote[n] = (max(0, g + dg), max(0, hb + dh), draw(st.sampled_from(_STATUSES)),
                             draw(st.sampled_from([tokens, ("60",)])))
        if claims_about_me or draw(st.booleans()):
            g, hb, status, tokens = local[me]
            remote[me] = draw(st.one_of(
                st.just(local[me]),
                st.tuples(st.sampled_from([g, g, g + 1, g + 2, max(0, g - 1)]),
                          st.sampled_from([hb, hb + 1, hb + 3, max(0, hb - 1)]),
                          st.sampled_from(_STATUSES), st.sampled_from([tokens, ("70",)]))))
        return me, local, remote

    return case()


def _show_view(v: Mapping) -> str:
    return "{" + ", ".join(f"{n!r}: {s!r}" for n, s in sorted(v.items())) + "}"


def _merge_text(me, local, remote) -> str:
    return f"merge_views(me={me!r}, local={_show_view(local)}, remote={_show_view(remote)})"


def check_merge_views(merge_views: Callable, *, seed: int = 5101, examples: int = 200,
                      budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``merge-keeps-the-higher-generation-and-heartbeat``: on generated views, every
    member other than ``me`` ends as the reference's merge has it."""
    __tracebackhide__ = True
    ctx = start_check("merge-keeps-the-higher-generation-and-heartbeat", "check_merge_views",
                      "merge_views", seed, merge_views)

    def body(case):
        me, local, remote = case
        text = _merge_text(me, local, remote)
        want = reference_merge_views(me, local, remote)
        args = (me, {n: s for n, s in local.items()}, {n: s for n, s in remote.items()})
        got = ctx.result(text, want, merge_views, *args)
        if args[1] != local or args[2] != remote:
            raise Mismatch(text, Expected("local and remote unchanged"),
                           Expected(f"local={_show_view(args[1])}, remote={_show_view(args[2])}"),
                           "return a new view; the node still holds the one it passed you")
        if not isinstance(got, Mapping):
            raise Mismatch(text, want, got, "return a dict {member: state}")
        others = sorted(set(want) | set(got), key=str)
        for n in others:
            if n == me:
                continue
            w, g = want.get(n), got.get(n)
            if (tuple(g) if isinstance(g, list) else g) != w:
                if w is None:
                    note = f"{n} is in neither view"
                elif g is None:
                    note = f"{n} is known to one side: keep it"
                else:
                    a, b = local.get(n), remote.get(n)
                    note = (f"local has {a!r}, remote {b!r}: the higher (generation, heartbeat) "
                            f"wins, a tie goes to the further status (up < leaving < left), and "
                            f"the winner's tokens come with it")
                raise Mismatch(f"{text}, member {n!r}", w, g, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(
        ctx, _views_strategy(False), examples, body))


def check_own_entry(merge_views: Callable, *, seed: int = 5102, examples: int = 200,
                    budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``my-own-entry-is-raised-only-by-me``: ``me``'s entry after the merge is the
    reference's, on generated views whose remote side makes claims about ``me``."""
    __tracebackhide__ = True
    ctx = start_check("my-own-entry-is-raised-only-by-me", "check_own_entry", "merge_views",
                      seed, merge_views)

    def body(case):
        me, local, remote = case
        text = _merge_text(me, local, remote)
        want = reference_merge_views(me, local, remote)
        got = ctx.result(text, want[me], merge_views, me, dict(local), dict(remote))
        g = got.get(me) if isinstance(got, Mapping) else got
        if (tuple(g) if isinstance(g, list) else g) != want[me]:
            mine, claim = local[me], remote.get(me)
            if claim is None or claim == mine:
                note = "nothing outranks my state: keep it"
            elif claim[0] > mine[0]:
                note = (f"the claim's generation {claim[0]} is above mine ({mine[0]}): take "
                        f"generation {claim[0] + 1} with heartbeat 0 (my status and tokens stay)")
            elif claim[0] == mine[0] and claim[1] >= mine[1]:
                note = (f"the claim of my generation has heartbeat {claim[1]}, at or above mine "
                        f"({mine[1]}): take heartbeat {claim[1] + 1}, nothing else changes")
            else:
                note = "the claim is below my state: mine stands"
            raise Mismatch(f"{text}, member {me!r} (me)", want[me], g, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _views_strategy(True), examples, body))


# -- B: one gossip round --------------------------------------------------------------------------

def _round_strategy():
    from hypothesis import strategies as st

    @st.composite
    def case(draw):
        me = draw(st.sampled_from(_NODES))
        others = [n for n in _NODES if n != me]
        view = draw(st.dictionaries(st.sampled_from(others), _state_strategy(st), max_size=5))
        view[me] = draw(_state_strategy(st).filter(lambda s: s[2] == "up"))
        peers = [n for n in view if n != me]
        suspected = draw(st.sets(st.sampled_from(peers))) if peers else set()
        seeds = draw(st.lists(st.sampled_from(others), max_size=3, unique=True))
        rand = (draw(st.floats(0, 1, exclude_max=True)), draw(st.floats(0, 1, exclude_max=True)))
        return me, view, suspected, seeds, rand

    return case()


def _round_text(me, view, suspected, seeds, rand) -> str:
    shown = "{" + ", ".join(repr(x) for x in sorted(suspected)) + "}" if suspected else "set()"
    return (f"gossip_round(me={me!r}, view={_show_view(view)}, suspected={shown}, "
            f"seeds={seeds!r}, rand={rand!r})")


def _round_call(ctx, gossip_round, case):
    me, view, suspected, seeds, rand = case
    text = _round_text(*case)
    want = reference_gossip_round(*case)
    args = (me, dict(view), set(suspected), list(seeds), tuple(rand))
    got = ctx.result(text, want, gossip_round, *args)
    if args[1] != view or args[2] != suspected or args[3] != seeds:
        raise Mismatch(text, Expected("view, suspected and seeds unchanged"),
                       Expected(f"view={_show_view(args[1])}, suspected={args[2]!r}, "
                                f"seeds={args[3]!r}"),
                       "return a new view; the node still holds the one it passed you")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Mismatch(text, want, got, "return a pair (view, targets)")
    return text, want, got


def check_heartbeat_raised(gossip_round: Callable, *, seed: int = 5103, examples: int = 150,
                           budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-round-raises-my-heartbeat-and-nothing-else``: the view a round returns is
    the view given with ``me``'s heartbeat one higher."""
    __tracebackhide__ = True
    ctx = start_check("a-round-raises-my-heartbeat-and-nothing-else", "check_heartbeat_raised",
                      "gossip_round", seed, gossip_round)

    def body(case):
        text, want, got = _round_call(ctx, gossip_round, case)
        view = got[0]
        if not isinstance(view, Mapping):
            raise Mismatch(text, want[0], view, "the first item is the view after the round")
        for n in sorted(set(want[0]) | set(view), key=str):
            w, g = want[0].get(n), view.get(n)
            if (tuple(g) if isinstance(g, list) else g) != w:
                note = ("raise my own heartbeat by one, and nothing else of my state"
                        if n == case[0] else "a round changes only my own entry")
                raise Mismatch(f"{text}, the view's entry for {n!r}", w, g, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _round_strategy(), examples, body))


def check_gossip_targets(gossip_round: Callable, *, seed: int = 5104, examples: int = 200,
                         budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-round-gossips-with-one-peer-picked-uniformly``: the targets of a round
    are the reference's, in its order."""
    __tracebackhide__ = True
    ctx = start_check("a-round-gossips-with-one-peer-picked-uniformly", "check_gossip_targets",
                      "gossip_round", seed, gossip_round)

    def body(case):
        text, want, got = _round_call(ctx, gossip_round, case)
        targets = list(got[1]) if isinstance(got[1], (list, tuple)) else got[1]
        if targets != want[1]:
            me, view, suspected, seeds, rand = case
            peers = sorted(n for n in view if n != me and view[n][2] != "left")
            live = [p for p in peers if p not in suspected]
            sus = [p for p in peers if p in suspected]
            note = (f"the peers (not left, sorted) are {peers}: believed up {live}, "
                    f"suspected {sus}; candidates[int(r * len(candidates))] picks one, "
                    f"rand[0] among those up, rand[1] among the suspected; with no peers at all, "
                    f"the first seed; then each seed the view does not hold, in order")
            raise Mismatch(text, want[1], targets, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _round_strategy(), examples, body))


# -- C: failure detectors -------------------------------------------------------------------------

def _events_strategy(phi: bool):
    """A detector's life: (heard or ask, node, time step) with times that never go back."""
    from hypothesis import strategies as st
    step = st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0])
    # "edge": ask at the very moment a time-out would pass (the last heard + suspect_after_s),
    # when that is not in the past: where "more than" and "at least" part.
    kinds = ["heard", "heard", "ask"] if phi else ["heard", "heard", "ask", "edge"]
    event = st.tuples(st.sampled_from(kinds), st.sampled_from(("B", "B", "B", "C", "D")), step)
    params = (st.tuples(st.sampled_from([1.0, 2.0, 3.0, 8.0]), st.integers(1, 3),
                        st.sampled_from([0.5, 1.0, 2.0])) if phi
              else st.tuples(st.sampled_from([0.5, 1.0, 2.0, 4.0])))
    return st.tuples(params, st.lists(event, min_size=1 if not phi else 6, max_size=30))


def _detector_run(ctx, cls, ref_cls, params, events, phi: bool, cls_name: str):
    ctx_args = ", ".join(repr(p) for p in params)
    made = f"{cls_name}({ctx_args})"
    ref = ref_cls(*params)
    mine, err = ctx.call(cls, *params)
    if err is not None:
        raise Mismatch(made, Expected("a detector"), describe_exc(err))
    now, done, last = 0.0, [], {}
    for kind, node, dt in events:
        now = round(now + dt, 6)
        if kind == "edge":
            edge = round(last.get(node, now) + params[0], 6)
            now = max(now, edge)
        if kind == "heard":
            last[node] = now
            ref.heard(node, now)
            done.append(f"heard({node!r}, {now})")
            STATE.working_on = f"{made}; " + "; ".join(done)
            _, err = ctx.call(mine.heard, node, now)
            if err is not None:
                raise Mismatch(STATE.working_on, Expected("returns"), describe_exc(err))
            continue
        text = f"{made}; " + "; ".join(done)
        if phi:
            want = ref.phi(node, now)
            got = ctx.result(f"{text}; phi({node!r}, {now})", Expected(f"{want:.6g}"),
                             mine.phi, node, now)
            ok = isinstance(got, (int, float)) and not isinstance(got, bool) and (
                got == want or (math.isfinite(want) and math.isclose(got, want, rel_tol=1e-6,
                                                                     abs_tol=1e-9)))
            if not ok:
                note = ("never heard: phi is infinite" if math.isinf(want) else
                        "phi = (now - last heard) / (mean of the last `window` intervals, "
                        "or first_interval_s before any, times ln 10); intervals of 0 are "
                        "not kept")
                raise Mismatch(f"{text}; phi({node!r}, {now})", Expected(f"{want:.6g}"), got, note)
        want_s = ref.suspected(node, now)
        got_s = ctx.result(f"{text}; suspected({node!r}, {now})", want_s, mine.suspected, node, now)
        if got_s is not want_s and not (isinstance(got_s, (bool, int)) and bool(got_s) == want_s
                                        and not isinstance(got_s, float)):
            note = ("phi above the threshold: suspected" if phi else
                    f"suspected when more than {params[0]} s passed since last heard, or never heard")
            raise Mismatch(f"{text}; suspected({node!r}, {now})", want_s, got_s, note)
        done.append(f"suspected({node!r}, {now}) == {want_s}")


def check_timeout_detector(TimeoutDetector: Any, *, seed: int = 5105, examples: int = 150,
                           budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-timeout-detector-suspects-after-suspect-after-s``: on generated lives
    (heard, asked, time passing), the detector answers as the reference's."""
    __tracebackhide__ = True
    from ...failure_detector import TimeoutDetector as Ref
    ctx = start_check("a-timeout-detector-suspects-after-suspect-after-s",
                      "check_timeout_detector", "TimeoutDetector", seed, TimeoutDetector)
    run_check(ctx, budget_s, lambda: hypothesis_run(
        ctx, _events_strategy(False), examples,
        lambda case: _detector_run(ctx, TimeoutDetector, Ref, case[0], case[1], False,
                                   "TimeoutDetector")))


def check_phi_detector(PhiAccrualDetector: Any, *, seed: int = 5106, examples: int = 150,
                       budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``phi-grows-with-silence-in-units-of-the-mean-interval``: on generated lives,
    phi and the suspicion are the reference's (phi within a relative 1e-6)."""
    __tracebackhide__ = True
    from ...failure_detector import PhiAccrualDetector as Ref
    ctx = start_check("phi-grows-with-silence-in-units-of-the-mean-interval",
                      "check_phi_detector", "PhiAccrualDetector", seed, PhiAccrualDetector)
    run_check(ctx, budget_s, lambda: hypothesis_run(
        ctx, _events_strategy(True), examples,
        lambda case: _detector_run(ctx, PhiAccrualDetector, Ref, case[0], case[1], True,
                                   "PhiAccrualDetector")))


# -- D: inside a cluster --------------------------------------------------------------------------

def _views(cluster) -> dict:
    out = {}
    for n in cluster.up():
        m = cluster.node(n).membership
        out[n] = [f"{k}:{st.generation}/{st.heartbeat}/{st.status}" for k, st in m.view.items()]
    return out


def _ring_of(cluster) -> dict:
    return {n: sorted(cluster.node(n).ring.nodes) if cluster.node(n).ring else []
            for n in cluster.up()}


def gossip_cluster_log(parts, seed: int, steps: int = 24) -> tuple[list[tuple], list[str],
                                                                   list[tuple[int, str]]]:
    """A seeded run on 6 nodes with joins, leaves, crashes, restarts (a new generation) and
    partitions, and puts and gets between them: each step's rings and answers, the whole
    trace, and marks (how many trace lines there were when each step ended, and the step)."""
    from ...cluster import SimCluster
    from ...errors import QuorumError
    cluster = SimCluster(nodes=6, seed=seed, parts=parts, anti_entropy=False)
    rng = random.Random(f"lab5-cluster/{seed}")
    client = cluster.client("alice")
    log: list[tuple] = []
    marks: list[tuple[int, str]] = []
    joined = 0
    cluster.run_for(4)
    for i in range(steps):
        kind = rng.choice(["put", "get", "crash", "restart", "partition", "heal", "join",
                           "leave", "tick"])
        kind = {3: "join", 9: "leave", 15: "join"}.get(i, kind)     # every seed has them
        step = f"step {i}: {kind}"
        STATE.working_on = step
        down = [n for n in cluster.nodes if not cluster.hosts[n].alive]
        if kind in ("put", "get"):
            key, via = f"k{rng.randrange(6)}", rng.choice(cluster.up())
            op = (client.submit_put(key, [i], None, via=via) if kind == "put"
                  else client.submit_get(key, via=via))
            cluster.wait(op)
            try:
                r = op.result()
                got = sorted(map(str, getattr(r, "values", []))) + [r.coordinator]
            except QuorumError as exc:
                got = f"QuorumError: {exc}"
            log.append((f"{step} {key} through {via}", got))
        elif kind == "crash" and len(down) < 2:
            victim = rng.choice(cluster.up())
            cluster.crash(victim)
            log.append((f"{step} {victim}", None))
        elif kind == "restart" and down:
            victim = rng.choice(down)
            cluster.restart(victim)
            log.append((f"{step} {victim}", None))
        elif kind == "partition":
            nodes = list(cluster.up())
            rng.shuffle(nodes)
            cluster.heal()
            cluster.partition(set(nodes[:2]), set(nodes[2:]))
            log.append((f"{step} {sorted(nodes[:2])}", None))
        elif kind == "heal":
            cluster.heal()
        elif kind == "join" and joined < 2:
            joined += 1
            name = f"J{joined}"
            cluster.add_node(name)
            log.append((f"{step} {name}", None))
        elif kind == "leave" and len(cluster.nodes) > 5:
            cluster.heal()
            for n in down:
                cluster.restart(n)        # a leave hands its keys over: everyone up
            cluster.run_for(2)
            victim = rng.choice(cluster.nodes[3:])      # not a seed
            try:
                cluster.remove_node(victim, timeout_s=60)
                log.append((f"{step} {victim}", "left"))
            except QuorumError as exc:
                log.append((f"{step} {victim}", f"QuorumError: {exc}"))
        cluster.run_for(rng.uniform(0.5, 4.0))
        log.append((f"{step}: the rings", _ring_of(cluster)))
        marks.append((len(cluster.sim.trace.events), log[-1][0]))
    cluster.heal()
    for n in list(cluster.nodes):
        cluster.restart(n)
    cluster.run_for(20)
    STATE.working_on = "healed and settled"
    log.append(("healed and settled: the rings", _ring_of(cluster)))
    log.append(("healed and settled: the views", _views(cluster)))
    lines = cluster.sim.trace.lines()
    marks.append((len(lines), "healing and settling"))
    return log, lines, marks


def check_gossip_cluster(merge_views: Callable, gossip_round: Callable, TimeoutDetector: Any,
                         *, seed: int = 51, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``cluster-with-your-gossip-matches-the-reference``: the same seeded run on a
    cluster using the student's three parts and on the reference gives the same rings,
    answers and trace."""
    __tracebackhide__ = True
    parts = (merge_views, gossip_round, TimeoutDetector)
    invariant = "cluster-with-your-gossip-matches-the-reference"
    ctx = start_check(invariant, "check_gossip_cluster", "gossip parts", seed, *parts,
                      replay=f"grading.check_gossip_cluster(<your merge_views, gossip_round, "
                             f"TimeoutDetector>, seed={seed})")
    from ...node import Parts
    same_trace(ctx, budget_s, lambda p: gossip_cluster_log(p, seed), Parts(),
               student_gossip_parts(*parts), f"6 nodes, joins, leaves, crashes, restarts and "
                                             f"partitions; seed={seed}",
               differs="gossip to another node, another view, a suspicion at another moment")
