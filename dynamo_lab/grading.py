"""Grading helpers: what the labs' hidden tests call.

Every ``check_*`` function compares a student's part with the reference implementation, on many
generated inputs (Hypothesis, seeded, shrinking to the smallest failing input) or on a seeded
:class:`~dynamo_lab.SimCluster` run with the student's part swapped into every node. Only
observable behaviour is compared, so a correct solution written another way (other data
structures, other internal names, a list instead of a dict) passes.

A check that finds a problem raises :class:`GradingFailure` (an ``AssertionError``) whose message
says which promise broke (the invariant, named as in the notebook's test cell), the smallest
failing input, what the reference gives against what the student's code gave, and the seed to
replay it with::

    coordinator-owns-first-token-clockwise: a key belongs to the owner of the first token at or
    after its hash, wrapping past the top of the ring
      smallest failing input: nodes=['A', 'B'], vnodes=1, key='A#0'
      expected: 'A'
      got:      'B'
      note: key 'A#0' hashes exactly onto node A's token 0; a token owns the hashes up to and
            including its own position
      seed 1203: replay with grading.check_coordinator(<your ring class>, seed=1203)

A part that merely wraps or imports the reference (``dynamo_lab.Ring``, ``VectorClock``,
``reconcile``, ...) is flagged: every check raises :class:`ReferenceUsed`, whose message contains
:data:`REFERENCE_USED_MARK`, so it gets no marks. Two layers find it: the student's code is read
(bytecode, closures, base classes, the helpers it calls) and, while it runs, the reference's
methods are watched.

Student code runs under a time budget (``budget_s``): a loop that never ends fails its check
with the input it was working on instead of hanging the notebook.

Adapters plug a student's part into the reference node: :func:`student_ring_factory` (Lab 1) and
:func:`student_versioning` (Lab 2).
"""

from __future__ import annotations

import builtins
import contextlib
import dis
import functools
import json
import math
import os
import random
import signal
import sys
import sysconfig
import threading
import traceback
import types
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional, Sequence

from .errors import ConfigError
from .hashing import RING_SIZE, key_hash

__all__ = [
    "GradingFailure", "ReferenceUsed", "REFERENCE_USED_MARK", "TIMEOUT_MARK", "INVARIANTS",
    "Version", "StudentRingAdapter", "student_ring_factory", "student_versioning", "assert_own_code",
    "check_successor_index", "check_ring_tokens", "check_coordinator",
    "check_preference_list_distinct", "check_preference_list_order", "check_membership_changes",
    "check_bad_requests", "check_ownership", "check_moved_fraction", "check_ring_in_cluster",
    "check_increment", "check_merge", "check_compare_ordered", "check_compare_concurrent",
    "check_reconcile_drops_dominated", "check_reconcile_keeps_siblings", "check_merge_carts",
    "check_d1_d5_story", "check_clocks_in_cluster",
]

#: Text every "you used the reference" failure contains (the grader flags submissions by it).
REFERENCE_USED_MARK = "uses the reference implementation"
#: Text every "your code did not finish" failure contains.
TIMEOUT_MARK = "did not finish within"

DEFAULT_BUDGET_S = 30.0
#: A cluster using a student's reconcile refuses to hold more versions of one key than this.
MAX_SIBLINGS = 64

#: Every invariant a lab grades: name -> (lab, the promise in one sentence).
INVARIANTS: dict[str, tuple[str, str]] = {
    # Lab 1: consistent hashing
    "successor-is-first-token-at-or-after-hash": (
        "lab1", "successor_index returns the index of the first token >= h, and 0 when h is "
                "past the last token (the ring wraps round)"),
    "tokens-are-key-hash-of-node-and-index": (
        "lab1", "node X's i-th token is key_hash(f'{X}#{i}'), for i in range(vnodes); tokens() "
                "lists every (token, node) pair, sorted"),
    "coordinator-owns-first-token-clockwise": (
        "lab1", "a key belongs to the owner of the first token at or after its hash, wrapping "
                "past the top of the ring"),
    "preference-list-has-n-distinct-physical-nodes": (
        "lab1", "preference_list(key, n) names n different physical nodes of the ring"),
    "preference-list-walks-clockwise-from-coordinator": (
        "lab1", "preference_list(key, n) starts at the coordinator and walks the tokens "
                "clockwise, skipping nodes already listed"),
    "add-and-remove-node-keep-the-ring-consistent": (
        "lab1", "after add_node and remove_node the ring is the ring of its current nodes, and "
                "adding a present node or removing an absent one raises ValueError"),
    "bad-requests-raise-value-error": (
        "lab1", "a preference list of n < 1 or more nodes than the ring has, and the "
                "coordinator of a key on an empty ring, raise ValueError"),
    "ownership-is-each-nodes-share-of-the-ring": (
        "lab1", "ownership() gives each node the total width of the arcs (previous token, "
                "token] of its tokens, as a fraction of the ring; the shares sum to 1"),
    "moved-fraction-counts-keys-whose-replicas-change": (
        "lab1", "moved_fraction(old, new, keys, n) is the fraction of keys whose set of n "
                "replicas differs between the two rings"),
    "cluster-with-your-ring-matches-the-reference": (
        "lab1", "a cluster whose nodes use your ring stores, serves and hands off every key "
                "exactly as the reference cluster does (same seed, same workload)"),
    # Lab 2: vector clocks
    "increment-bumps-only-the-coordinator": (
        "lab2", "increment(clock, node) returns a new clock with node's counter one higher and "
                "every other counter unchanged; the input is not modified"),
    "merge-is-the-pointwise-maximum": (
        "lab2", "merge(a, b) returns a new clock holding, for every node of either, the larger "
                "of the two counters; the inputs are not modified"),
    "compare-orders-equal-and-descending-clocks": (
        "lab2", "compare(a, b) is EQUAL for equal counters, AFTER when a strictly descends b, "
                "BEFORE when b strictly descends a"),
    "compare-detects-concurrent-clocks": (
        "lab2", "compare(a, b) is CONCURRENT when neither clock descends the other"),
    "reconcile-drops-every-dominated-version": (
        "lab2", "reconcile keeps no version that another version strictly descends, keeps one "
                "version per clock, and only returns versions it was given"),
    "reconcile-keeps-every-concurrent-sibling": (
        "lab2", "reconcile keeps every version that no other version strictly descends"),
    "merge-carts-keeps-every-item": (
        "lab2", "merge_carts(siblings) is the sorted union of the siblings' items, each once"),
    "d1-d5-story-with-your-clocks": (
        "lab2", "the paper's D1..D5 story, replayed on a cluster using your clock logic, gives "
                "the paper's clocks and siblings"),
    "cluster-with-your-clocks-matches-the-reference": (
        "lab2", "a cluster whose nodes use your clock logic answers every get and put of a "
                "seeded concurrent workload exactly as the reference cluster does"),
}


# =============================================================================================
# Failures
# =============================================================================================

class GradingFailure(AssertionError):
    """A broken promise, found by a check. ``str()`` is the whole report.

    Attributes: ``invariant``, ``input`` (text), ``expected``, ``got``, ``seed``, ``replay``
    (the call that reproduces it) and ``note`` (a hint, may be empty).
    """

    def __init__(self, invariant: str, *, input: str = "", expected: Any = None,
                 got: Any = None, seed: Optional[int] = None, replay: str = "",
                 note: str = "", headline: str = ""):
        self.invariant, self.input, self.expected, self.got = invariant, input, expected, got
        self.seed, self.replay, self.note = seed, replay, note
        promise = INVARIANTS.get(invariant, ("", ""))[1]
        lines = [f"{invariant}: {headline or promise}"]
        if input:
            lines.append(f"  smallest failing input: {input}")
        if expected is not None or got is not None:
            lines.append(f"  expected: {_show(expected)}")
            lines.append(f"  got:      {_show(got)}")
        if note:
            lines.append(f"  note: {note}")
        if seed is not None:
            lines.append(f"  seed {seed}: replay with {replay}" if replay else f"  seed {seed}")
        super().__init__("\n".join(lines))


class ReferenceUsed(GradingFailure):
    """The student's part calls or wraps the reference implementation: no marks."""


class _Expected(str):
    """A text shown verbatim (not repr'd) in expected / got."""


def _show(x: Any) -> str:
    if isinstance(x, _Expected):
        return str(x)
    text = repr(x)
    return text if len(text) <= 400 else text[:400] + " ..."


class _Mismatch(Exception):
    """Raised inside a Hypothesis run: the example broke the invariant (Hypothesis shrinks it)."""

    def __init__(self, input: str, expected: Any, got: Any, note: str = ""):
        super().__init__(input)
        self.input, self.expected, self.got, self.note = input, expected, got, note


class _Abort(BaseException):
    """Stop the whole check at once, without shrinking (not implemented, reference used...).

    A ``BaseException`` so that neither Hypothesis nor a student's ``except Exception`` keeps it.
    """

    def __init__(self, failure: GradingFailure):
        super().__init__(str(failure))
        self.failure = failure


class _StudentTimeout(BaseException):
    """Raised by the budget timer inside whatever code is running."""


# =============================================================================================
# Running student code: scope, reference tripwire, time budget
# =============================================================================================

class _State(threading.local):
    def __init__(self) -> None:
        self.student_depth = 0
        self.reference_calls: list[str] = []
        self.working_on = ""


_STATE = _State()


