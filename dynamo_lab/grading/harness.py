"""The harness every lab's checks share: a check's context, the time budget, Hypothesis runs
that shrink to the smallest failing input, and the differential run (the reference, then the
student's part, in the same seeded setting, compared step by step)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import traceback
from typing import Any, Callable, Optional

from .failures import (REFERENCE_USED_MARK, STATE, TIMEOUT_MARK, Abort, Expected, GradingFailure,
                       Mismatch, ReferenceUsed, StudentTimeout)
from .own_code import assert_own_code, lab_of, tripwire
from .see_it import dynamo_was_doing, fold


@contextlib.contextmanager
def budget(seconds: float):
    """Raise :class:`StudentTimeout` in the running code once ``seconds`` have passed.

    Uses ``SIGALRM``, so it only works in the main thread of a POSIX process (a Jupyter kernel,
    pytest); elsewhere the check runs without a budget. The timer repeats every 0.25 s, so code
    that swallows the first one with a bare ``except:`` is interrupted again.
    """
    usable = (hasattr(signal, "setitimer") and seconds and seconds > 0
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise StudentTimeout()

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_timer = signal.setitimer(signal.ITIMER_REAL, seconds, 0.25)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_timer[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, *old_timer)


def where_in_student_code(exc: BaseException) -> str:
    """' (line 12 of your code: return self.tokens[i + 1])' for the deepest non-library frame
    (or, for an exception raised in the grading sandbox, where it says it was raised)."""
    where = getattr(exc, "where", None)
    if isinstance(where, str) and where:
        return where
    frames = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(frames):
        fname = fr.filename.replace("\\", "/")
        if "/dynamo_lab/" in fname or "/site-packages/" in fname or fname.endswith("grading.py"):
            continue
        line = (fr.line or "").strip()
        return f" (in {fr.name}, line {fr.lineno}: {line})" if line else f" (in {fr.name})"
    return ""


def describe_exc(exc: BaseException) -> Expected:
    return Expected(f"raised {type(exc).__name__}: {exc}{where_in_student_code(exc)}")


class Context:
    """What one check is: its invariant, seed, the replay call; turns problems into failures."""

    def __init__(self, invariant: str, func: str, what: str, seed: Optional[int],
                 replay: str = ""):
        self.invariant, self.func, self.what, self.seed = invariant, func, what, seed
        self.lab = lab_of(invariant)
        self.replay = replay or f"grading.{func}(<your {what}>, seed={seed})"

    def failure(self, cls=GradingFailure, **kw) -> GradingFailure:
        kw.setdefault("seed", self.seed)
        kw.setdefault("replay", self.replay)
        return cls(self.invariant, **kw)

    def call(self, fn: Callable, *args, **kwargs) -> tuple[Any, Optional[BaseException]]:
        """Run student code. Returns ``(value, None)`` or ``(None, exception)``; aborts the check
        for ``NotImplementedError`` and for any use of the reference."""
        STATE.student_depth += 1
        try:
            return fn(*args, **kwargs), None
        except NotImplementedError as exc:
            raise Abort(self.failure(
                headline="not implemented yet",
                note=f"{getattr(fn, '__qualname__', 'your code')} raised NotImplementedError"
                     f"{where_in_student_code(exc)}; replace it with your implementation")) from None
        except Exception as exc:  # the student's bug: reported as what it returned
            if getattr(exc, "abort_check", False):   # the sandbox stopped: nothing more to ask
                raise Abort(self.failure(headline=str(exc), input=STATE.working_on)) from None
            return None, exc
        finally:
            STATE.student_depth -= 1
            if STATE.reference_calls:
                used = sorted(set(STATE.reference_calls))
                STATE.reference_calls.clear()
                raise Abort(self.failure(
                    ReferenceUsed, headline=f"your {self.what} {REFERENCE_USED_MARK}",
                    note=f"while it ran it called {', '.join(used)}. The lab's parts must be "
                         f"your own code; this check gives no marks while they use the reference"))


    def result(self, text: str, want: Any, fn: Callable, *args) -> Any:
        """What student code returns for one case; a raised exception is a mismatch on
        ``text`` (the input), with ``want`` as the expected value."""
        STATE.working_on = text
        got, err = self.call(fn, *args)
        if err is not None:
            raise Mismatch(text, want, describe_exc(err))
        return got

    def raises_value_error(self, text: str, fn: Callable, *args, why: str = "") -> None:
        """Student code must raise a ``ValueError`` (or a subclass) for this bad input."""
        STATE.working_on = text
        _, err = self.call(fn, *args)
        if not isinstance(err, ValueError):
            raise Mismatch(text, Expected("raises ValueError" + (f" ({why})" if why else "")),
                           describe_exc(err) if err else Expected("returned normally"))


@contextlib.contextmanager
def student_scope():
    """Mark code as the student's (for the tripwire) without the other bookkeeping of call().

    This is the path every adapter takes into a student's part, so an exception leaving the
    part is folded here, once (:func:`.see_it.fold`): a student who runs a cluster with a
    broken part reads their own frame and what Dynamo was doing, not the whole stack."""
    STATE.student_depth += 1
    try:
        yield
    except Exception as exc:
        fold(exc, dynamo_was_doing(sys._getframe(1)))
        raise
    finally:
        STATE.student_depth -= 1


def scope_of(trusted: bool):
    """What an adapter calls a part in: :func:`student_scope` for a student's part, nothing for
    the reference's own functions in the student's form (``_trusted=True``)."""
    return contextlib.nullcontext if trusted else student_scope


def run_check(ctx: Context, budget_s: float, body: Callable[[], None]) -> None:
    """Run ``body`` with the tripwire on and the time budget, turning internal signals into
    one clean :class:`GradingFailure`, raised outside every ``except`` (no chained traceback:
    a student sees one frame and the message)."""
    __tracebackhide__ = True
    failure: Optional[GradingFailure] = None
    STATE.reference_calls.clear()
    STATE.working_on = ""
    with tripwire(ctx.lab):
        try:
            with budget(budget_s):
                body()
        except Abort as abort:
            failure = abort.failure
        except StudentTimeout:
            failure = ctx.failure(
                headline=f"your {ctx.what} {TIMEOUT_MARK} {budget_s:g} s",
                input=STATE.working_on,
                note="an endless loop? (the reference needs well under a second for the whole "
                     "check)")
        except Mismatch as m:
            failure = ctx.failure(input=m.input, expected=m.expected, got=m.got, note=m.note)
    if failure is not None:
        raise failure


def hypothesis_run(ctx: Context, strategy, examples: int, body: Callable[[Any], None]) -> None:
    """Run ``body(case)`` on ``examples`` cases from ``strategy``; Hypothesis shrinks a failing
    case (``body`` raises :class:`Mismatch`) to the smallest one, which is what is reported."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hseed

    @hseed(ctx.seed)
    @settings(max_examples=examples, database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
              phases=(Phase.explicit, Phase.generate, Phase.shrink), report_multiple_bugs=False,
              print_blob=False)
    @given(strategy)
    def run(case):
        body(case)

    try:
        run()
    except Mismatch:
        raise
    except Exception as exc:  # Hypothesis' Flaky and friends: the student's code is not a function
        inner = find_mismatch(exc)
        if inner is None:
            raise
        raise Mismatch(inner.input, inner.expected, inner.got,
                       (inner.note + "; " if inner.note else "")
                       + "your code gave different answers to the same input") from None


