"""Lab 7's checks: the write-stamp rule, where a write goes in the log, what an anti-entropy
sender sends, the primary's commit, and all of them inside Bayou servers.

The student's parts take and return plain records (:mod:`.records`), so that they cross the
grading sandbox:

* ``new_stamp(clock, vector)`` -> the new write's accept-stamp;
* ``position(log, write)`` -> the index where ``write`` goes in ``log`` (a list of
  :class:`~.records.Write` in log order);
* ``writes_to_send(log, receiver_vector, receiver_csn)`` -> a list of ``Write`` and
  :class:`~.records.Commit`, in the order they are sent;
* ``commit(log, csn)`` -> the primary's list of ``Commit``.

The adapters (:func:`bayou_parts`) plug them into every :class:`~dynamo_lab.bayou.Server` of a
:class:`~dynamo_lab.bayou.BayouCluster` through :class:`~dynamo_lab.bayou.Parts`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from ...errors import ConfigError
from ...grading.failures import DEFAULT_BUDGET_S, STATE, Expected, Mismatch
from ...grading.harness import (Context, differential, hypothesis_run, run_check, scope_of,
                                start_check)
from .records import Commit, Write

__all__ = [
    "record", "bayou_parts", "check_new_stamp", "check_position_tentative",
    "check_position_committed", "check_sends_what_is_lacking", "check_sends_in_log_order",
    "check_commit", "check_lecture_example", "check_bayou_cluster",
]

#: The student's parts, as the checks of the cluster take them (in this order).
PARTS = ("new_stamp", "position", "writes_to_send", "commit")

#: What :func:`~dynamo_lab.grading.self_check` runs for each test cell (kept equal to the cells
#: file by ``tests/test_self_check.py``).
SELF_CHECK = {
    "a_new_write_is_stamped_above_every_stamp_seen":
        ("check_new_stamp", ("new_stamp",), {"seed": 7101, "examples": 200}),
    "tentative_writes_sort_by_stamp_then_server_after_the_committed":
        ("check_position_tentative", ("position",), {"seed": 7102, "examples": 150}),
    "a_committed_write_goes_after_the_committed_before_the_tentative":
        ("check_position_committed", ("position",), {"seed": 7103, "examples": 150}),
    "the_sender_sends_exactly_what_the_receiver_lacks":
        ("check_sends_what_is_lacking", ("writes_to_send",), {"seed": 7104, "examples": 150}),
    "a_session_sends_in_the_senders_log_order":
        ("check_sends_in_log_order", ("writes_to_send",), {"seed": 7105, "examples": 150}),
    "the_primary_commits_its_tentative_writes_in_log_order":
        ("check_commit", ("commit",), {"seed": 7106, "examples": 150}),
    "the_lectures_example_with_your_parts":
        ("check_lecture_example", PARTS, {"seed": 0}),
    "servers_with_your_parts_match_the_reference":
        ("check_bayou_cluster", PARTS, {"seed": 71}),
}

SERVERS = ("P", "A", "B", "C")
_OPS = ("w(X,4)", "w(Y,8)", "w(Z,8)", "D(Y)", "add(cart,pen)", "book(room,mon-10,ann)")


# -- records: the reference's writes as the student sees them --------------------------------

def record(w: Any) -> Any:
    """A reference :class:`~dynamo_lab.bayou.Write` (or ``Commit``) as the lab's record."""
    from ...bayou.writes import Commit as RefCommit
    if isinstance(w, RefCommit):
        return Commit(w.csn, w.stamp, w.server)
    return Write(w.csn, w.stamp, w.server, w.op.label())


def _records(log: Sequence[Any]) -> list[Write]:
    return [record(w) for w in log]