def _watched_methods() -> list[tuple[type, str]]:
    """The reference methods a student part must never reach (everything else in the reference,
    such as reconcile or moved_keys, goes through one of them)."""
    from .ring import Ring
    from .vclock import VectorClock
    from .versions import Versioned
    ring = ["__init__", "from_tokens", "coordinator", "preference_list", "preference_list_for_hash",
            "successors", "ownership", "ranges", "range_of", "replica_ranges", "replicas_of_range",
            "add_node", "remove_node", "tokens_of", "token_map", "copy", "_walk", "_index"]
    clock = ["__init__", "_make", "increment", "merge", "descends", "compare", "concurrent_with",
             "truncate"]
    return ([(Ring, m) for m in ring] + [(VectorClock, m) for m in clock]
            + [(Versioned, "descends")])


_TRIPWIRE_DEPTH = 0
_SAVED: list[tuple[type, str, Any]] = []


def _make_watcher(owner: type, name: str, raw: Any) -> Any:
    label = f"dynamo_lab.{owner.__name__}.{name.lstrip('_') if name != '__init__' else '__init__'}"
    if isinstance(raw, classmethod):
        fn = raw.__func__

        @functools.wraps(fn)
        def watched_cls(*args, **kwargs):
            if _STATE.student_depth:
                _STATE.reference_calls.append(label)
            return fn(*args, **kwargs)
        return classmethod(watched_cls)

    @functools.wraps(raw)
    def watched(*args, **kwargs):
        if _STATE.student_depth:
            _STATE.reference_calls.append(label)
        return raw(*args, **kwargs)
    return watched


@contextlib.contextmanager
def _tripwire():
    """Watch the reference's methods while a check runs; restore them afterwards."""
    global _TRIPWIRE_DEPTH
    if _TRIPWIRE_DEPTH == 0:
        for owner, name in _watched_methods():
            raw = owner.__dict__.get(name)
            if raw is None:
                continue
            _SAVED.append((owner, name, raw))
            setattr(owner, name, _make_watcher(owner, name, raw))
    _TRIPWIRE_DEPTH += 1
    try:
        yield
    finally:
        _TRIPWIRE_DEPTH -= 1
        if _TRIPWIRE_DEPTH == 0:
            while _SAVED:
                owner, name, raw = _SAVED.pop()
                setattr(owner, name, raw)


@contextlib.contextmanager
def _budget(seconds: float):
    """Raise :class:`_StudentTimeout` in the running code once ``seconds`` have passed.

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
        raise _StudentTimeout()

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_timer = signal.setitimer(signal.ITIMER_REAL, seconds, 0.25)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_timer[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, *old_timer)


def _where_in_student_code(exc: BaseException) -> str:
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


def _describe_exc(exc: BaseException) -> _Expected:
    return _Expected(f"raised {type(exc).__name__}: {exc}{_where_in_student_code(exc)}")


class _Context:
    """What one check is: its invariant, seed, the replay call; turns problems into failures."""

    def __init__(self, invariant: str, func: str, what: str, seed: Optional[int],
                 replay: str = ""):
        self.invariant, self.func, self.what, self.seed = invariant, func, what, seed
        self.replay = replay or f"grading.{func}(<your {what}>, seed={seed})"

    def failure(self, cls=GradingFailure, **kw) -> GradingFailure:
        kw.setdefault("seed", self.seed)
        kw.setdefault("replay", self.replay)
        return cls(self.invariant, **kw)

    def call(self, fn: Callable, *args, **kwargs) -> tuple[Any, Optional[BaseException]]:
        """Run student code. Returns ``(value, None)`` or ``(None, exception)``; aborts the check
        for ``NotImplementedError`` and for any use of the reference."""
        _STATE.student_depth += 1
        try:
            return fn(*args, **kwargs), None
        except NotImplementedError as exc:
            raise _Abort(self.failure(
                headline="not implemented yet",
                note=f"{getattr(fn, '__qualname__', 'your code')} raised NotImplementedError"
                     f"{_where_in_student_code(exc)}; replace it with your implementation")) from None
        except Exception as exc:  # the student's bug: reported as what it returned
            if getattr(exc, "abort_check", False):   # the sandbox stopped: nothing more to ask
                raise _Abort(self.failure(headline=str(exc), input=_STATE.working_on)) from None
            return None, exc
        finally:
            _STATE.student_depth -= 1
            if _STATE.reference_calls:
                used = sorted(set(_STATE.reference_calls))
                _STATE.reference_calls.clear()
                raise _Abort(self.failure(
                    ReferenceUsed, headline=f"your {self.what} {REFERENCE_USED_MARK}",
                    note=f"while it ran it called {', '.join(used)}. The lab's parts must be "
                         f"your own code; this check gives no marks while they use the reference"))


    def result(self, text: str, want: Any, fn: Callable, *args) -> Any:
        """What student code returns for one case; a raised exception is a mismatch on
        ``text`` (the input), with ``want`` as the expected value."""
        _STATE.working_on = text
        got, err = self.call(fn, *args)
        if err is not None:
            raise _Mismatch(text, want, _describe_exc(err))
        return got

    def raises_value_error(self, text: str, fn: Callable, *args, why: str = "") -> None:
        """Student code must raise a ``ValueError`` (or a subclass) for this bad input."""
        _STATE.working_on = text
        _, err = self.call(fn, *args)
        if not isinstance(err, ValueError):
            raise _Mismatch(text, _Expected("raises ValueError" + (f" ({why})" if why else "")),
                            _describe_exc(err) if err else _Expected("returned normally"))


@contextlib.contextmanager
def _student_scope():
    """Mark code as the student's (for the tripwire) without the other bookkeeping of call()."""
    _STATE.student_depth += 1
    try:
        yield
    finally:
        _STATE.student_depth -= 1


def _run_check(ctx: _Context, budget_s: float, body: Callable[[], None]) -> None:
    """Run ``body`` with the tripwire on and the time budget, turning internal signals into
    one clean :class:`GradingFailure`, raised outside every ``except`` (no chained traceback:
    a student sees one frame and the message)."""
    __tracebackhide__ = True
    failure: Optional[GradingFailure] = None
    _STATE.reference_calls.clear()
    _STATE.working_on = ""
    with _tripwire():
        try:
            with _budget(budget_s):
                body()
        except _Abort as abort:
            failure = abort.failure
        except _StudentTimeout:
            failure = ctx.failure(
                headline=f"your {ctx.what} {TIMEOUT_MARK} {budget_s:g} s",
                input=_STATE.working_on,
                note="an endless loop? (the reference needs well under a second for the whole "
                     "check)")
        except _Mismatch as m:
            failure = ctx.failure(input=m.input, expected=m.expected, got=m.got, note=m.note)
    if failure is not None:
        raise failure


def _hypothesis_run(ctx: _Context, strategy, examples: int, body: Callable[[Any], None]) -> None:
    """Run ``body(case)`` on ``examples`` cases from ``strategy``; Hypothesis shrinks a failing
    case (``body`` raises :class:`_Mismatch`) to the smallest one, which is what is reported."""
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
    except _Mismatch:
        raise
    except Exception as exc:  # Hypothesis' Flaky and friends: the student's code is not a function
        inner = _find_mismatch(exc)
        if inner is None:
            raise
        raise _Mismatch(inner.input, inner.expected, inner.got,
                        (inner.note + "; " if inner.note else "")
                        + "your code gave different answers to the same input") from None


def _find_mismatch(exc: BaseException) -> Optional[_Mismatch]:
    if isinstance(exc, _Mismatch):
        return exc
    for sub in getattr(exc, "exceptions", ()) or ():
        found = _find_mismatch(sub)
        if found is not None:
            return found
    return None


# =============================================================================================
# Is it the student's own code?
# =============================================================================================

_FORBIDDEN_MODULES = ("dynamo_lab.ring", "dynamo_lab.vclock", "dynamo_lab.versions",
                      "dynamo_lab.node", "dynamo_lab.node.config", "dynamo_lab.node.core",
                      "dynamo_lab.cluster")


@functools.lru_cache(maxsize=1)
def _forbidden_objects() -> dict[int, str]:
    """id -> public name of every reference object a student part must not use (modules and
    classes live as long as the process, so their ids are stable)."""
    from . import ring, vclock, versions
    from .node import config
    objs = {
        "dynamo_lab.Ring": ring.Ring, "dynamo_lab.KeyRange": ring.KeyRange,
        "dynamo_lab.moved_keys": ring.moved_keys, "dynamo_lab.transfers": ring.transfers,
        "dynamo_lab.VectorClock": vclock.VectorClock, "dynamo_lab.Versioned": versions.Versioned,
        "dynamo_lab.reconcile": versions.reconcile, "dynamo_lab.merged_clock": versions.merged_clock,
        "dynamo_lab.live_values": versions.live_values, "dynamo_lab.Versioning": config.Versioning,
    }
    return {id(obj): name for name, obj in objs.items()}


def _is_reference_module(obj: Any) -> bool:
    return isinstance(obj, types.ModuleType) and obj.__name__.startswith("dynamo_lab")


def _resolve(name: str, fn_globals: Mapping[str, Any]) -> Any:
    if name in fn_globals:
        return fn_globals[name]
    return getattr(builtins, name, None)


