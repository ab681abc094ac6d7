"""Lab 3's checks: choosing replicas (sloppy quorum), the quorum of one request, read repair,
hinted handoff's two decisions, and all of them inside a cluster.

The student's parts are plain data in and out (so that they cross the grading sandbox):

* ``choose_replicas(preference, walk, down, me, sloppy)`` -> ``{target: node it stands in
  for, or None}``;
* ``Quorum(needed, primaries, targets, write)`` with ``on_reply(node)`` and
  ``on_timeout(spare, me)``, each returning a decision made by the lab's helpers
  (``Wait()``, ``Answer(done)``, ``Retry(stand_ins)``, ``Fail(may_have_applied)``,
  ``Finish()``: plain tuples, see :data:`~dynamo_lab.labs.lab3_quorums.DECISIONS`);
* ``read_repairs(replies, primaries, targets, siblings)`` -> the replicas to repair, where
  versions are *labels*, strings naming one version each (:func:`version_label`);
* ``handoff_tick(hints, down)`` and ``handoff_ack(intended, key, held, acked)`` -> actions
  (:mod:`dynamo_lab.node.hints`).

The adapters (``student_*``, all :func:`~dynamo_lab.shipping.recipe`) plug them into the
reference node through :class:`~dynamo_lab.Parts`; :func:`student_parts` plugs them all.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from ...errors import ConfigError, QuorumError
from ...grading.failures import DEFAULT_BUDGET_S, STATE, Expected, Mismatch
from ...grading.labels import Labels, sample_versions, version_label
from ...grading.harness import (Context, describe_exc, hypothesis_run, run_check, same_trace,
                                scope_of, start_check)
from ...shipping import recipe

__all__ = [
    "version_label", "student_choose_replicas", "student_put_quorum", "student_get_quorum",
    "student_read_repair", "student_handoff_tick", "student_handoff_ack", "student_parts",
    "check_choose_replicas", "check_stand_in_hints", "check_quorum_answers",
    "check_quorum_timeouts", "check_failed_write", "check_read_repair", "check_handoff_sends",
    "check_handoff_forgets", "check_quorum_cluster", "check_sloppy_quorum_story",
]

#: The student's parts, as the checks of the cluster take them (in this order).
PARTS = ("choose_replicas", "Quorum", "read_repairs", "handoff_tick", "handoff_ack")

#: What :func:`~dynamo_lab.grading.self_check` runs for each test cell: the check its hidden
#: part calls, the notebook names it is given and its arguments (the public seeds). Kept equal
#: to the cells file by ``tests/test_self_check.py``.
SELF_CHECK = {
    "replicas_are_the_first_n_healthy_nodes":
        ("check_choose_replicas", ("choose_replicas",), {"seed": 3101, "examples": 150}),
    "each_stand_in_is_hinted_with_the_node_it_replaces":
        ("check_stand_in_hints", ("choose_replicas",), {"seed": 3102, "examples": 150}),
    "a_quorum_answers_at_the_needed_th_reply_its_own_included":
        ("check_quorum_answers", ("Quorum",), {"seed": 3103, "examples": 120}),
    "a_timeout_tries_stand_ins_once_then_fails":
        ("check_quorum_timeouts", ("Quorum",), {"seed": 3104, "examples": 120}),
    "a_failed_write_says_whether_it_may_have_applied":
        ("check_failed_write", ("Quorum",), {"seed": 3105, "examples": 120}),
    "read_repair_sends_the_siblings_to_stale_primaries_only":
        ("check_read_repair", ("read_repairs",), {"seed": 3106, "examples": 150}),
    "handoff_sends_each_hint_to_its_node_once_it_is_up":
        ("check_handoff_sends", ("handoff_tick",), {"seed": 3107, "examples": 120}),
    "a_hint_is_forgotten_only_after_its_node_acknowledged_it":
        ("check_handoff_forgets", ("handoff_tick", "handoff_ack"), {"seed": 3108, "examples": 120}),
    "the_seeds_sloppy_quorum_story_with_your_parts":
        ("check_sloppy_quorum_story", PARTS, {"seed": 1}),
    "cluster_with_your_quorum_parts_matches_the_reference":
        ("check_quorum_cluster", PARTS, {"seed": 31}),
}

_NODES = ("A", "B", "C", "D", "E", "F", "G", "H")
_DECISIONS = {"wait": 1, "answer": 2, "retry": 2, "fail": 2, "finish": 1}


# -- decisions ------------------------------------------------------------------------------------

def _as_tuple(decision: Any) -> tuple:
    """A reference decision (:mod:`dynamo_lab.node.quorum`) in the lab's tuple form."""
    from ...node.quorum import Answer, Fail, Retry, Wait
    if isinstance(decision, Wait):
        return ("wait",)
    if isinstance(decision, Answer):
        return ("answer", decision.done)
    if isinstance(decision, Retry):
        return ("retry", dict(decision.stand_ins))
    if isinstance(decision, Fail):
        return ("fail", decision.may_have_applied)
    return ("finish",)


def _parse_decision(x: Any) -> Optional[tuple]:
    """The student's decision as a clean tuple, or None when it is not one."""
    if not isinstance(x, (tuple, list)) or not x or x[0] not in _DECISIONS \
            or len(x) != _DECISIONS[x[0]]:
        return None
    if x[0] == "retry":
        if not isinstance(x[1], Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in x[1].items()):
            return None
        return ("retry", dict(x[1]))
    if x[0] in ("answer", "fail"):
        return (x[0], bool(x[1])) if isinstance(x[1], (bool, int)) else None
    return (x[0],)