def _clean_int(got: Any, what: str, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    if type(got) is not int or (lo is not None and got < lo) or (hi is not None and got > hi):
        span = f" from {lo} to {hi}" if lo is not None and hi is not None else ""
        raise ConfigError(f"your {what} returned {got!r}: return an int{span}")
    return got


def _items(got: Any, log: Sequence[Any], what: str) -> list[Any]:
    """The student's items as the reference's: each ``Write`` must be an entry of ``log``
    as it is there; each ``Commit`` must name a write of ``log``."""
    from ...bayou.writes import Commit as RefCommit
    if not isinstance(got, (list, tuple)):
        raise ConfigError(f"your {what} returned {got!r}: return a list of Write and Commit "
                          f"records")
    by_wid = {(w.stamp, w.server): w for w in log}
    out = []
    for item in got:
        if type(item) is Write:
            w = by_wid.get((item.stamp, item.server))
            if w is None or record(w) != item:
                raise ConfigError(f"your {what} sent {item!r}, which is not an entry of the "
                                  f"sender's log: send the log's entries as they are")
            out.append(w)
        elif type(item) is Commit:
            if (item.stamp, item.server) not in by_wid or type(item.csn) is not int:
                raise ConfigError(f"your {what} sent {item!r}, a commit notice for a write the "
                                  f"sender's log does not hold")
            out.append(RefCommit(item.stamp, item.server, item.csn))
        else:
            raise ConfigError(f"your {what} returned {item!r} among its items: each item is a "
                              f"Write (an entry of the log) or a Commit(csn, stamp, server)")
    return out


# -- adapters -----------------------------------------------------------------------------------

def bayou_parts(new_stamp: Optional[Callable] = None, position: Optional[Callable] = None,
                writes_to_send: Optional[Callable] = None, commit: Optional[Callable] = None,
                *, _trusted: bool = False):
    """A :class:`~dynamo_lab.bayou.Parts` with each of the student's parts given plugged in
    (the others stay the reference's)::

        parts = grading.bayou_parts(new_stamp, position, writes_to_send, commit)
        cluster = BayouCluster(["P", "A", "B"], seed=1, parts=parts)

    A part that returns something else than its contract says raises :class:`ConfigError`
    inside the server, naming the part and what it returned."""
    from ...bayou import Parts
    scope = scope_of(_trusted)
    fields: dict[str, Callable] = {}
    if new_stamp is not None:
        def stamp(clock, vector):
            with scope():
                got = new_stamp(clock, dict(vector))
            return _clean_int(got, "new_stamp", lo=1)
        fields["new_stamp"] = stamp
    if position is not None:
        def place(log, write):
            with scope():
                got = position(_records(log), record(write))
            return _clean_int(got, "position", 0, len(log))
        fields["position"] = place
    if writes_to_send is not None:
        def send(log, receiver_vector, receiver_csn):
            with scope():
                got = writes_to_send(_records(log), dict(receiver_vector), receiver_csn)
            return tuple(_items(got, log, "writes_to_send"))
        fields["writes_to_send"] = send
    if commit is not None:
        def commits(log, csn):
            with scope():
                got = commit(_records(log), csn)
            items = _items(got, log, "commit")
            if any(type(i).__name__ != "Commit" for i in items):
                raise ConfigError(f"your commit returned {got!r}: return a list of "
                                  f"Commit(csn, stamp, server) notices")
            return tuple(items)
        fields["commit"] = commits
    return Parts(**fields)


# -- the reference in the student's form (for expected values and tests) ---------------------

def _reference_position(log: Sequence[Write], write: Write) -> int:
    from ...bayou import log as log_order
    return log_order.position([_ref_write(w) for w in log], _ref_write(write))


def _reference_writes_to_send(log, receiver_vector, receiver_csn):
    from ...bayou.anti_entropy import writes_to_send
    return [record(i) for i in writes_to_send([_ref_write(w) for w in log], receiver_vector,
                                              receiver_csn)]


def _reference_commit(log, csn):
    from ...bayou.anti_entropy import commit
    return [record(c) for c in commit([_ref_write(w) for w in log], csn)]


def _ref_write(w: Write):
    """A record as a reference write (its operation stands in by its label)."""
    from ...bayou.writes import Write as RefWrite
    return RefWrite(w.stamp, w.server, _Labelled(w.op), w.csn)


class _Labelled:
    """An operation known only by its label (enough for ordering, sending and committing)."""

    def __init__(self, text: str):
        self.text = text

    def label(self) -> str:
        return self.text


def _reference_parts_in_student_form():
    from ...bayou.writes import new_stamp
    return new_stamp, _reference_position, _reference_writes_to_send, _reference_commit


# -- generated states ---------------------------------------------------------------------------

def _history():
    """A history of writes: each server's accept-stamps (increasing), and a commit order that
    keeps each server's writes in stamp order (what any primary gives over time)."""
    from hypothesis import strategies as st

    @st.composite
    def history(draw):
        servers = SERVERS[:draw(st.integers(2, len(SERVERS)))]
        stamps = {s: sorted(draw(st.sets(st.integers(1, 24), max_size=5))) for s in servers}
        ops = {(t, s): draw(st.sampled_from(_OPS)) for s in servers for t in stamps[s]}
        prefix = {s: draw(st.integers(0, len(stamps[s]))) for s in servers}
        pending = {s: [(t, s) for t in stamps[s][:prefix[s]]] for s in servers}
        order = []
        while any(pending.values()):
            s = draw(st.sampled_from([s for s in servers if pending[s]]))
            order.append(pending[s].pop(0))
        return servers, stamps, ops, order
    return history()


def _state(draw, hist, *, lacks_next_commit: bool = False):
    """One server's state in ``hist``: it knows commits 1..c, holds a prefix of each server's
    writes that covers them, and has truncated the first ``osn`` of them. Returns (log as
    records, vector, csn, held prefix lengths)."""
    from hypothesis import strategies as st
    servers, stamps, ops, order = hist
    c = draw(st.integers(0, len(order) - (1 if lacks_next_commit else 0)))
    committed = order[:c]
    held = {}
    for s in servers:
        need = sum(1 for _, x in committed if x == s)
        if lacks_next_commit and order[c][1] == s:
            held[s] = need                          # the next commit's write is not held
        else:
            held[s] = draw(st.integers(need, len(stamps[s])))
    osn = draw(st.integers(0, c))
    log = [Write(i + 1, t, s, ops[(t, s)]) for i, (t, s) in enumerate(committed) if i >= osn]
    done = set(committed)
    log += sorted((Write(None, t, s, ops[(t, s)]) for s in servers
                   for t in stamps[s][:held[s]] if (t, s) not in done),
                  key=lambda w: (w.stamp, w.server))
    vector = {s: (stamps[s][held[s] - 1] if held[s] else 0) for s in servers}
    return log, vector, c, held


def _log_text(log: Sequence[Write]) -> str:
    return "[" + ", ".join(w.label().strip() for w in log) + "]"


def _strategy(kind: str):
    from hypothesis import strategies as st

    @st.composite
    def case(draw):
        if kind == "position-committed":               # some write gets committed
            hist = draw(_history().filter(lambda h: h[3]))
        else:
            hist = draw(_history())
        servers, stamps, ops, order = hist
        if kind == "position-committed":
            log, vector, c, held = _state(draw, hist, lacks_next_commit=True)
            t, s = order[c]
            return log, Write(c + 1, t, s, ops[(t, s)])
        log, vector, c, held = _state(draw, hist)
        if kind == "position-tentative":
            unheld = [s for s in servers if held[s] < len(stamps[s])]
            if unheld:
                s = draw(st.sampled_from(unheld))
                t = stamps[s][held[s]]
            else:                                   # a new write accepted elsewhere
                s = draw(st.sampled_from(servers))
                t = vector[s] + draw(st.integers(1, 5))
            return log, Write(None, t, s, ops.get((t, s), "w(X,4)"))
        if kind == "send":
            rlog, rvector, rc, _ = _state(draw, hist)
            return log, rvector, rc
        return log, c                               # commit: the primary's log and CSN
    return case()


# -- A: the write-stamp rule ----------------------------------------------------------------------

def check_new_stamp(new_stamp: Callable, *, seed: int = 7101, examples: int = 200,
                    budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-new-write-is-stamped-above-every-stamp-seen``: the stamp is
    ``max(clock, max stamp seen + 1)``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    from ...bayou.writes import new_stamp as reference
    ctx = start_check("a-new-write-is-stamped-above-every-stamp-seen", "check_new_stamp",
                      "new_stamp", seed, new_stamp)
    cases = st.tuples(st.integers(0, 40),
                      st.dictionaries(st.sampled_from(SERVERS), st.integers(0, 40), max_size=4))

    def body(case):
        clock, vector = case
        want = reference(clock, vector)
        text = f"clock={clock}, vector={vector!r}"
        got = ctx.result(text, want, new_stamp, clock, dict(vector))
        if got != want:
            seen = max(vector.values(), default=0)
            raise Mismatch(text, want, got,
                           f"the stamp is above every stamp this server has seen (the highest, "
                           f"{seen}, is in its vector) and at least its clock ({clock}): "
                           f"max(clock, max(vector) + 1)")

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, cases, examples, body))