def _scan_code(code: types.CodeType, fn_globals: Mapping[str, Any],
               closure: Mapping[str, Any], found: list[str], todo: list[Any], where: str) -> None:
    forbidden = _forbidden_objects()
    current: Any = None        # the object the previous instruction loaded, when known
    importing: Optional[str] = None
    for ins in dis.get_instructions(code):
        op, arg = ins.opname, ins.argval
        if op in ("LOAD_GLOBAL", "LOAD_NAME"):
            current = _resolve(arg, fn_globals)
        elif op in ("LOAD_DEREF", "LOAD_CLASSDEREF") and arg in closure:
            current = closure[arg]
        elif op in ("LOAD_ATTR", "LOAD_METHOD") and current is not None:
            current = getattr(current, arg, None) if _is_reference_module(current) else None
        elif op == "IMPORT_NAME":
            importing = arg
            if arg in _FORBIDDEN_MODULES:
                found.append(f"{where} imports {arg}")
            current = None
            continue
        elif op == "IMPORT_FROM" and importing and importing.startswith("dynamo_lab"):
            mod = __import__(importing, fromlist=[arg])
            obj = getattr(mod, arg, None)
            if id(obj) in forbidden:
                found.append(f"{where} imports {forbidden[id(obj)]}")
            continue
        elif op == "IMPORT_STAR" and importing == "dynamo_lab":
            found.append(f"{where} does 'from dynamo_lab import *'")
            continue
        else:
            current = None
            continue
        if current is None:
            continue
        if id(current) in forbidden:
            found.append(f"{where} uses {forbidden[id(current)]}")
            current = None
        elif isinstance(current, (types.FunctionType, type)):
            todo.append(current)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _scan_code(const, fn_globals, closure, found, todo, where)


def _user_functions(obj: Any) -> list[tuple[str, types.FunctionType]]:
    if isinstance(obj, types.FunctionType):
        return [(obj.__qualname__, obj)]
    if isinstance(obj, types.MethodType):
        return _user_functions(obj.__func__)
    if isinstance(obj, type):
        out = []
        for name, attr in sorted(vars(obj).items()):
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if isinstance(attr, property):
                for f in (attr.fget, attr.fset, attr.fdel):
                    if isinstance(f, types.FunctionType):
                        out.append((f.__qualname__, f))
            elif isinstance(attr, types.FunctionType):
                out.append((attr.__qualname__, attr))
        return out
    return []


def _reference_uses(obj: Any) -> list[str]:
    """Where ``obj`` (a function or class, and the student helpers it reaches) uses the
    reference implementation: a list of human-readable findings, empty when it does not."""
    forbidden = _forbidden_objects()
    found: list[str] = []
    seen: set[int] = set()
    todo: list[Any] = [obj]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if id(item) in forbidden:
            found.append(f"it is {forbidden[id(item)]}")
            continue
        if _is_library(item):
            continue
        if isinstance(item, type):
            for base in item.__mro__[1:]:
                if id(base) in forbidden:
                    found.append(f"class {item.__qualname__} inherits from {forbidden[id(base)]}")
                elif base is not object and not _is_library(base):
                    todo.append(base)
            for name, attr in sorted(vars(item).items()):
                if id(attr) in forbidden:
                    found.append(f"class {item.__qualname__} holds {forbidden[id(attr)]} as {name}")
        for qualname, fn in _user_functions(item):
            closure = {}
            if fn.__closure__:
                for var, cell in zip(fn.__code__.co_freevars, fn.__closure__):
                    try:
                        closure[var] = cell.cell_contents
                    except ValueError:
                        continue
            for var, value in closure.items():
                if id(value) in forbidden:
                    found.append(f"{qualname} captures {forbidden[id(value)]}")
            for default in (fn.__defaults__ or ()) + tuple((fn.__kwdefaults__ or {}).values()):
                if id(default) in forbidden:
                    found.append(f"{qualname} has {forbidden[id(default)]} as a default")
            _scan_code(fn.__code__, fn.__globals__, closure, found, todo, qualname)
    return sorted(set(found))


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")
             if paths.get(k)}
    return tuple(sorted(roots))


def _is_library(obj: Any) -> bool:
    """True for objects of installed packages, the standard library and dynamo_lab itself (not
    scanned); False for the student's code (a notebook's ``__main__``, or any other file)."""
    module = getattr(obj, "__module__", None) or ""
    if module == "__main__" or module.startswith("__"):
        return False
    if module == "builtins" or module.startswith("dynamo_lab"):
        return True
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if path is None:
        return module in sys.builtin_module_names
    path = os.path.realpath(path)
    return any(path.startswith(root + os.sep) for root in _library_roots())


def assert_own_code(obj: Any, what: str = "code", *, invariant: str = "",
                    seed: Optional[int] = None, replay: str = "") -> None:
    """Raise :class:`ReferenceUsed` if ``obj`` (a student's function or class) uses the
    reference implementation directly: imports, names, base classes, closures, helpers."""
    __tracebackhide__ = True
    found = _reference_uses(obj)
    if found:
        raise ReferenceUsed(invariant or "own-code", headline=f"your {what} {REFERENCE_USED_MARK}",
                            note="; ".join(found) + ". The lab's parts must be your own code; "
                                 "this check gives no marks while they use the reference",
                            seed=seed, replay=replay)


def _start(invariant: str, func: str, what: str, seed: Optional[int], *parts: Any) -> _Context:
    ctx = _Context(invariant, func, what, seed)
    for part in parts:
        assert_own_code(part, what, invariant=invariant, seed=seed, replay=ctx.replay)
    return ctx


# =============================================================================================
# Lab 1: consistent hashing
# =============================================================================================

_NAMES = ("A", "B", "C", "D", "E", "F", "G")


class _ReferenceRing:
    """The reference ring behind the students' API (trusted: used for expected values)."""

    def __init__(self, nodes: Iterable[str], vnodes: int = 8):
        from .ring import Ring
        self._ring = Ring(list(nodes), vnodes)

    def tokens(self) -> list[tuple[int, str]]:
        return list(self._ring.tokens)

    def coordinator(self, key: str) -> str:
        return self._ring.coordinator(key)

    def preference_list(self, key: str, n: int) -> list[str]:
        return self._ring.preference_list(key, n)

    def add_node(self, node: str) -> None:
        self._ring.add_node(node)

    def remove_node(self, node: str) -> None:
        self._ring.remove_node(node)

    def ownership(self) -> dict[str, float]:
        return self._ring.ownership()


def _ring_strategies():
    from hypothesis import strategies as st

    @st.composite
    def ring_case(draw, min_nodes: int = 1, max_keys: int = 8):
        nodes = draw(st.lists(st.sampled_from(_NAMES), min_size=min_nodes, max_size=5, unique=True))
        vnodes = draw(st.integers(1, 6))
        # Keys named like tokens hash exactly onto a token: that is where off-by-ones live.
        on_token = st.sampled_from([f"{x}#{i}" for x in nodes for i in range(vnodes)])
        plain = st.text(alphabet="abckxyz0123:", min_size=1, max_size=6)
        keys = draw(st.lists(st.one_of(on_token, plain), min_size=1, max_size=max_keys))
        return nodes, vnodes, keys

    return ring_case


def _ring_input(nodes, vnodes, key=None, extra: str = "") -> str:
    text = f"nodes={list(nodes)!r}, vnodes={vnodes}"
    if key is not None:
        text += f", key={key!r}"
    return text + (", " + extra if extra else "")


def _on_token_note(nodes, vnodes, key) -> str:
    h = key_hash(key)
    for x in nodes:
        for i in range(vnodes):
            if key_hash(f"{x}#{i}") == h:
                return (f"key {key!r} hashes exactly onto node {x}'s token {i}; a token owns "
                        f"the hashes up to and including its own position")
    return ""


def _build_ring(ctx: _Context, ring_class, nodes, vnodes, input_text: str):
    ring, err = ctx.call(ring_class, list(nodes), vnodes)
    if err is not None:
        raise _Mismatch(input_text, _Expected("a ring"), _describe_exc(err))
    return ring