def _show_decision(d: Optional[tuple], raw: Any = None) -> Any:
    """A decision as the student writes it: ``Answer(True)``, ``Retry({'E': 'C'})``."""
    if d is None:
        return raw
    name = d[0].capitalize()
    if d[0] == "retry":
        return Expected(f"Retry({dict(sorted(d[1].items()))!r})")
    return Expected(f"{name}({d[1]!r})" if len(d) == 2 else f"{name}()")


def _decision_or_fail(x: Any, what: str) -> tuple:
    d = _parse_decision(x)
    if d is None:
        raise ConfigError(f"your {what} returned {x!r}: return one of Wait(), Answer(done), "
                          f"Retry(stand_ins), Fail(may_have_applied) or Finish()")
    return d


# -- versions as the student sees them --------------------------------------------------------

# -- adapters -------------------------------------------------------------------------------------

def _clean_targets(got: Any, what: str) -> dict:
    if not isinstance(got, Mapping) or not all(
            isinstance(t, str) and (h is None or isinstance(h, str)) for t, h in got.items()):
        raise ConfigError(f"your {what} returned {got!r}: return a dict {{target node: the node "
                          f"it stands in for, or None}}")
    return dict(got)


def _in_reference_order(targets: Mapping[str, Optional[str]], preference: Sequence[str],
                        walk: Sequence[str]) -> dict:
    """The targets in the order the reference sends to them (the preference list, each
    stand-in where the node it replaces stands), so that the order of a dict does not matter."""
    rank = {p: i for i, p in enumerate(preference)}
    along = {p: i for i, p in enumerate(walk)}

    def key(item):
        target, hint = item
        return (rank.get(hint or target, len(rank)), along.get(target, len(along)), target)
    return dict(sorted(targets.items(), key=key))


@recipe        # so that TcpCluster(parts=...) can make it again in each node process
def student_choose_replicas(choose_replicas: Callable, *, _trusted: bool = False) -> Callable:
    """A ``Parts.choose_replicas`` that asks the student's ``choose_replicas(preference,
    walk, down, me, sloppy)`` (lists, a set, a name, a bool) and sends in the reference's order
    (the order of the dict it returns does not matter). Raises :class:`ConfigError` inside the
    cluster when it returns something that is not ``{target: None or a node}``."""
    scope = scope_of(_trusted)

    def choose(preference, walk, down, me, sloppy=True):
        with scope():
            got = choose_replicas(list(preference), list(walk), set(down), me, bool(sloppy))
        return _in_reference_order(_clean_targets(got, "choose_replicas"), preference, walk)

    choose.__name__ = f"student_choose_replicas({getattr(choose_replicas, '__name__', '?')})"
    return choose