# -- B: where a write goes -----------------------------------------------------------------------

def _check_position(ctx: Context, position: Callable, kind: str, examples: int, budget_s: float,
                    note: Callable[[list, Write, int], str]) -> None:
    def body(case):
        log, write = case
        want = _reference_position(log, write)
        text = f"log={_log_text(log)}, write={write.label().strip()}"
        got = ctx.result(text, want, position, list(log), write)
        if got != want:
            raise Mismatch(text, want, got, note(log, write, want))

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _strategy(kind), examples, body))


def check_position_tentative(position: Callable, *, seed: int = 7102, examples: int = 150,
                             budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``tentative-writes-sort-by-stamp-then-server-after-the-committed``: a
    tentative write goes after every committed entry, among the tentative ones by
    (stamp, server)."""
    __tracebackhide__ = True
    ctx = start_check("tentative-writes-sort-by-stamp-then-server-after-the-committed",
                      "check_position_tentative", "position", seed, position)

    def note(log, write, want):
        after = [w.label().strip() for w in log[want:]]
        return (f"a tentative write goes after every committed one, then by (stamp, server) "
                f"among the tentative: {write.label().strip()} goes at index {want}, before "
                f"{after or 'nothing'} (which a server that applied them rolls back)")

    _check_position(ctx, position, "position-tentative", examples, budget_s, note)


def check_position_committed(position: Callable, *, seed: int = 7103, examples: int = 150,
                             budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-committed-write-goes-after-the-committed-before-the-tentative``: a
    committed write the server did not hold goes right after the committed entries, before
    every tentative one."""
    __tracebackhide__ = True
    ctx = start_check("a-committed-write-goes-after-the-committed-before-the-tentative",
                      "check_position_committed", "position", seed, position)

    def note(log, write, want):
        return (f"{write.label().strip()} is committed (CSN {write.csn}): it goes after the "
                f"{want} committed entries and before every tentative one, whatever its stamp")

    _check_position(ctx, position, "position-committed", examples, budget_s, note)


# -- C: what a sender sends ----------------------------------------------------------------------

def _call_send(ctx: Context, fn: Callable, case, want) -> tuple[str, list]:
    log, vector, csn = case
    text = f"log={_log_text(log)}, receiver_vector={vector!r}, receiver_csn={csn}"
    got = ctx.result(text, want, fn, list(log), dict(vector), csn)
    if not isinstance(got, (list, tuple)) or not all(type(i) in (Write, Commit) for i in got):
        raise Mismatch(text, want, got, "return a list of Write entries of the log and "
                                        "Commit(csn, stamp, server) notices")
    return text, list(got)


def _why_item(item, log, vector, csn) -> str:
    held = item.stamp <= vector.get(item.server, 0)
    name = f"{item.stamp}:{item.server}"
    entry = next((w for w in log if (w.stamp, w.server) == (item.stamp, item.server)), None)
    if entry is not None and entry.csn is not None and entry.csn <= csn:
        return f"the receiver knows {name} as committed already (CSN {entry.csn} <= {csn})"
    if entry is not None and entry.csn is None and held:
        return f"the receiver holds {name} (its vector has {item.server}: {vector.get(item.server, 0)})"
    if held:
        return (f"the receiver holds {name} (its vector has {item.server}: "
                f"{vector.get(item.server, 0)}) but not as committed: send only the notice "
                f"Commit({entry.csn if entry else '?'}, {item.stamp}, {item.server!r})")
    return (f"the receiver does not hold {name} (its vector has {item.server}: "
            f"{vector.get(item.server, 0)}): send the whole write")


def check_sends_what_is_lacking(writes_to_send: Callable, *, seed: int = 7104,
                                examples: int = 150, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``the-sender-sends-exactly-what-the-receiver-lacks``: the items (whole writes
    and commit notices) are the reference's, in any order."""
    __tracebackhide__ = True
    ctx = start_check("the-sender-sends-exactly-what-the-receiver-lacks",
                      "check_sends_what_is_lacking", "writes_to_send", seed, writes_to_send)

    def body(case):
        log, vector, csn = case
        want = _reference_writes_to_send(log, vector, csn)
        text, got = _call_send(ctx, writes_to_send, case, want)
        if sorted(got, key=repr) == sorted(want, key=repr):
            return
        missing = [i for i in want if i not in got]
        extra = [i for i in got if i not in want]
        first = (missing or extra)[0]
        kind = "missing" if missing else "not to be sent"
        raise Mismatch(text, want, got, f"{first!r} is {kind}: " + _why_item(first, log, vector,
                                                                             csn))

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _strategy("send"), examples, body))