def check_successor_index(successor_index: Callable, *, seed: int = 1101, examples: int = 200,
                          budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``successor-is-first-token-at-or-after-hash``: ``successor_index(tokens, h)``
    is the index of the first token ``>= h`` in the sorted list ``tokens``, wrapping to 0; an
    empty list raises ``ValueError``."""
    __tracebackhide__ = True
    from bisect import bisect_left
    from hypothesis import strategies as st
    ctx = _start("successor-is-first-token-at-or-after-hash", "check_successor_index",
                 "successor_index", seed, successor_index)

    @st.composite
    def case(draw):
        small = st.integers(0, 64)
        anywhere = st.integers(0, RING_SIZE - 1)
        tokens = sorted(set(draw(st.lists(st.one_of(small, anywhere), min_size=1, max_size=8))))
        near = [t + d for t in tokens for d in (-1, 0, 1) if 0 <= t + d < RING_SIZE]
        h = draw(st.one_of(st.sampled_from(near + [0, RING_SIZE - 1]), anywhere))
        return tokens, h

    def body(c):
        tokens, h = c
        text = f"tokens={tokens!r}, h={h!r}"
        want = bisect_left(tokens, h) % len(tokens)
        got = ctx.result(text, want, successor_index, list(tokens), h)
        if type(got) is not int or got != want:
            note = ""
            if h in tokens:
                note = "h equals a token: that token is the first one >= h"
            elif h > tokens[-1]:
                note = "h is past the last token: the walk wraps round to index 0"
            raise _Mismatch(text, want, got, note)

    def run():
        _hypothesis_run(ctx, case(), examples, body)
        ctx.raises_value_error("tokens=[], h=5", successor_index, [], 5, why="no tokens")

    _run_check(ctx, budget_s, run)


def check_ring_tokens(ring_class: type, *, seed: int = 1202, examples: int = 60,
                      budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``tokens-are-key-hash-of-node-and-index``."""
    __tracebackhide__ = True
    ctx = _start("tokens-are-key-hash-of-node-and-index", "check_ring_tokens", "ring class",
                 seed, ring_class)

    def body(c):
        nodes, vnodes, _keys = c
        text = _ring_input(nodes, vnodes)
        want = _ReferenceRing(nodes, vnodes).tokens()
        ring = _build_ring(ctx, ring_class, nodes, vnodes, text)
        got = ctx.result(text, want, lambda: ring.tokens())
        try:
            got_list = [(t, x) for t, x in got]
        except (TypeError, ValueError):
            raise _Mismatch(text, want, got, "tokens() returns a list of (token, node) pairs") from None
        if got_list != want:
            note = ""
            if sorted(got_list) == want:
                note = "the right pairs, but not sorted by token"
            elif len(got_list) != len(want):
                note = f"{len(want)} tokens expected: vnodes={vnodes} for each of {len(nodes)} nodes"
            raise _Mismatch(text, want, got_list, note)

    _run_check(ctx, budget_s, lambda: _hypothesis_run(ctx, _ring_strategies()(), examples, body))


def check_coordinator(ring_class: type, *, seed: int = 1203, examples: int = 120,
                      budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``coordinator-owns-first-token-clockwise``."""
    __tracebackhide__ = True
    ctx = _start("coordinator-owns-first-token-clockwise", "check_coordinator", "ring class",
                 seed, ring_class)

    def body(c):
        nodes, vnodes, keys = c
        ref = _ReferenceRing(nodes, vnodes)
        ring = _build_ring(ctx, ring_class, nodes, vnodes, _ring_input(nodes, vnodes))
        for key in keys:
            text = _ring_input(nodes, vnodes, key)
            want = ref.coordinator(key)
            got = ctx.result(text, want, ring.coordinator, key)
            if got != want:
                raise _Mismatch(text, want, got, _on_token_note(nodes, vnodes, key))

    _run_check(ctx, budget_s, lambda: _hypothesis_run(ctx, _ring_strategies()(), examples, body))


def _check_preference_lists(ctx, ring_class, examples, exact: bool) -> None:
    def body(c):
        nodes, vnodes, keys = c
        ref = _ReferenceRing(nodes, vnodes)
        ring = _build_ring(ctx, ring_class, nodes, vnodes, _ring_input(nodes, vnodes))
        for key in keys:
            for n in range(1, len(nodes) + 1):
                text = _ring_input(nodes, vnodes, key, f"n={n}")
                want = ref.preference_list(key, n)
                got = ctx.result(text, want, ring.preference_list, key, n)
                try:
                    got = list(got)
                except TypeError:
                    raise _Mismatch(text, want, got, "preference_list returns a list") from None
                if exact:
                    if got != want:
                        note = _on_token_note(nodes, vnodes, key)
                        if sorted(got) == sorted(want):
                            note = "the right nodes in the wrong order: walk clockwise"
                        raise _Mismatch(text, want, got, note)
                    continue
                repeats = sorted({x for x in got if got.count(x) > 1}, key=str)
                strangers = [x for x in got if x not in nodes]
                if len(got) != n or repeats or strangers:
                    note = (f"{repeats} appear(s) more than once: skip the tokens of nodes "
                            f"already listed" if repeats else
                            f"{strangers} are not nodes of the ring" if strangers else
                            f"{n} nodes were asked for")
                    raise _Mismatch(text, want, got, note)

    _hypothesis_run(ctx, _ring_strategies()(min_nodes=1, max_keys=5), examples, body)


def check_preference_list_distinct(ring_class: type, *, seed: int = 1204, examples: int = 100,
                                   budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``preference-list-has-n-distinct-physical-nodes``."""
    __tracebackhide__ = True
    ctx = _start("preference-list-has-n-distinct-physical-nodes", "check_preference_list_distinct",
                 "ring class", seed, ring_class)
    _run_check(ctx, budget_s, lambda: _check_preference_lists(ctx, ring_class, examples, False))


def check_preference_list_order(ring_class: type, *, seed: int = 1205, examples: int = 100,
                                budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``preference-list-walks-clockwise-from-coordinator``."""
    __tracebackhide__ = True
    ctx = _start("preference-list-walks-clockwise-from-coordinator", "check_preference_list_order",
                 "ring class", seed, ring_class)
    _run_check(ctx, budget_s, lambda: _check_preference_lists(ctx, ring_class, examples, True))


def check_membership_changes(ring_class: type, *, seed: int = 1206, examples: int = 60,
                             budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``add-and-remove-node-keep-the-ring-consistent``: after any sequence of
    ``add_node`` / ``remove_node`` the ring places keys exactly as a ring built from scratch
    with its current nodes; adding a present node or removing an absent one raises
    ``ValueError``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    ctx = _start("add-and-remove-node-keep-the-ring-consistent", "check_membership_changes",
                 "ring class", seed, ring_class)
    keys = [f"user:{i}" for i in range(12)]

    @st.composite
    def case(draw):
        nodes = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=4, unique=True))
        vnodes = draw(st.integers(1, 5))
        ops = draw(st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.sampled_from(_NAMES)),
                            min_size=1, max_size=6))
        return nodes, vnodes, ops

    def body(c):
        nodes, vnodes, ops = c
        ref = _ReferenceRing(nodes, vnodes)
        current = list(nodes)
        ring = _build_ring(ctx, ring_class, nodes, vnodes, _ring_input(nodes, vnodes))
        done: list[str] = []
        for op, node in ops:
            done.append(f"{op}_node({node!r})")
            text = _ring_input(nodes, vnodes, extra="then " + ", ".join(done))
            present = node in current
            if (op == "add") == present:
                ctx.raises_value_error(text, getattr(ring, f"{op}_node"), node,
                                       why=f"{node!r} is {'already' if present else 'not'} in the ring")
                continue
            ctx.result(text, _Expected("returns normally"), getattr(ring, f"{op}_node"), node)
            getattr(ref, f"{op}_node")(node)
            if op == "add":
                current.append(node)
            else:
                current.remove(node)
            if not current:
                continue
            n = min(3, len(current))
            for key in keys:
                want = ref.preference_list(key, n)
                where = text + f"; preference_list({key!r}, {n})"
                got = list(ctx.result(where, want, ring.preference_list, key, n))
                if got != want:
                    raise _Mismatch(where, want, got, f"the ring now holds {sorted(current)}")

    _run_check(ctx, budget_s, lambda: _hypothesis_run(ctx, case(), examples, body))


def check_bad_requests(ring_class: type, *, seed: int = 1207, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``bad-requests-raise-value-error``."""
    __tracebackhide__ = True
    ctx = _start("bad-requests-raise-value-error", "check_bad_requests", "ring class", seed,
                 ring_class)

    def expect_value_error(text, thunk):
        ctx.raises_value_error(text, thunk)

    def run():
        name = getattr(ring_class, "__name__", "Ring")
        three = _build_ring(ctx, ring_class, ["A", "B", "C"], 2, "nodes=['A', 'B', 'C'], vnodes=2")
        expect_value_error(f"{name}(['A', 'B', 'C'], 2).preference_list('cart', 4)",
                           lambda: three.preference_list("cart", 4))
        expect_value_error(f"{name}(['A', 'B', 'C'], 2).preference_list('cart', 0)",
                           lambda: three.preference_list("cart", 0))
        empty = _build_ring(ctx, ring_class, [], 2, "nodes=[], vnodes=2")
        expect_value_error(f"{name}([], 2).coordinator('cart')", lambda: empty.coordinator("cart"))
        expect_value_error(f"{name}([], 2).preference_list('cart', 1)",
                           lambda: empty.preference_list("cart", 1))
        expect_value_error(f"{name}(['A', 'A'], 2)", lambda: ring_class(["A", "A"], 2))
        expect_value_error(f"{name}(['A'], 0)", lambda: ring_class(["A"], 0))

    _run_check(ctx, budget_s, run)


def check_ownership(ring_class: type, *, seed: int = 1208, examples: int = 80,
                    budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``ownership-is-each-nodes-share-of-the-ring`` (to within 1e-9)."""
    __tracebackhide__ = True
    ctx = _start("ownership-is-each-nodes-share-of-the-ring", "check_ownership", "ring class",
                 seed, ring_class)

    def body(c):
        nodes, vnodes, _keys = c
        text = _ring_input(nodes, vnodes)
        want = _ReferenceRing(nodes, vnodes).ownership()
        ring = _build_ring(ctx, ring_class, nodes, vnodes, text)
        got = ctx.result(text, want, lambda: ring.ownership())
        try:
            got = {x: float(v) for x, v in dict(got).items()}
        except (TypeError, ValueError):
            raise _Mismatch(text, want, got, "ownership() returns a dict node -> fraction") from None
        if sorted(got) != sorted(want):
            raise _Mismatch(text, want, got, "one entry per physical node")
        bad = [x for x in sorted(want) if not math.isclose(got[x], want[x], rel_tol=1e-9, abs_tol=1e-12)]
        if bad:
            total = sum(got.values())
            note = (f"your shares sum to {total:.6f}, not 1" if not math.isclose(total, 1.0, rel_tol=1e-9)
                    else f"node {bad[0]}'s share differs: an arc (previous token, token] belongs "
                         f"to the token's node, and the first arc wraps past the top of the ring")
            raise _Mismatch(text, want, got, note)

    _run_check(ctx, budget_s, lambda: _hypothesis_run(ctx, _ring_strategies()(), examples, body))


class _FrozenRing:
    """A ring stand-in that answers preference_list from a table (no reference code runs while
    a student's function reads it)."""

    def __init__(self, table: Mapping[tuple[str, int], list[str]], nodes: list[str]):
        self._table = dict(table)
        self.nodes = list(nodes)

    def preference_list(self, key: str, n: int) -> list[str]:
        try:
            return list(self._table[(key, n)])
        except KeyError:
            raise ValueError(f"this test ring only knows the keys it was given; asked for "
                             f"preference_list({key!r}, {n})") from None

    def __repr__(self) -> str:
        return f"<ring of {self.nodes}>"


def check_moved_fraction(moved_fraction: Callable, *, seed: int = 1209, examples: int = 80,
                         budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``moved-fraction-counts-keys-whose-replicas-change``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    ctx = _start("moved-fraction-counts-keys-whose-replicas-change", "check_moved_fraction",
                 "moved_fraction", seed, moved_fraction)

    @st.composite
    def case(draw):
        old = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=5, unique=True))
        new = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=5, unique=True))
        vnodes = draw(st.integers(1, 4))
        keys = draw(st.lists(st.text(alphabet="abxyz019", min_size=1, max_size=4), min_size=1,
                             max_size=10, unique=True))
        n = draw(st.integers(1, min(len(old), len(new))))
        return old, new, vnodes, keys, n

    def body(c):
        old_nodes, new_nodes, vnodes, keys, n = c
        text = (f"old ring of {old_nodes}, new ring of {new_nodes} (vnodes={vnodes}), "
                f"keys={keys!r}, n={n}")
        _STATE.working_on = text
        old, new = _ReferenceRing(old_nodes, vnodes), _ReferenceRing(new_nodes, vnodes)
        table_old = {(k, n): old.preference_list(k, n) for k in keys}
        table_new = {(k, n): new.preference_list(k, n) for k in keys}
        moved = sum(1 for k in keys if set(table_old[(k, n)]) != set(table_new[(k, n)]))
        want = moved / len(keys)
        got = ctx.result(text, want, moved_fraction, _FrozenRing(table_old, old_nodes),
                         _FrozenRing(table_new, new_nodes), list(keys), n)
        if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isclose(got, want, abs_tol=1e-9):
            note = ("a key whose replicas are the same nodes in another order has not moved"
                    if any(table_old[(k, n)] != table_new[(k, n)] and
                           set(table_old[(k, n)]) == set(table_new[(k, n)]) for k in keys) else "")
            raise _Mismatch(text, want, got, note)

    def run():
        _hypothesis_run(ctx, case(), examples, body)
        ring = _FrozenRing({}, ["A"])
        ctx.raises_value_error("keys=[] (no keys at all)", moved_fraction, ring, ring, [], 1)

    _run_check(ctx, budget_s, run)


# -- the student's ring inside the reference cluster -------------------------------------------

class StudentRingAdapter:
    """What a node needs from a ring, on top of a student's ring.

    Built by :func:`student_ring_factory` from the node's member map ``{node: tokens}``: the
    student's class is given the node ids and ``vnodes`` and computes the same tokens itself.
    Offers ``nodes``, ``preference_list``, ``successors`` (the sloppy quorum's walk),
    ``coordinator``, ``tokens`` and ``tokens_of``. It has no ``replica_ranges``, so anti-entropy
    is skipped on such a cluster. With ``strict`` (the default) a preference list that is not
    ``n`` distinct nodes of the ring raises :class:`ConfigError` naming the key.
    """

    def __init__(self, ring_class: type, members: Mapping[str, Sequence[int]], vnodes: int,
                 *, strict: bool = True, trusted: bool = False):
        self.nodes = sorted(members)
        self.vnodes = vnodes
        self.strict = strict
        self._trusted = trusted
        with self._scope():
            self.ring = ring_class(list(self.nodes), vnodes)

    def _scope(self):
        return contextlib.nullcontext() if self._trusted else _student_scope()

    def preference_list(self, key: str, n: int) -> list[str]:
        with self._scope():
            out = list(self.ring.preference_list(key, n))
        if self.strict and (len(out) != n or len(set(out)) != n or
                            any(x not in self.nodes for x in out)):
            raise ConfigError(f"your preference_list({key!r}, {n}) returned {out!r}; a node "
                              f"needs {n} distinct nodes of the ring {self.nodes}")
        return out

    def successors(self, key: str) -> list[str]:
        return self.preference_list(key, len(self.nodes))

    def coordinator(self, key: str) -> str:
        with self._scope():
            return self.ring.coordinator(key)

    def tokens(self) -> list[tuple[int, str]]:
        with self._scope():
            return [(t, x) for t, x in self.ring.tokens()]

    def tokens_of(self, node: str) -> list[int]:
        return [t for t, x in self.tokens() if x == node]


def student_ring_factory(ring_class: type, vnodes: int = 8, *, strict: bool = True,
                         _trusted: bool = False) -> Callable[[Mapping[str, Sequence[int]]], StudentRingAdapter]:
    """A ``ring_factory`` for :class:`~dynamo_lab.Parts` that makes every node use
    ``ring_class`` (built as ``ring_class(node_ids, vnodes)``)::

        parts = dl.Parts(ring_factory=grading.student_ring_factory(ConsistentHashRing, vnodes=8))
        cluster = dl.SimCluster(nodes=5, vnodes=8, seed=7, parts=parts)

    ``vnodes`` must be the cluster's: the factory checks that each member's tokens are the ones
    ``key_hash(f"{node}#{i}")`` the student's ring computes, and raises :class:`ConfigError`
    otherwise. ``strict=False`` lets a broken preference list through (to watch what it does).
    """
    if isinstance(vnodes, bool) or not isinstance(vnodes, int) or vnodes < 1:
        raise ConfigError(f"vnodes must be an int >= 1 (the cluster's vnodes); got {vnodes!r}")

    def factory(members: Mapping[str, Sequence[int]]) -> StudentRingAdapter:
        from .node.common import default_tokens
        for node in sorted(members):
            if tuple(sorted(members[node])) != default_tokens(node, vnodes):
                raise ConfigError(f"node {node} has {len(members[node])} tokens that are not "
                                  f"key_hash('{node}#i') for i < {vnodes}: build the factory with "
                                  f"the cluster's vnodes")
        return StudentRingAdapter(ring_class, members, vnodes, strict=strict, trusted=_trusted)

    factory.__name__ = f"student_ring_factory({getattr(ring_class, '__name__', ring_class)})"
    return factory


def _ring_cluster_log(ring_factory, seed: int) -> list[tuple]:
    """A seeded workload on a 5-node cluster using ``ring_factory``: what clients and stores see."""
    from .cluster import SimCluster
    from .errors import QuorumError
    from .node import Parts
    cluster = SimCluster(nodes=5, n=3, r=2, w=2, vnodes=8, seed=seed,
                         parts=Parts(ring_factory=ring_factory), anti_entropy=False)
    rng = random.Random(seed)
    client = cluster.client("grader")
    keys = [f"user:{i}" for i in range(20)]
    log: list[tuple] = []

    def attempt(step, fn):
        _STATE.working_on = f"cluster step {step}"
        try:
            log.append((step, fn()))
        except QuorumError as exc:
            log.append((step, f"QuorumError(may_have_applied={exc.may_have_applied})"))

    for key in keys[:12]:
        via = rng.choice(cluster.nodes)
        attempt(f"put {key!r} via {via}", lambda: client.put(key, [key], via=via).coordinator)
    victim = rng.choice(cluster.nodes)
    cluster.crash(victim)
    log.append(("crash", victim))
    for key in keys[12:]:
        via = rng.choice(cluster.up())
        attempt(f"put {key!r} via {via} while {victim} is down",
                lambda: client.put(key, [key], via=via).coordinator)
    for key in keys:
        via = rng.choice(cluster.up())
        attempt(f"get {key!r} via {via}", lambda: client.get(key, via=via).values)
    cluster.restart(victim)
    cluster.run_for(12)
    for key in keys:
        log.append((f"nodes holding {key!r} after {victim} restarted and hinted handoff ran",
                    sorted(cluster.holders(key))))
    log.append(("consistency checker", [str(v) for v in cluster.check()]))
    return log


def check_ring_in_cluster(ring_class: type, *, seed: int = 7, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``cluster-with-your-ring-matches-the-reference``: the same seeded workload on a
    cluster using ``ring_class`` and on one using the reference ring gives the same results."""
    __tracebackhide__ = True
    ctx = _start("cluster-with-your-ring-matches-the-reference", "check_ring_in_cluster",
                 "ring class", seed, ring_class)

    def run():
        want = _ring_cluster_log(student_ring_factory(_ReferenceRing, 8, _trusted=True), seed)
        try:
            got = _ring_cluster_log(student_ring_factory(ring_class, 8), seed)
        except (_Abort, _StudentTimeout):
            raise
        except Exception as exc:
            raise _Mismatch(f"5-node cluster, seed={seed}; at {_STATE.working_on}",
                            _Expected("the cluster runs"), _describe_exc(exc)) from None
        _compare_logs(want, got, f"5-node cluster, vnodes=8, seed={seed}")

    _run_check(ctx, budget_s, _with_student_checks(ctx, run))


def _compare_logs(want: list[tuple], got: list[tuple], setting: str) -> None:
    for (step, w), (_, g) in zip(want, got):
        if w != g:
            if (isinstance(w, dict) and isinstance(g, dict)
                    and all(isinstance(v, list) for v in [*w.values(), *g.values()])):
                # node -> what it holds: show only the first node that differs.
                k = next(k for k in sorted(set(w) | set(g), key=str) if w.get(k) != g.get(k))
                step, w, g = f"{step}, node {k}", w.get(k), g.get(k)
            raise _Mismatch(f"{setting}; at step: {step}", w, g,
                            "the cluster behaves differently with your part plugged in")
    if len(want) != len(got):
        raise _Mismatch(setting, f"{len(want)} steps", f"{len(got)} steps")


# =============================================================================================
# Lab 2: vector clocks and versions
# =============================================================================================

class Version(NamedTuple):
    """One version of a key, as Lab 2 gives it to the student's ``reconcile``.

    ``value``: any JSON value; ``clock``: a dict ``{node: counter >= 1}``; ``deleted``: True for
    a tombstone (a delete is a write too).
    """
    value: Any
    clock: dict
    deleted: bool = False


_ORDERS = ("before", "after", "equal", "concurrent")
_CLOCK_NODES = ("A", "B", "C", "D")


def _order_name(x: Any) -> Optional[str]:
    """'before' | 'after' | 'equal' | 'concurrent' for a str or an Enum (such as dl.Order)."""
    value = getattr(x, "value", x)
    name = getattr(x, "name", None)
    for candidate in (value, name):
        if isinstance(candidate, str) and candidate.lower() in _ORDERS:
            return candidate.lower()
    return None


def _ref_compare(a: Mapping[str, int], b: Mapping[str, int]) -> str:
    from .vclock import VectorClock
    return VectorClock(dict(a)).compare(VectorClock(dict(b))).value


def _clean_clock(x: Any) -> Optional[dict]:
    """The clock as a plain {node: int} dict without zero entries, or None if it is not one."""
    if not isinstance(x, Mapping):
        return None
    out = {}
    for k, v in x.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int) or v < 0:
            return None
        if v:
            out[k] = v
    return dict(sorted(out.items()))


def _clock_strategies():
    from hypothesis import strategies as st
    counters = st.integers(1, 4)
    clocks = st.dictionaries(st.sampled_from(_CLOCK_NODES), counters, max_size=4)

    def add(c, bump):
        out = dict(c)
        for k, v in bump.items():
            out[k] = out.get(k, 0) + v
        return out

    @st.composite
    def ordered_pair(draw):
        base = draw(clocks)
        bump = draw(st.dictionaries(st.sampled_from(_CLOCK_NODES), counters, max_size=3))
        later = add(base, bump)
        return (base, later) if draw(st.booleans()) else (later, base)

    @st.composite
    def concurrent_pair(draw):
        base = draw(clocks)
        x, y = draw(st.lists(st.sampled_from(_CLOCK_NODES), min_size=2, max_size=2, unique=True))
        others = [n for n in _CLOCK_NODES if n not in (x, y)]
        extra = st.dictionaries(st.sampled_from(others), counters, max_size=2) if others else st.just({})
        a = add(add(base, {x: draw(counters)}), draw(extra))
        b = add(add(base, {y: draw(counters)}), draw(extra))
        return a, b

    return clocks, ordered_pair, concurrent_pair


def _frozen(c: Mapping) -> str:
    return json.dumps(dict(c), sort_keys=True)


def check_increment(increment: Callable, *, seed: int = 2101, examples: int = 150,
                    budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``increment-bumps-only-the-coordinator``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    ctx = _start("increment-bumps-only-the-coordinator", "check_increment", "increment", seed,
                 increment)
    clocks, _, _ = _clock_strategies()

    def body(c):
        clock, node = c
        text = f"clock={clock!r}, node={node!r}"
        want = dict(clock)
        want[node] = want.get(node, 0) + 1
        want = dict(sorted(want.items()))
        arg = dict(clock)
        got = ctx.result(text, want, increment, arg, node)
        if _clean_clock(got) != want:
            raise _Mismatch(text, want, got, "a node with no entry counts as 0"
                            if node not in clock else "")
        if arg != clock:
            raise _Mismatch(text, _Expected(f"the input clock stays {clock!r}"),
                            _Expected(f"it was changed to {arg!r}"),
                            "build and return a new dict; other versions share the old clock")

    _run_check(ctx, budget_s, lambda: _hypothesis_run(
        ctx, st.tuples(clocks, st.sampled_from(_CLOCK_NODES + ("E",))), examples, body))


def check_merge(merge: Callable, *, seed: int = 2102, examples: int = 150,
                budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``merge-is-the-pointwise-maximum``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    ctx = _start("merge-is-the-pointwise-maximum", "check_merge", "merge", seed, merge)
    clocks, _, _ = _clock_strategies()

    def body(c):
        a, b = c
        text = f"a={a!r}, b={b!r}"
        want = {n: max(a.get(n, 0), b.get(n, 0)) for n in sorted(set(a) | set(b))}
        a2, b2 = dict(a), dict(b)
        got = ctx.result(text, want, merge, a2, b2)
        if _clean_clock(got) != want:
            raise _Mismatch(text, want, got, "every node of either clock, with the larger counter "
                                             "(a node absent from one clock counts as 0 there)")
        if (a2, b2) != (a, b):
            raise _Mismatch(text, _Expected("the inputs stay unchanged"),
                            _Expected(f"a became {a2!r}, b became {b2!r}"),
                            "build and return a new dict")

    _run_check(ctx, budget_s, lambda: _hypothesis_run(ctx, st.tuples(clocks, clocks), examples, body))


def _check_compare(ctx: _Context, compare: Callable, pairs, examples: int) -> None:
    def body(c):
        a, b = c
        for x, y in ((a, b), (b, a)):
            text = f"a={x!r}, b={y!r}"
            want = _ref_compare(x, y)
            got = ctx.result(text, want.upper(), compare, dict(x), dict(y))
            name = _order_name(got)
            if name != want:
                note = ""
                if want == "equal":
                    note = "equal counters: each clock descends the other, so neither is BEFORE"
                elif want == "concurrent":
                    note = "neither clock descends the other"
                elif name is None:
                    note = "return BEFORE, AFTER, EQUAL or CONCURRENT"
                raise _Mismatch(text, want.upper(), name.upper() if name else got, note)

    _hypothesis_run(ctx, pairs, examples, body)


def check_compare_ordered(compare: Callable, *, seed: int = 2103, examples: int = 150,
                          budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``compare-orders-equal-and-descending-clocks``."""
    __tracebackhide__ = True
    ctx = _start("compare-orders-equal-and-descending-clocks", "check_compare_ordered", "compare",
                 seed, compare)
    _, ordered, _ = _clock_strategies()
    _run_check(ctx, budget_s, lambda: _check_compare(ctx, compare, ordered(), examples))


def check_compare_concurrent(compare: Callable, *, seed: int = 2104, examples: int = 150,
                             budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``compare-detects-concurrent-clocks``."""
    __tracebackhide__ = True
    ctx = _start("compare-detects-concurrent-clocks", "check_compare_concurrent", "compare", seed,
                 compare)
    _, _, concurrent = _clock_strategies()
    _run_check(ctx, budget_s, lambda: _check_compare(ctx, compare, concurrent(), examples))


def _version_history_strategy():
    """Versions of one key as a real history makes them: each write increments the merge of
    the clocks it read at some node; some writes are deletes, some are duplicates."""
    from hypothesis import strategies as st

    @st.composite
    def history(draw):
        steps = draw(st.integers(1, 7))
        clocks: list[dict] = []
        versions: list[Version] = []
        for i in range(steps):
            if versions and draw(st.integers(0, 5)) == 0:
                versions.append(draw(st.sampled_from(versions)))   # the same write, seen twice
                continue
            read = draw(st.lists(st.integers(0, max(0, len(clocks) - 1)), max_size=2, unique=True)) \
                if clocks else []
            base: dict = {}
            for j in read:
                for n, c in clocks[j].items():
                    base[n] = max(base.get(n, 0), c)
            node = draw(st.sampled_from(_CLOCK_NODES[:3]))
            clock = dict(base)
            clock[node] = clock.get(node, 0) + 1
            clock = dict(sorted(clock.items()))
            clocks.append(clock)
            deleted = draw(st.integers(0, 4)) == 0
            versions.append(Version(None if deleted else f"v{i + 1}", clock, deleted))
        order = draw(st.permutations(list(range(len(versions)))))
        return [versions[k] for k in order]

    return history()


def _ref_reconcile_clocks(versions: Sequence[Version]) -> list[str]:
    from .vclock import VectorClock
    from .versions import Versioned, reconcile
    kept = reconcile(Versioned(v.value, VectorClock(dict(v.clock)), v.deleted) for v in versions)
    return sorted(_frozen(v.clock.counters()) for v in kept)


def _reconcile_body(ctx: _Context, reconcile_fn: Callable, which: str):
    def body(versions):
        text = f"versions={list(versions)!r}"
        want_clocks = _ref_reconcile_clocks(versions)
        want = [v for v in versions if _frozen(v.clock) in want_clocks]
        # One per clock in the description of what is expected.
        seen: set = set()
        want = [v for v in want if not (_frozen(v.clock) in seen or seen.add(_frozen(v.clock)))]
        arg = [Version(v.value, dict(v.clock), v.deleted) for v in versions]
        got = ctx.result(text, want, reconcile_fn, arg)
        try:
            got = list(got)
        except TypeError:
            raise _Mismatch(text, want, got, "reconcile returns a list of versions") from None
        if arg != list(versions):
            raise _Mismatch(text, _Expected("the input list and its versions stay unchanged"),
                            _Expected(f"they became {arg!r}"), "build and return a new list")
        got_clocks = []
        for item in got:
            if not any(item == v for v in versions):
                raise _Mismatch(text, want, got, f"{item!r} is not one of the versions given")
            got_clocks.append(_frozen(_clean_clock(_version_clock(item)) or {}))
        if which == "drops":
            for item, ck in zip(got, got_clocks):
                if got_clocks.count(ck) > 1:
                    raise _Mismatch(text, want, got, f"two versions with the clock {ck} kept: "
                                                     f"equal clocks are the same write, keep one")
                if ck not in want_clocks:
                    newer = next(v for v in versions if _ref_compare(v.clock, json.loads(ck)) == "after")
                    raise _Mismatch(text, want, got, f"{item!r} is kept, but {newer!r} descends it")
        else:
            missing = [c for c in want_clocks if c not in got_clocks]
            if missing:
                lost = next(v for v in versions if _frozen(v.clock) == missing[0])
                raise _Mismatch(text, want, got, f"{lost!r} is dropped, but no other version "
                                                 f"descends it: it is a sibling")
    return body


def _version_clock(item: Any) -> Any:
    clock = getattr(item, "clock", None)
    if clock is None and isinstance(item, (tuple, list)) and len(item) >= 2:
        clock = item[1]
    return clock


def check_reconcile_drops_dominated(reconcile: Callable, *, seed: int = 2105, examples: int = 150,
                                    budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``reconcile-drops-every-dominated-version``."""
    __tracebackhide__ = True
    ctx = _start("reconcile-drops-every-dominated-version", "check_reconcile_drops_dominated",
                 "reconcile", seed, reconcile)
    _run_check(ctx, budget_s, lambda: _hypothesis_run(
        ctx, _version_history_strategy(), examples, _reconcile_body(ctx, reconcile, "drops")))


def check_reconcile_keeps_siblings(reconcile: Callable, *, seed: int = 2106, examples: int = 150,
                                   budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``reconcile-keeps-every-concurrent-sibling``."""
    __tracebackhide__ = True
    ctx = _start("reconcile-keeps-every-concurrent-sibling", "check_reconcile_keeps_siblings",
                 "reconcile", seed, reconcile)
    _run_check(ctx, budget_s, lambda: _hypothesis_run(
        ctx, _version_history_strategy(), examples, _reconcile_body(ctx, reconcile, "keeps")))


def check_merge_carts(merge_carts: Callable, *, seed: int = 2107, examples: int = 120,
                      budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``merge-carts-keeps-every-item``."""
    __tracebackhide__ = True
    from hypothesis import strategies as st
    ctx = _start("merge-carts-keeps-every-item", "check_merge_carts", "merge_carts", seed,
                 merge_carts)
    items = st.sampled_from(["book", "pen", "lamp", "mug", "tea"])
    carts = st.lists(st.lists(items, max_size=4, unique=True), max_size=4)

    def body(siblings):
        text = f"siblings={siblings!r}"
        want = sorted({x for cart in siblings for x in cart})
        arg = [list(c) for c in siblings]
        got = ctx.result(text, want, merge_carts, arg)
        if not isinstance(got, list) or got != want:
            raise _Mismatch(text, want, got, "a sorted list, each item once")
        if arg != siblings:
            raise _Mismatch(text, _Expected("the siblings stay unchanged"), _Expected(repr(arg)))

    _run_check(ctx, budget_s, lambda: _hypothesis_run(ctx, carts, examples, body))


# -- the student's clock logic inside the reference cluster ------------------------------------

def _make_student_versioning(increment, merge, compare, reconcile, *, guard_same_coordinator=True,
                             trusted=False, clock_threshold=10):
    from .node.config import Versioning
    from .vclock import VectorClock
    from .versions import _tiebreak

    scope = contextlib.nullcontext if trusted else _student_scope

    def as_clock(d: Any, what: str) -> VectorClock:
        clean = _clean_clock(d)
        if clean is None:
            raise ConfigError(f"your {what} returned {d!r}; a clock is a dict {{node: int counter}}")
        return VectorClock(clean)

    class StudentVersioning(Versioning):
        """The node's clock logic, done by the student's increment, merge, compare and
        reconcile (clocks converted to plain dicts and back)."""

        def new_clock(self, context, node, now, local):
            ctx = context.counters()
            unseen = [v.clock.counters() for v in local if not context.descends(v.clock)]
            actor, k = node, 0
            while True:
                with scope():
                    candidate = increment(dict(ctx), actor)
                    clash = guard_same_coordinator and any(
                        _order_name(compare(dict(candidate), dict(c))) != "concurrent" for c in unseen)
                if not clash:
                    return as_clock(candidate, f"increment({ctx!r}, {actor!r})")
                k += 1
                actor = f"{node}#{k}"

        def reconcile(self, versions):
            given = list(versions)
            arg = [Version(v.value, v.clock.counters(), v.deleted) for v in given]
            with scope():
                out = list(reconcile(list(arg)))
            kept = []
            for item in out:
                match = next((g for g, a in zip(given, arg) if item is a), None)
                if match is None:
                    match = next((g for g, a in zip(given, arg) if item == a), None)
                if match is None:
                    raise ConfigError(f"your reconcile returned {item!r}, which is not one of the "
                                      f"versions it was given")
                # A store holds a set: the same write twice is kept once (equal digests), which
                # also stops a reconcile that keeps duplicates from doubling a key's versions
                # on every exchange.
                if match not in kept:
                    kept.append(match)
            if len(kept) > MAX_SIBLINGS:
                raise ConfigError(f"your reconcile kept {len(kept)} versions of one key, more "
                                  f"than {MAX_SIBLINGS}: it keeps versions another one descends")
            # The reference returns siblings in digest order; so does this, so that what a get
            # returns does not depend on the order the student's reconcile happens to use.
            return sorted(kept, key=_tiebreak)

        def merged_clock(self, versions):
            acc: dict = {}
            for v in versions:
                with scope():
                    acc = merge(dict(acc), v.clock.counters())
            return as_clock(acc, "merge")

    return StudentVersioning(clock_threshold)


def student_versioning(increment: Callable, merge: Callable, compare: Callable,
                       reconcile: Callable, *, guard_same_coordinator: bool = True):
    """A :class:`~dynamo_lab.Versioning` that makes every node use the student's clock logic::

        parts = dl.Parts(versioning=grading.student_versioning(increment, merge, compare, reconcile))
        cluster = dl.SimCluster(nodes=["Sx", "Sy", "Sz"], seed=1, parts=parts)

    ``increment(clock, node)``, ``merge(a, b)`` and ``compare(a, b)`` work on dicts
    ``{node: counter}``; ``reconcile`` on lists of :class:`Version`. A new write is stamped with
    ``increment(context, coordinator)``. With ``guard_same_coordinator`` (the default) the
    reference's fix for two writes racing through one coordinator with the same context is
    applied too: the reference node gives the second write a dot (see
    :mod:`dynamo_lab.vclock`), which a dict cannot hold, so here it is stamped on a sub-actor
    ``node#1`` instead (decided with the student's ``compare``), which keeps them concurrent
    at the price of one more entry per racing writer; ``False`` shows what the paper's rule
    alone does.
    Raises :class:`ConfigError` inside the cluster when a function returns something that is
    not a clock, or reconcile returns a version it was not given.
    """
    return _make_student_versioning(increment, merge, compare, reconcile,
                                    guard_same_coordinator=guard_same_coordinator)


def _reference_clock_functions():
    """The reference's clock logic with the students' signatures (trusted; for comparisons)."""
    from .vclock import VectorClock
    from .versions import Versioned, reconcile as ref_reconcile

    def increment(clock, node):
        return VectorClock(clock).increment(node).counters()

    def merge(a, b):
        return VectorClock(a).merge(VectorClock(b)).counters()

    def compare(a, b):
        return VectorClock(a).compare(VectorClock(b)).value

    def reconcile(versions):
        items = [(Versioned(v.value, VectorClock(dict(v.clock)), v.deleted), v) for v in versions]
        kept = {id(k) for k in ref_reconcile(x for x, _ in items)}
        return [v for x, v in items if id(x) in kept]

    return increment, merge, compare, reconcile


def _d1_d5_story(versioning, seed: int) -> list[tuple]:
    from .cluster import SimCluster
    from .node import Parts
    from .versions import decode_context
    cluster = SimCluster(nodes=["Sx", "Sy", "Sz"], n=3, r=2, w=2, seed=seed,
                         parts=Parts(versioning=versioning))
    key = cluster.config.cluster_key
    alice, bob, carol = cluster.client("alice"), cluster.client("bob"), cluster.client("carol")
    log: list[tuple] = []

    def clock_of(result):
        return decode_context(result.context, key).counters()

    _STATE.working_on = "D1: alice writes ['book'] through Sx"
    d1 = alice.put("cart", ["book"], via="Sx")
    log.append(("D1: alice writes ['book'] through Sx; its clock", clock_of(d1)))
    _STATE.working_on = "D2: alice writes ['book', 'pen'] through Sx"
    d2 = alice.put("cart", ["book", "pen"], context=d1.context, via="Sx")
    log.append(("D2: alice writes ['book', 'pen'] through Sx, on top of D1; its clock", clock_of(d2)))
    cluster.crash("Sx")
    _STATE.working_on = "bob reads the cart through Sy"
    read = bob.get("cart", via="Sy")
    log.append(("Sx is down; bob reads the cart through Sy", sorted(read.values)))
    _STATE.working_on = "D3 and D4: concurrent writes through Sy and Sz"
    w3 = bob.submit_put("cart", ["book", "pen", "lamp"], context=read.context, via="Sy")
    w4 = carol.submit_put("cart", ["book", "pen", "mug"], context=read.context, via="Sz")
    cluster.wait(w3, w4)
    log.append(("D3: bob writes through Sy; its clock", clock_of(w3.result())))
    log.append(("D4: carol writes through Sz, from the same read; its clock", clock_of(w4.result())))
    cluster.restart("Sx")
    cluster.run_for(5)
    _STATE.working_on = "alice reads both siblings through Sx"
    res = alice.get("cart", via="Sx")
    log.append(("Sx is back; alice reads the cart through Sx (the siblings)", sorted(res.values)))
    merged = sorted({item for v in res.values for item in v})
    _STATE.working_on = "D5: alice writes the merged cart through Sx"
    d5 = alice.put("cart", merged, context=res.context, via="Sx")
    log.append(("D5: alice writes the merged cart through Sx; its clock", clock_of(d5)))
    cluster.run_for(5)
    final = alice.get("cart", via="Sy")
    log.append(("a read after D5 (through Sy)", final.values))
    log.append(("what each replica holds", {n: sorted(json.dumps(v.value) for v in vs)
                                           for n, vs in sorted(cluster.replicas("cart").items())}))
    log.append(("consistency checker", [str(v) for v in cluster.check()]))
    return log


def check_d1_d5_story(increment: Callable, merge: Callable, compare: Callable,
                      reconcile: Callable, *, seed: int = 1, budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``d1-d5-story-with-your-clocks``: the paper's figure 3 on three nodes Sx, Sy,
    Sz using the student's clock logic; every step matches the reference."""
    __tracebackhide__ = True
    ctx = _Context("d1-d5-story-with-your-clocks", "check_d1_d5_story", "clock functions", seed,
                   f"grading.check_d1_d5_story(<your increment, merge, compare, reconcile>, seed={seed})")
    for part in (increment, merge, compare, reconcile):
        assert_own_code(part, "clock functions", invariant=ctx.invariant, seed=seed, replay=ctx.replay)

    def run():
        want = _d1_d5_story(_make_student_versioning(*_reference_clock_functions(), trusted=True), seed)
        try:
            got = _d1_d5_story(_make_student_versioning(increment, merge, compare, reconcile), seed)
        except (_Abort, _StudentTimeout):
            raise
        except Exception as exc:
            raise _Mismatch(f"the D1..D5 story on Sx, Sy, Sz, seed={seed}; at {_STATE.working_on}",
                            _Expected("the story runs"), _describe_exc(exc)) from None
        _compare_logs(want, got, f"the D1..D5 story on Sx, Sy, Sz, seed={seed}")

    _run_check(ctx, budget_s, _with_student_checks(ctx, run))


def _with_student_checks(ctx: _Context, run: Callable[[], None]) -> Callable[[], None]:
    """Wrap a cluster run so that uses of the reference inside student code abort it."""
    def wrapped():
        try:
            run()
        finally:
            if _STATE.reference_calls:
                used = sorted(set(_STATE.reference_calls))
                _STATE.reference_calls.clear()
                raise _Abort(ctx.failure(ReferenceUsed, headline=f"your {ctx.what} {REFERENCE_USED_MARK}",
                                         note=f"while they ran they called {', '.join(used)}"))
    return wrapped


def _clock_cluster_log(versioning, seed: int, steps: int = 36) -> list[tuple]:
    """A seeded concurrent workload on 4 nodes: racing writers with stale contexts, deletes,
    crashes; records what every client was told."""
    from .cluster import SimCluster
    from .errors import QuorumError
    from .node import Parts
    from .versions import canonical_json, decode_context
    cluster = SimCluster(nodes=4, n=3, r=2, w=2, seed=seed, parts=Parts(versioning=versioning))
    ckey = cluster.config.cluster_key
    rng = random.Random(seed)
    names = ["alice", "bob", "carol"]
    clients = {c: cluster.client(c) for c in names}
    keys = ["cart:1", "cart:2"]
    ctx: dict[tuple[str, str], Optional[str]] = {}
    log: list[tuple] = []
    down: Optional[str] = None
    items = ["book", "pen", "lamp", "mug", "tea", "cup"]

    def outcome(op) -> Any:
        try:
            r = op.result()
        except QuorumError as exc:
            return f"QuorumError(may_have_applied={exc.may_have_applied})"
        if hasattr(r, "values"):
            return sorted(canonical_json(v) for v in r.values)
        return decode_context(r.context, ckey).counters()

    for i in range(steps):
        kind = rng.choice(["read", "read", "write", "race", "race", "delete", "fault", "tick"])
        key = rng.choice(keys)
        who = rng.choice(names)
        up = cluster.up()
        step = f"step {i}: {kind} {key}"
        _STATE.working_on = step
        if kind == "read":
            via = rng.choice(up)
            op = clients[who].submit_get(key, via=via)
            cluster.wait(op)
            if op.error is None:
                ctx[(who, key)] = op.result().context
            log.append((f"{step}: {who} reads through {via}", outcome(op)))
        elif kind in ("write", "delete"):
            via = rng.choice(up)
            value = sorted(rng.sample(items, rng.randint(1, 3)))
            op = (clients[who].submit_put(key, value, ctx.get((who, key)), via=via) if kind == "write"
                  else clients[who].submit_delete(key, ctx.get((who, key)), via=via))
            cluster.wait(op)
            log.append((f"{step}: {who} {'writes ' + str(value) if kind == 'write' else 'deletes'} "
                        f"through {via}", outcome(op)))
        elif kind == "race":
            other = rng.choice([n for n in names if n != who])
            context = ctx.get((who, key))
            vias = [rng.choice(up), rng.choice(up)]
            ops = [clients[c].submit_put(key, sorted(rng.sample(items, 2)), context, via=v)
                   for c, v in zip((who, other), vias)]
            cluster.wait(*ops)
            log.append((f"{step}: {who} and {other} write at once through {vias} from the same "
                        f"context", [outcome(o) for o in ops]))
        elif kind == "fault":
            if down is None:
                down = rng.choice(up)
                cluster.crash(down)
                log.append((f"{step}: crash {down}", None))
            else:
                cluster.restart(down)
                log.append((f"{step}: restart {down}", None))
                down = None
        else:
            cluster.run_for(rng.uniform(0.5, 3.0))
    cluster.settle(20)
    for key in keys:
        _STATE.working_on = f"final read of {key}"
        op = clients["alice"].submit_get(key)
        cluster.wait(op)
        log.append((f"after healing: read {key}", outcome(op)))
        log.append((f"after healing: the versions each replica of {key} holds",
                    {n: sorted(f"{canonical_json(v.value)} {v.clock}{' deleted' if v.deleted else ''}"
                               for v in vs) for n, vs in sorted(cluster.replicas(key).items())}))
    log.append(("consistency checker", [str(v) for v in cluster.check()]))
    return log


def check_clocks_in_cluster(increment: Callable, merge: Callable, compare: Callable,
                            reconcile: Callable, *, seed: int = 11,
                            budget_s: float = DEFAULT_BUDGET_S) -> None:
    """Invariant ``cluster-with-your-clocks-matches-the-reference``."""
    __tracebackhide__ = True
    ctx = _Context("cluster-with-your-clocks-matches-the-reference", "check_clocks_in_cluster",
                   "clock functions", seed,
                   f"grading.check_clocks_in_cluster(<your increment, merge, compare, reconcile>, seed={seed})")
    for part in (increment, merge, compare, reconcile):
        assert_own_code(part, "clock functions", invariant=ctx.invariant, seed=seed, replay=ctx.replay)

    def run():
        want = _clock_cluster_log(_make_student_versioning(*_reference_clock_functions(), trusted=True), seed)
        try:
            got = _clock_cluster_log(_make_student_versioning(increment, merge, compare, reconcile), seed)
        except (_Abort, _StudentTimeout):
            raise
        except Exception as exc:
            raise _Mismatch(f"4-node cluster, seed={seed}; at {_STATE.working_on}",
                            _Expected("the workload runs"), _describe_exc(exc)) from None
        _compare_logs(want, got, f"4-node cluster, seed={seed}")

    _run_check(ctx, budget_s, _with_student_checks(ctx, run))