def _quorum_class(student_class: Any, write: bool, trusted: bool) -> Callable:
    """What the reference coordinator builds a request's quorum with: a quorum that asks the
    student's ``Quorum`` what to do and keeps, itself, what the coordinator reads (who
    replied, the versions they sent)."""
    from ...node.quorum import Answer, Fail, Finish, GetQuorum, PutQuorum, Retry, Wait
    scope = scope_of(trusted)

    class StudentQuorum(PutQuorum if write else GetQuorum):
        def __init__(self, needed, primaries, targets):
            super().__init__(needed, list(primaries), dict(targets))
            with scope():
                self.mine = student_class(needed, list(primaries), dict(targets), write)

        def on_reply(self, node, versions=()):
            if node in self.targets and node not in self.heard:
                self.heard.add(node)
                if not write:
                    self.replies[node] = list(versions)
            with scope():
                got = self.mine.on_reply(node)
            return self._carry_out(_decision_or_fail(got, "Quorum.on_reply"), ())

        def on_timeout(self, spare, me):
            with scope():
                got = self.mine.on_timeout(list(spare), me)
            return self._carry_out(_decision_or_fail(got, "Quorum.on_timeout"), spare)

        def _carry_out(self, d: tuple, spare: Sequence[str]):
            kind = d[0]
            if kind == "wait":
                return Wait()
            if kind == "finish":
                return Finish()
            if kind == "answer":
                self.answered = True
                return Answer(d[1])
            if kind == "fail":
                self.answered = True
                return Fail(d[1], tuple(self.silent()))
            order = {s: i for i, s in enumerate(spare)}
            extra = dict(sorted(d[1].items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
            self.targets.update(extra)
            return Retry(extra)

    StudentQuorum.__name__ = f"Student{'Put' if write else 'Get'}Quorum"

    # A function, not the class: what a recipe makes must take the recipe's mark, and a class
    # would pass it on to subclasses (dynamo_lab.shipping reads it off functions only).
    def quorum(needed, primaries, targets):
        return StudentQuorum(needed, primaries, targets)

    quorum.__name__ = f"{StudentQuorum.__name__}({getattr(student_class, '__name__', '?')})"
    return quorum


@recipe
def student_put_quorum(quorum_class: Any, *, _trusted: bool = False) -> Callable:
    """A ``Parts.put_quorum``: each put and delete asks ``quorum_class(needed, primaries,
    targets, True)`` (the student's ``Quorum``) on every acknowledgement and time-out.
    Raises :class:`ConfigError` inside the cluster for a decision that is not one of the
    lab's (``Wait()``, ``Answer(done)``, ``Retry(stand_ins)``, ``Fail(may_have_applied)``,
    ``Finish()``)."""
    return _quorum_class(quorum_class, True, _trusted)


@recipe
def student_get_quorum(quorum_class: Any, *, _trusted: bool = False) -> Callable:
    """A ``Parts.get_quorum``: as :func:`student_put_quorum`, for gets (``write=False``)."""
    return _quorum_class(quorum_class, False, _trusted)


@recipe
def student_read_repair(read_repairs: Callable, *, _trusted: bool = False) -> Callable:
    """A ``Parts.read_repair`` that asks the student's ``read_repairs(replies, primaries,
    targets, siblings)`` which replicas to repair; versions are labels
    (:func:`version_label`), ``siblings`` the reconciled siblings of every reply (what the
    client was given). Each replica it names is sent those siblings. Raises
    :class:`ConfigError` inside the cluster when it names a node that did not reply."""
    scope = scope_of(_trusted)

    def repairs(replies, primaries, targets, reconcile):
        merged = reconcile(v for vs in replies.values() for v in vs)
        labels = Labels()
        siblings = labels.of(merged)
        shown = {r: labels.of(vs) for r, vs in sorted(replies.items())}
        with scope():
            got = read_repairs(shown, list(primaries), dict(targets), list(siblings))
        if isinstance(got, (str, bytes)) or not isinstance(got, Iterable):
            raise ConfigError(f"your read_repairs returned {got!r}: return a list of the "
                              f"replicas to repair")
        stale = list(got)
        wrong = [r for r in stale if r not in replies]
        if wrong:
            raise ConfigError(f"your read_repairs named {wrong!r}, which did not reply "
                              f"(the replies came from {sorted(replies)})")
        return merged, sorted(set(stale))

    repairs.__name__ = f"student_read_repair({getattr(read_repairs, '__name__', '?')})"
    return repairs


def _clean_actions(got: Any, what: str) -> list[tuple]:
    if isinstance(got, (str, bytes)) or not isinstance(got, Iterable):
        raise ConfigError(f"your {what} returned {got!r}: return a list of actions, "
                          f"('send', intended, key) or ('forget', intended, key)")
    return [tuple(a) if isinstance(a, (list, tuple)) else a for a in got]


@recipe
def student_handoff_tick(handoff_tick: Callable, *, _trusted: bool = False) -> Callable:
    """A ``Parts.handoff_tick``: the student's ``handoff_tick(hints, down)`` (a list of
    ``(intended, key)`` pairs, a set) decides what a node sends back on each tick."""
    scope = scope_of(_trusted)

    def tick(hints, down):
        with scope():
            got = handoff_tick([tuple(h) for h in hints], set(down))
        return _clean_actions(got, "handoff_tick")

    tick.__name__ = f"student_handoff_tick({getattr(handoff_tick, '__name__', '?')})"
    return tick


@recipe
def student_handoff_ack(handoff_ack: Callable, *, _trusted: bool = False) -> Callable:
    """A ``Parts.handoff_ack``: the student's ``handoff_ack(intended, key, held, acked)``
    (digests as strings; ``held`` None when nothing is held) decides when a hint is
    forgotten."""
    scope = scope_of(_trusted)

    def ack(intended, key, held, acked):
        with scope():
            got = handoff_ack(intended, key, held, acked)
        return _clean_actions(got, "handoff_ack")

    ack.__name__ = f"student_handoff_ack({getattr(handoff_ack, '__name__', '?')})"
    return ack


def student_parts(choose_replicas: Optional[Callable] = None, Quorum: Any = None,
                  read_repairs: Optional[Callable] = None,
                  handoff_tick: Optional[Callable] = None,
                  handoff_ack: Optional[Callable] = None, *, _trusted: bool = False,
                  **others):
    """A :class:`~dynamo_lab.Parts` with each of the student's parts given plugged in (the
    others stay the reference's); ``others`` sets further fields (``versioning=...``)::

        parts = grading.student_parts(choose_replicas, Quorum, read_repairs, handoff_tick,
                                      handoff_ack)
        cluster = dl.SimCluster(nodes=6, seed=1, parts=parts)
    """
    from ...node import Parts
    fields = dict(others)
    if choose_replicas is not None:
        fields["choose_replicas"] = student_choose_replicas(choose_replicas, _trusted=_trusted)
    if Quorum is not None:
        fields["put_quorum"] = student_put_quorum(Quorum, _trusted=_trusted)
        fields["get_quorum"] = student_get_quorum(Quorum, _trusted=_trusted)
    if read_repairs is not None:
        fields["read_repair"] = student_read_repair(read_repairs, _trusted=_trusted)
    if handoff_tick is not None:
        fields["handoff_tick"] = student_handoff_tick(handoff_tick, _trusted=_trusted)
    if handoff_ack is not None:
        fields["handoff_ack"] = student_handoff_ack(handoff_ack, _trusted=_trusted)
    return Parts(**fields)


# -- the reference in the student's form (trusted: for expected values and tests) -------------

class _ReferenceQuorum:
    """The reference's quorum with the student's interface."""

    def __init__(self, needed, primaries, targets, write):
        from ...node.quorum import GetQuorum, PutQuorum
        self.q = (PutQuorum if write else GetQuorum)(needed, list(primaries), dict(targets))

    def on_reply(self, node):
        return _as_tuple(self.q.on_reply(node))

    def on_timeout(self, spare, me):
        return _as_tuple(self.q.on_timeout(list(spare), me))


def _reference_read_repairs(replies, primaries, targets, siblings):
    want = set(siblings)
    return sorted(r for r, vs in replies.items()
                  if r in primaries and targets.get(r) is None and set(vs) != want)


def _reference_parts_in_student_form():
    from ...node.hints import handoff_ack, handoff_tick
    from ...node.quorum import choose_replicas
    return choose_replicas, _ReferenceQuorum, _reference_read_repairs, handoff_tick, handoff_ack


# -- A: choosing replicas -------------------------------------------------------------------------

def _replica_strategy():
    from hypothesis import strategies as st

    @st.composite
    def case(draw):
        walk = list(draw(st.permutations(_NODES)))[:draw(st.integers(1, len(_NODES)))]
        n = draw(st.integers(1, min(5, len(walk))))
        pref = walk[:n]
        me = draw(st.one_of(st.sampled_from(pref), st.sampled_from(pref), st.sampled_from(walk)))
        # Down nodes among the top N (what stand-ins are for) and beyond it (what they skip).
        down = set()
        for group in ([x for x in pref if x != me], [x for x in walk[n:] if x != me]):
            if group:
                down |= draw(st.sets(st.sampled_from(group)))
        sloppy = draw(st.sampled_from([True, True, True, False]))
        return pref, walk, down, me, sloppy

    return case()


def _replica_input(pref, walk, down, me, sloppy) -> str:
    shown = "{" + ", ".join(repr(x) for x in sorted(down)) + "}" if down else "set()"
    return (f"preference={pref!r}, walk={walk!r}, down={shown}, me={me!r}, sloppy={sloppy}")


def _call_choose(ctx: Context, fn, case, want):
    pref, walk, down, me, sloppy = case
    text = _replica_input(*case)
    got = ctx.result(text, want, fn, list(pref), list(walk), set(down), me, sloppy)
    if not isinstance(got, Mapping) or not all(
            isinstance(t, str) and (h is None or isinstance(h, str)) for t, h in got.items()):
        raise Mismatch(text, want, got, "return a dict {target: the node it stands in for, or "
                                        "None for a top-N node standing for itself}")
    return text, dict(got)


def check_choose_replicas(choose_replicas: Callable, *, seed: int = 3101, examples: int = 200,
                          budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``replicas-are-the-first-n-healthy-nodes``: the targets, and which of them
    stand for themselves, are the reference's."""
    __tracebackhide__ = True
    from ...node.quorum import choose_replicas as reference
    ctx = start_check("replicas-are-the-first-n-healthy-nodes", "check_choose_replicas",
                      "choose_replicas", seed, choose_replicas)

    def body(case):
        pref, walk, down, me, sloppy = case
        want = reference(pref, walk, down, me, sloppy)
        text, got = _call_choose(ctx, choose_replicas, case, want)
        selves = {t for t, h in want.items() if h is None}
        if set(got) == set(want) and {t for t, h in got.items() if h is None} == selves:
            return
        raise Mismatch(text, want, got, _replicas_note(pref, walk, down, me, sloppy, want, got))

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _replica_strategy(), examples, body))


def _replicas_note(pref, walk, down, me, sloppy, want, got) -> str:
    if not sloppy:
        return ("without sloppy quorum the targets are the top N as they are, down or not, "
                "each standing for itself (None)")
    for p in pref:
        if (p == me or p not in down) and got.get(p, "missing") is not None:
            return (f"{p} is in the top N and believed up{' (it is the coordinator)' if p == me else ''}: "
                    f"it is a target standing for itself (None)")
    for p in pref:
        if p != me and p in down and p in got:
            return f"{p} is believed down: it is not sent to; a stand-in replaces it"
    spare = [s for s in walk if s not in pref and s not in down]
    return (f"each node believed down is replaced by the next healthy node beyond the top N, "
            f"in walk order (here {spare[:len([p for p in pref if p in down and p != me])]}); "
            f"nobody else is a target")


def check_stand_in_hints(choose_replicas: Callable, *, seed: int = 3102, examples: int = 200,
                         budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``each-stand-in-is-hinted-with-the-node-it-replaces``: every stand-in the
    student chose that the reference chose too carries the reference's hint."""
    __tracebackhide__ = True
    from ...node.quorum import choose_replicas as reference
    ctx = start_check("each-stand-in-is-hinted-with-the-node-it-replaces", "check_stand_in_hints",
                      "choose_replicas", seed, choose_replicas)

    def body(case):
        pref, walk, down, me, sloppy = case
        want = reference(pref, walk, down, me, sloppy)
        text, got = _call_choose(ctx, choose_replicas, case, want)
        for target, hint in want.items():
            if hint is not None and target in got and got[target] != hint:
                down_order = [p for p in pref if p in down and p != me]
                raise Mismatch(text, {t: h for t, h in want.items() if h is not None},
                               {t: h for t, h in got.items() if h is not None},
                               f"{target} stands in for {hint}: its hint names {hint}, so that it "
                               f"hands the write back to {hint} later (the down nodes in "
                               f"preference order, {down_order}, get the spare nodes in walk "
                               f"order)")

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _replica_strategy(), examples, body))