def check_sends_in_log_order(writes_to_send: Callable, *, seed: int = 7105, examples: int = 150,
                             budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``a-session-sends-in-the-senders-log-order``: the items it sends that the
    reference sends too come in the reference's order (the sender's log order)."""
    __tracebackhide__ = True
    ctx = start_check("a-session-sends-in-the-senders-log-order", "check_sends_in_log_order",
                      "writes_to_send", seed, writes_to_send)

    def body(case):
        log, vector, csn = case
        want = _reference_writes_to_send(log, vector, csn)
        text, got = _call_send(ctx, writes_to_send, case, want)
        ordered = [i for i in got if i in want]
        expected = [i for i in want if i in got]
        if ordered != expected:
            raise Mismatch(text, expected, ordered,
                           "send in the sender's log order (committed by CSN, then tentative by "
                           "(stamp, server)): a receiver that takes X's write stamped 12 before "
                           "the one stamped 7 has a version vector that says it holds both, "
                           "so it never gets 7: the prefix property breaks")

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _strategy("send"), examples, body))


# -- D: the primary's commit ------------------------------------------------------------------

def check_commit(commit: Callable, *, seed: int = 7106, examples: int = 150,
                 budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``the-primary-commits-its-tentative-writes-in-log-order``: every tentative
    write, in log order, gets the next CSN from ``csn + 1``; nothing committed again."""
    __tracebackhide__ = True
    ctx = start_check("the-primary-commits-its-tentative-writes-in-log-order", "check_commit",
                      "commit", seed, commit)

    def body(case):
        log, csn = case
        want = _reference_commit(log, csn)
        text = f"log={_log_text(log)}, csn={csn}"
        got = ctx.result(text, want, commit, list(log), csn)
        if isinstance(got, (list, tuple)) and list(got) == want:
            return
        if not isinstance(got, (list, tuple)) or not all(type(c) is Commit for c in got):
            raise Mismatch(text, want, got, "return a list of Commit(csn, stamp, server)")
        raise Mismatch(text, want, list(got),
                       f"each tentative write, in log order (by stamp, then server: which is "
                       f"causal order), gets the next CSN, from {csn + 1}; committed writes "
                       f"keep theirs")

    run_check(ctx, budget_s, lambda: hypothesis_run(ctx, _strategy("commit"), examples, body))