def find_mismatch(exc: BaseException) -> Optional[Mismatch]:
    if isinstance(exc, Mismatch):
        return exc
    for sub in getattr(exc, "exceptions", ()) or ():
        found = find_mismatch(sub)
        if found is not None:
            return found
    return None


def compare_logs(want: list[tuple], got: list[tuple], setting: str) -> None:
    for (step, w), (_, g) in zip(want, got):
        if w != g:
            if (isinstance(w, dict) and isinstance(g, dict)
                    and all(isinstance(v, list) for v in [*w.values(), *g.values()])):
                # node -> what it holds: show only the first node that differs.
                k = next(k for k in sorted(set(w) | set(g), key=str) if w.get(k) != g.get(k))
                step, w, g = f"{step}, node {k}", w.get(k), g.get(k)
            raise Mismatch(f"{setting}; at step: {step}", w, g,
                           "the cluster behaves differently with your part plugged in")
    if len(want) != len(got):
        raise Mismatch(setting, f"{len(want)} steps", f"{len(got)} steps")


def with_student_checks(ctx: Context, run: Callable[[], None]) -> Callable[[], None]:
    """Wrap a cluster run so that uses of the reference inside student code abort it."""
    def wrapped():
        try:
            run()
        finally:
            if STATE.reference_calls:
                used = sorted(set(STATE.reference_calls))
                STATE.reference_calls.clear()
                raise Abort(ctx.failure(ReferenceUsed,
                                        headline=f"your {ctx.what} {REFERENCE_USED_MARK}",
                                        note=f"while they ran they called {', '.join(used)}"))
    return wrapped