# -- B: the quorum of one request -----------------------------------------------------------------

def _quorum_strategy(with_timeouts: bool):
    """A request's quorum (needed, primaries, targets with stand-ins, write or read, the
    coordinator) and what happens to it: replies, repeated replies, strangers' replies and
    (``with_timeouts``) time-outs with the spare stand-ins at that moment."""
    from hypothesis import strategies as st

    @st.composite
    def case(draw):
        n = draw(st.integers(1, 4))
        nodes = list(draw(st.permutations(_NODES)))
        primaries, beyond = nodes[:n], nodes[n:]
        proxy = draw(st.integers(0, 5)) == 0
        me = beyond[-1] if proxy else primaries[0]
        targets: dict = {}
        spare = [b for b in beyond if b != me]
        for p in primaries:
            if p != me and spare and draw(st.integers(0, 3)) == 0:
                targets[spare.pop(0)] = p
            else:
                targets[p] = None
        needed = draw(st.integers(1, len(targets)))
        write = draw(st.booleans())
        others = [t for t in targets if t != me]
        order = draw(st.permutations(others))
        answering = list(order)[:draw(st.integers(0, len(others)))]
        events: list[tuple] = [("reply", me)] if me in targets else []
        for node in answering:
            events.append(("reply", node))
            roll = draw(st.integers(0, 9))
            if roll == 0:
                events.append(("reply", node))                         # a repeated reply
            elif roll == 1:
                events.append(("reply", draw(st.sampled_from(spare + [me, "Z"]))))
        if with_timeouts:
            # after the coordinator's own reply, which comes at once
            pos = draw(st.integers(1 if me in targets else 0, len(events)))
            left = [s for s in spare if s not in targets]
            first = left[:draw(st.integers(0, len(left)))]
            events.insert(pos, ("timeout", first))
            if draw(st.booleans()):
                events.append(("reply", draw(st.sampled_from(first + [me] + others))))
            events.append(("timeout", [s for s in left if s not in first][:1]))
        return needed, primaries, targets, write, me, events

    return case()