# -- E: inside Bayou servers ----------------------------------------------------------------------

def _lecture_log(parts) -> list[tuple[str, Any]]:
    from ...bayou import lecture
    from ...bayou.tables import render
    c = lecture.cluster(parts=parts)
    log: list[tuple[str, Any]] = []
    for step, tables in lecture.steps(c):
        STATE.working_on = f"the lecture's step {step.title!r}"
        for name, t in tables.items():
            log.append((f"{step.title}, {name}'s table", Expected(render(t))))
    return log + [(f"trace line {i + 1}", Expected(line))
                  for i, line in enumerate(c.sim.trace.lines())]


def _campaign_log(parts, seed: int, seeds: int = 4, writes: int = 40) -> list[tuple[str, Any]]:
    from ...bayou.campaign import run_campaign
    log: list[tuple[str, Any]] = []
    for s in range(seed, seed + seeds):
        STATE.working_on = f"the campaign seed {s}"
        res = run_campaign(s, writes, parts=parts, trace_limit=None)
        # A broken promise first: it says more than the first trace line that differs.
        log.append((f"seed {s} ({res.params}): Bayou's promises",
                    [str(v) for v in res.violations]))
        log += [(f"seed {s}, trace line {i + 1}", Expected(line))
                for i, line in enumerate(res.cluster.trace_lines())]
        log.append((f"seed {s}: the databases", res.cluster.databases()))
    return log