def start_check(invariant: str, func: str, what: str, seed: Optional[int], *parts: Any,
                replay: str = "") -> Context:
    """The context of one check, once each of the student's ``parts`` is found to be their own
    code (:func:`assert_own_code`). ``replay``: the call that replays it (default: the check
    called with ``<your WHAT>``)."""
    ctx = Context(invariant, func, what, seed, replay)
    for part in parts:
        assert_own_code(part, what, invariant=invariant, seed=seed, replay=ctx.replay)
    return ctx


def same_trace(ctx: Context, budget_s: float, run: Callable[[Any], tuple], reference: Any,
               student: Any, setting: str, *,
               differs: str = "another message, to another node, another answer, or at "
                              "another moment") -> None:
    """The differential check with the trace: ``run(parts)`` gives (what clients were told,
    step by step; the trace's lines; marks: how many lines there were when each step ended),
    with the reference's ``parts``, then with the student's. The first trace line that differs
    is reported (it is closest to the cause), with the step it belongs to and what the nodes
    may have done instead (``differs``); then what the clients were told."""
    def body():
        want, want_lines, marks = run(reference)
        try:
            got, got_lines, _ = run(student)
        except (Abort, StudentTimeout):
            raise
        except Exception as exc:
            raise Mismatch(f"{setting}; at {STATE.working_on}",
                           Expected("the cluster runs"), describe_exc(exc)) from None
        for i, (w, g) in enumerate(zip(want_lines, got_lines)):
            if w != g:
                during = next((step for end, step in marks if end > i), "the end")
                raise Mismatch(f"{setting}; trace line {i + 1}, during {during}", Expected(w),
                               Expected(g), f"your parts made the nodes do something else here "
                               f"({differs}); the line before: "
                               + (want_lines[i - 1] if i else "none"))
        if len(want_lines) != len(got_lines):
            raise Mismatch(f"{setting}; the trace", Expected(f"{len(want_lines)} lines"),
                           Expected(f"{len(got_lines)} lines"))
        compare_logs(want, got, setting)

    run_check(ctx, budget_s, with_student_checks(ctx, body))


def differential(ctx: Context, budget_s: float, run: Callable[[Any], list], reference: Any,
                 student: Any, setting: str, what_runs: str) -> None:
    """The differential check: ``run(parts)`` with the reference's ``parts``, then with the
    student's, in the same seeded ``setting``; the two logs of what clients and stores saw must
    match step by step. A crash inside the student's run is a mismatch at the step it was on."""
    def body():
        want = run(reference)
        try:
            got = run(student)
        except (Abort, StudentTimeout):
            raise
        except Exception as exc:
            raise Mismatch(f"{setting}; at {STATE.working_on}", Expected(what_runs),
                           describe_exc(exc)) from None
        compare_logs(want, got, setting)

    run_check(ctx, budget_s, with_student_checks(ctx, body))