def _replay_quorum(ctx: Context, quorum_class, case, compare: Callable) -> None:
    """Run one case on the reference and on the student's class, step by step; ``compare(
    step, want, got, text)`` raises a Mismatch when the student's decision breaks the
    invariant being checked."""
    from ...node.quorum import GetQuorum, PutQuorum
    needed, primaries, targets, write, me, events = case
    ref = (PutQuorum if write else GetQuorum)(needed, list(primaries), dict(targets))
    built = f"Quorum(needed={needed}, primaries={primaries!r}, targets={targets!r}, write={write})"
    STATE.working_on = built
    mine, err = ctx.call(quorum_class, needed, list(primaries), dict(targets), write)
    if err is not None:
        raise Mismatch(built, Expected("a quorum object"), describe_exc(err))
    calls: list[str] = []
    for kind, arg in events:
        if kind == "reply":
            want = _as_tuple(ref.on_reply(arg))
            calls.append(f"on_reply({arg!r})")
            text = f"{built}; then {', '.join(calls)}"
            raw = ctx.result(text, _show_decision(want), mine.on_reply, arg)
        else:
            want = _as_tuple(ref.on_timeout(list(arg), me))
            calls.append(f"on_timeout(spare={arg!r}, me={me!r})")
            text = f"{built}; then {', '.join(calls)}"
            raw = ctx.result(text, _show_decision(want), mine.on_timeout, list(arg), me)
        got = _parse_decision(raw)
        if got is None:
            raise Mismatch(text, _show_decision(want), raw,
                           "return one of Wait(), Answer(done), Retry(stand_ins), "
                           "Fail(may_have_applied) or Finish()")
        compare(kind, want, got, text)