def _cluster_context(invariant: str, func: str, seed: int, parts: Sequence[Any]) -> Context:
    return start_check(invariant, func, "Bayou parts", seed, *parts,
                       replay=f"grading.{func}(<your {', '.join(PARTS)}>, seed={seed})")


def check_lecture_example(new_stamp: Callable, position: Callable, writes_to_send: Callable,
                          commit: Callable, *, seed: int = 0,
                          budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``the-lectures-example-with-your-parts``: the lecture's P, A, B example
    with the student's parts in every server gives the reference's tables at every step, and
    the same trace."""
    __tracebackhide__ = True
    parts = (new_stamp, position, writes_to_send, commit)
    ctx = _cluster_context("the-lectures-example-with-your-parts", "check_lecture_example",
                           seed, parts)
    from ...bayou import Parts
    differential(ctx, budget_s, _lecture_log, Parts(), bayou_parts(*parts),
                 "the lecture's example: servers P (primary), A, B", "the example runs")


def check_bayou_cluster(new_stamp: Callable, position: Callable, writes_to_send: Callable,
                        commit: Callable, *, seed: int = 71,
                        budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``servers-with-your-parts-match-the-reference``: seeded fault campaigns
    (crashes, partitions, lost and reordered messages, truncation) with the student's parts
    in every server send the same messages, keep Bayou's promises and end with the same
    databases as the reference's."""
    __tracebackhide__ = True
    parts = (new_stamp, position, writes_to_send, commit)
    ctx = _cluster_context("servers-with-your-parts-match-the-reference", "check_bayou_cluster",
                           seed, parts)
    from ...bayou import Parts
    differential(ctx, budget_s, lambda p: _campaign_log(p, seed), Parts(), bayou_parts(*parts),
                 f"3 to 5 servers, crashes, partitions, lost messages, truncation; seeds "
                 f"{seed}..{seed + 3}", "the servers run")