def check_quorum_answers(Quorum: Any, *, seed: int = 3103, examples: int = 150,
                         budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-quorum-answers-at-the-needed-th-reply-its-own-included``: the decision on
    every reply (no time-outs) is the reference's."""
    __tracebackhide__ = True
    ctx = start_check("a-quorum-answers-at-the-needed-th-reply-its-own-included",
                      "check_quorum_answers", "Quorum", seed, Quorum)

    def compare(kind, want, got, text):
        if want != got:
            note = ""
            if want[0] == "answer" and got[0] != "answer":
                note = ("this is the needed-th distinct reply from a target (the coordinator's own "
                        "write or read, its first reply, counts like any other)")
            elif want == ("wait",) and got[0] == "answer":
                note = "fewer than `needed` distinct targets have replied so far"
            elif want[0] == "finish":
                note = "answered before, and now every target has replied: Finish()"
            elif want[0] == "answer":
                note = "done is True when no target is awaited any more"
            elif want == ("wait",):
                note = ("a repeated reply, or one from a node that is not a target, changes "
                        "nothing: Wait()")
            raise Mismatch(text, _show_decision(want), _show_decision(got), note)

    run_check(ctx, budget_s, lambda: hypothesis_run(
        ctx, _quorum_strategy(False), examples, lambda c: _replay_quorum(ctx, Quorum, c, compare)))


def check_quorum_timeouts(Quorum: Any, *, seed: int = 3104, examples: int = 150,
                          budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-timeout-tries-stand-ins-once-then-fails``: with time-outs among the
    replies, every decision is the reference's (whether a failed write may have applied is
    the next invariant's)."""
    __tracebackhide__ = True
    ctx = start_check("a-timeout-tries-stand-ins-once-then-fails", "check_quorum_timeouts",
                      "Quorum", seed, Quorum)

    def compare(kind, want, got, text):
        w = ("fail",) if want[0] == "fail" else want
        g = ("fail",) if got[0] == "fail" else got
        if w != g:
            note = ""
            if kind == "timeout" and want[0] == "retry":
                note = ("the first time-out gives each silent target the next spare stand-in, in "
                        "order (a silent stand-in counts for the node it stood in for; the "
                        "coordinator is never replaced)")
            elif kind == "timeout" and want[0] == "finish":
                note = "the quorum answered before the time-out: stop waiting, Finish()"
            elif kind == "timeout" and want[0] == "fail":
                note = ("stand-ins are tried once: a second time-out (or a first one with no "
                        "spare stand-in for a silent node) fails")
            elif want[0] == "answer":
                note = "a stand-in's reply counts like any other target's"
            shown = Expected("Fail(...)") if want[0] == "fail" else _show_decision(want)
            raise Mismatch(text, shown, _show_decision(got), note)

    run_check(ctx, budget_s, lambda: hypothesis_run(
        ctx, _quorum_strategy(True), examples, lambda c: _replay_quorum(ctx, Quorum, c, compare)))


def check_failed_write(Quorum: Any, *, seed: int = 3105, examples: int = 150,
                       budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-failed-write-says-whether-it-may-have-applied``: wherever the reference
    fails, the student's quorum fails with the same ``may_have_applied``."""
    __tracebackhide__ = True
    ctx = start_check("a-failed-write-says-whether-it-may-have-applied", "check_failed_write",
                      "Quorum", seed, Quorum)

    def compare(kind, want, got, text):
        if want[0] == "fail" and got != want:
            note = ("a write may have applied as soon as any target acknowledged it: its "
                    "replica stored it (the coordinator's own write counts)" if want[1] else
                    "nobody acknowledged this write" if "write=True" in text else
                    "a read stores nothing: may_have_applied is False")
            raise Mismatch(text, _show_decision(want), _show_decision(got), note)

    run_check(ctx, budget_s, lambda: hypothesis_run(
        ctx, _quorum_strategy(True), examples, lambda c: _replay_quorum(ctx, Quorum, c, compare)))


# -- C: read repair -------------------------------------------------------------------------------

def _repair_strategy():
    from hypothesis import strategies as st
    pool = sample_versions()

    @st.composite
    def case(draw):
        from ...versions import reconcile
        nodes = list(draw(st.permutations(_NODES[:6])))
        primaries, beyond = nodes[:3], nodes[3:]
        targets: dict = {}
        for p in primaries:
            if beyond and draw(st.integers(0, 2)) == 0:
                targets[beyond.pop(0)] = p
            else:
                targets[p] = None
        answered = draw(st.lists(st.sampled_from(list(targets)), min_size=1, unique=True))
        replies = {}
        for node in answered:
            held = draw(st.lists(st.sampled_from(range(len(pool))), max_size=3, unique=True))
            replies[node] = reconcile(pool[i] for i in held)
        return replies, primaries, targets

    return case()


def check_read_repair(read_repairs: Callable, *, seed: int = 3106, examples: int = 200,
                      budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``read-repair-sends-the-siblings-to-stale-primaries-only``: the replicas the
    student repairs are the reference's (any order)."""
    __tracebackhide__ = True
    from ...node.read_repair import read_repairs as reference
    from ...versions import reconcile
    ctx = start_check("read-repair-sends-the-siblings-to-stale-primaries-only",
                      "check_read_repair", "read_repairs", seed, read_repairs)

    def body(case):
        replies, primaries, targets = case
        merged, want = reference(replies, primaries, targets, reconcile)
        labels = Labels()
        siblings = labels.of(merged)
        shown = {r: labels.of(vs) for r, vs in sorted(replies.items())}
        text = (f"replies={shown!r}, primaries={primaries!r}, targets={targets!r}, "
                f"siblings={siblings!r}")
        got = ctx.result(text, want, read_repairs, {r: list(v) for r, v in shown.items()},
                         list(primaries), dict(targets), list(siblings))
        if isinstance(got, (str, bytes)) or not isinstance(got, Iterable):
            raise Mismatch(text, want, got, "return a list of the replicas to repair")
        got_list = list(got)
        if not all(isinstance(r, str) for r in got_list) or sorted(set(got_list)) != want:
            note = ""
            extra = sorted(set(got_list) - set(want), key=str)
            missing = sorted(set(want) - set(got_list))
            if extra and extra[0] in targets and targets[extra[0]] is not None:
                note = (f"{extra[0]} stood in for {targets[extra[0]]}: it keeps a hint, not the "
                        f"key; a stand-in is never read-repaired")
            elif extra and extra[0] not in primaries:
                note = f"{extra[0]} is not a primary (the key's top N)"
            elif extra:
                note = f"{extra[0]} answered with exactly the siblings: it is up to date"
            elif missing:
                note = (f"{missing[0]} is a primary that answered for itself with "
                        f"{shown[missing[0]]!r}, not the siblings")
            raise Mismatch(text, want, got_list, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _repair_strategy(), examples, body))


# -- D: hinted handoff ----------------------------------------------------------------------------

def _hints_strategy():
    from hypothesis import strategies as st

    @st.composite
    def case(draw):
        intended = sorted(draw(st.sets(st.sampled_from("CDEF"), max_size=4)))
        hints = []
        for node in intended:
            keys = draw(st.lists(st.sampled_from(["k1", "k2", "k3", "cart"]), min_size=1,
                                 max_size=3, unique=True))
            hints += [(node, k) for k in keys]
        down = draw(st.sets(st.sampled_from("ACDEF")))
        return hints, down

    return case()


def _hints_input(hints, down) -> str:
    shown = "{" + ", ".join(repr(x) for x in sorted(down)) + "}" if down else "set()"
    return f"hints={hints!r}, down={shown}"


def _call_tick(ctx: Context, fn, hints, down, want) -> tuple[str, list]:
    text = _hints_input(hints, down)
    got = ctx.result(text, want, fn, [tuple(h) for h in hints], set(down))
    ok = not isinstance(got, (str, bytes)) and isinstance(got, Iterable)
    actions = [tuple(a) if isinstance(a, (list, tuple)) else a for a in got] if ok else []
    if not ok or not all(isinstance(a, tuple) and len(a) == 3 and a[0] in ("send", "forget")
                         for a in actions):
        raise Mismatch(text, want, got, "return a list of actions ('send', intended, key) or "
                                        "('forget', intended, key)")
    return text, actions


def check_handoff_sends(handoff_tick: Callable, *, seed: int = 3107, examples: int = 150,
                        budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``handoff-sends-each-hint-to-its-node-once-it-is-up``: the sends of a tick are
    the reference's, in order (forgetting is the next invariant's)."""
    __tracebackhide__ = True
    from ...node.hints import handoff_tick as reference
    ctx = start_check("handoff-sends-each-hint-to-its-node-once-it-is-up", "check_handoff_sends",
                      "handoff_tick", seed, handoff_tick)

    def body(case):
        hints, down = case
        want = reference(hints, down)
        text, actions = _call_tick(ctx, handoff_tick, hints, down, want)
        sends = [a for a in actions if a[0] == "send"]
        if sends != want:
            extra = [a for a in sends if a not in want]
            note = "every hint of a node believed up is sent, in the order the hints are given"
            if extra and extra[0][1] in down:
                note = f"{extra[0][1]} is believed down: keep its hints until it is back"
            elif extra:
                note = f"{extra[0]} names no hint this node keeps"
            raise Mismatch(text, want, sends, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _hints_strategy(), examples, body))


def check_handoff_forgets(handoff_tick: Callable, handoff_ack: Callable, *, seed: int = 3108,
                          examples: int = 150, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-hint-is-forgotten-only-after-its-node-acknowledged-it``: a tick forgets
    nothing; an acknowledgement forgets the hint exactly when it names what is held now."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    from ...node.hints import handoff_ack as reference_ack, handoff_tick as reference_tick
    ctx = start_check("a-hint-is-forgotten-only-after-its-node-acknowledged-it",
                      "check_handoff_forgets", "hinted-handoff functions", seed, handoff_tick,
                      handoff_ack)
    digests = st.sampled_from(["d1", "d2", "d3"])
    acks = st.tuples(st.sampled_from("CDE"), st.sampled_from(["k1", "cart"]),
                     st.one_of(st.none(), digests), digests)

    def body(case):
        (hints, down), ack_cases = case
        text, actions = _call_tick(ctx, handoff_tick, hints, down, reference_tick(hints, down))
        forgets = [a for a in actions if a[0] == "forget"]
        if forgets:
            raise Mismatch(f"handoff_tick({text})", Expected("no ('forget', ...) action"),
                           forgets, f"{forgets[0][1]} has not acknowledged the hint of "
                                    f"{forgets[0][2]!r} yet: if what was sent is lost, the hint "
                                    f"was the last copy meant for {forgets[0][1]}")
        for intended, key, held, acked in ack_cases:
            want = reference_ack(intended, key, held, acked)
            text = f"handoff_ack(intended={intended!r}, key={key!r}, held={held!r}, acked={acked!r})"
            got = ctx.result(text, want, handoff_ack, intended, key, held, acked)
            ok = not isinstance(got, (str, bytes)) and isinstance(got, Iterable)
            got_list = [tuple(a) if isinstance(a, (list, tuple)) else a for a in got] if ok else got
            if got_list != want:
                note = ("the acknowledgement names exactly what is held: forget the hint" if want
                        else "nothing is held any more" if held is None else
                        "what is held now is not what was acknowledged (a newer write reached "
                        "the hint after it was sent): keep it, the next tick sends it")
                raise Mismatch(text, want, got_list, note)

    run_check(ctx, budget_s, lambda: hypothesis_run(
        ctx, st.tuples(_hints_strategy(), st.lists(acks, min_size=1, max_size=4)), examples, body))


# -- E: inside a cluster --------------------------------------------------------------------------

def _outcome(op) -> Any:
    from ...versions import canonical_json
    try:
        r = op.result()
    except QuorumError as exc:
        return f"QuorumError(may_have_applied={exc.may_have_applied}): {exc}"
    if hasattr(r, "values"):
        return {"values": sorted(canonical_json(v) for v in r.values),
                "coordinator": r.coordinator, "replies": list(r.replies)}
    return {"coordinator": r.coordinator, "replies": list(r.replies)}


def _quorum_cluster_log(parts, seed: int, steps: int = 40) -> tuple[list[tuple], list[str],
                                                                     list[tuple[int, str]]]:
    """A seeded workload on 6 nodes (N=3, R=W=2) under crashes, partitions and lost messages,
    then a strict-quorum cluster with nodes down: what every client was told, what the
    replicas and hints hold at the end, the whole trace, and marks (how many trace lines there
    were when each step ended, and the step)."""
    from ...cluster import SimCluster
    from ...faults import FaultConfig
    cluster = SimCluster(nodes=6, n=3, r=2, w=2, seed=seed, parts=parts, anti_entropy=False)
    rng = random.Random(f"lab3-cluster/{seed}")
    clients = {c: cluster.client(c) for c in ("alice", "bob")}
    keys = [f"cart:{i}" for i in range(4)]
    context: dict = {}
    log: list[tuple] = []
    marks: list[tuple[int, str]] = []
    cluster.run_for(3)
    for i in range(steps):
        kind = rng.choice(["read", "read", "write", "write", "delete", "crash", "restart",
                           "partition", "heal", "lossy", "tick"])
        key, who = rng.choice(keys), rng.choice(sorted(clients))
        step = f"step {i}: {kind}"
        STATE.working_on = step
        down = [n for n in cluster.nodes if not cluster.hosts[n].alive]
        if kind in ("read", "write", "delete"):
            via = rng.choice(cluster.nodes)
            c = clients[who]
            if kind == "read":
                op = c.submit_get(key, via=via)
            elif kind == "write":
                op = c.submit_put(key, [f"{who}-{i}"], context.get((who, key)), via=via)
            else:
                op = c.submit_delete(key, context.get((who, key)), via=via)
            cluster.wait(op)
            if op.error is None:
                context[(who, key)] = op.result().context
            log.append((f"{step} {key} by {who} through {via}", _outcome(op)))
        elif kind == "crash" and len(down) < 2:
            victim = rng.choice(cluster.up())
            cluster.crash(victim)
            log.append((f"{step} {victim}", None))
        elif kind == "restart" and down:
            victim = rng.choice(down)
            cluster.restart(victim)
            log.append((f"{step} {victim}", None))
            for k in keys:                   # what it missed: read repair, or stand-ins' hints
                via = rng.choice(cluster.up())
                op = clients[who].submit_get(k, via=via)
                cluster.wait(op)
                log.append((f"{step}: read {k} by {who} through {via}", _outcome(op)))
        elif kind == "partition":
            nodes = list(cluster.nodes)
            rng.shuffle(nodes)
            cut = rng.randrange(1, 3)
            cluster.heal()
            cluster.partition(set(nodes[:cut]), set(nodes[cut:]))
            log.append((f"{step} {sorted(nodes[:cut])} | {sorted(nodes[cut:])}", None))
        elif kind == "heal":
            cluster.heal()
        elif kind == "lossy":
            drop = rng.choice([0.0, 0.1, 0.3])
            cluster.sim.faults = FaultConfig(drop=drop)
            log.append((f"{step} drop={drop}", None))
        cluster.run_for(rng.uniform(0.2, 3.0))
        marks.append((len(cluster.sim.trace.events), log[-1][0] if log else step))
    cluster.sim.faults = FaultConfig()
    cluster.settle(20)
    marks.append((len(cluster.sim.trace.events), "healing and settling"))
    # What every seed does: a replica that missed a write is read-repaired; with two primaries
    # down, stand-ins answer a read (and are not repaired) and take a write with hints, which
    # go home when the primaries are back.
    key = keys[0]
    first, second, third = cluster.preference_list(key)
    cluster.crash(third)
    op = clients["alice"].submit_put(key, ["missed"], context.get(("alice", key)), via=first)
    cluster.wait(op)
    log.append((f"{third} down: put {key} through {first}", _outcome(op)))
    cluster.restart(third)
    op = clients["bob"].submit_get(key, via=first)
    cluster.wait(op)
    cluster.run_for(1)
    log.append((f"{third} back: get {key} through {first}", _outcome(op)))
    marks.append((len(cluster.sim.trace.events), f"the read repair of {third}"))
    cluster.crash(second)
    cluster.crash(third)
    cluster.run_for(6)
    op = clients["bob"].submit_get(key, via=first)
    cluster.wait(op)
    cluster.run_for(1)
    log.append((f"{second} and {third} down and suspected: get {key} through {first}",
                _outcome(op)))
    op = clients["bob"].submit_put(key, ["hinted"], op.result().context if op.error is None
                                   else None, via=first)
    cluster.wait(op)
    log.append((f"{second} and {third} down: put {key} through {first}", _outcome(op)))
    cluster.restart(second)
    cluster.restart(third)
    cluster.run_for(8)
    log.append((f"{second} and {third} back: hints held", cluster.hints()))
    marks.append((len(cluster.sim.trace.events), f"stand-ins for {second} and {third}"))
    for key in keys:
        STATE.working_on = f"the final read of {key}"
        op = clients["alice"].submit_get(key)
        cluster.wait(op)
        log.append((f"after healing: read {key}", _outcome(op)))
        log.append((f"after healing: what the replicas of {key} hold",
                    {n: sorted(version_label(v) for v in vs)
                     for n, vs in sorted(cluster.replicas(key).items())}))
    log.append(("after healing: hints held", cluster.hints()))
    lines = cluster.sim.trace.lines()
    marks.append((len(lines), "the final reads"))
    # Strict quorum, with two nodes down: requests fail, saying whether a write may have applied.
    strict = SimCluster(nodes=5, n=3, r=2, w=2, seed=seed, parts=parts, anti_entropy=False,
                        sloppy_quorum=False)
    strict.run_for(3)
    strict.crash("B")
    strict.crash("C")
    for i in range(6):
        STATE.working_on = f"strict quorum, request {i}"
        key = f"strict:{i}"
        op = strict.client("carol").submit_put(key, [i], via=rng.choice(strict.up()))
        strict.wait(op)
        log.append((f"strict quorum, B and C down: put {key}", _outcome(op)))
        op = strict.client("carol").submit_get(key, via=rng.choice(strict.up()))
        strict.wait(op)
        log.append((f"strict quorum, B and C down: get {key}", _outcome(op)))
        marks.append((len(lines) + len(strict.sim.trace.events), f"strict quorum, {key}"))
    return log, lines + strict.sim.trace.lines(), marks


def _cluster_context(invariant: str, func: str, seed: int, parts: Sequence[Any]) -> Context:
    return start_check(invariant, func, "quorum parts", seed, *parts,
                       replay=f"grading.{func}(<your {', '.join(PARTS)}>, seed={seed})")


def check_quorum_cluster(choose_replicas: Callable, Quorum: Any, read_repairs: Callable,
                         handoff_tick: Callable, handoff_ack: Callable, *, seed: int = 31,
                         budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``cluster-with-your-quorum-parts-matches-the-reference``: the same seeded
    workload on a cluster using every one of the student's parts and on the reference gives
    the same answers and the same trace."""
    __tracebackhide__ = True
    parts = (choose_replicas, Quorum, read_repairs, handoff_tick, handoff_ack)
    ctx = _cluster_context("cluster-with-your-quorum-parts-matches-the-reference",
                           "check_quorum_cluster", seed, parts)
    from ...node import Parts
    same_trace(ctx, budget_s, lambda p: _quorum_cluster_log(p, seed), Parts(),
              student_parts(*parts), f"6 nodes, N=3, R=W=2, crashes, partitions and lost "
                                     f"messages, then strict quorum; seed={seed}")


def _story_log(parts, seed: int) -> tuple[list[tuple], list[str], list[tuple[int, str]]]:
    from .scenarios import seeds_story
    marks: list[tuple[int, str]] = []
    log, cluster = seeds_story(parts, seed, marks=marks)
    return log, cluster.sim.trace.lines(), marks


def check_sloppy_quorum_story(choose_replicas: Callable, Quorum: Any, read_repairs: Callable,
                              handoff_tick: Callable, handoff_ack: Callable, *, seed: int = 1,
                              budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``the-seeds-sloppy-quorum-story-with-your-parts``: the lecture's example
    (:func:`~dynamo_lab.labs.lab3_quorums.scenarios.seeds_story`) with the student's parts
    gives the reference's log and trace."""
    __tracebackhide__ = True
    parts = (choose_replicas, Quorum, read_repairs, handoff_tick, handoff_ack)
    ctx = _cluster_context("the-seeds-sloppy-quorum-story-with-your-parts",
                           "check_sloppy_quorum_story", seed, parts)
    from ...node import Parts
    same_trace(ctx, budget_s, lambda p: _story_log(p, seed), Parts(), student_parts(*parts),
              f"the lecture's example: A..F, C and D down, E and F standing in; seed={seed}")
