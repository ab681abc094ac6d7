"""What a check reports: a broken promise, or the reference used; and the signals a check
uses inside (a mismatch for Hypothesis to shrink, an abort, a timeout), with the state of the
student code running now."""

from __future__ import annotations

import threading
from typing import Any, Optional

#: Text every "you used the reference" failure contains (the grader flags submissions by it).
REFERENCE_USED_MARK = "uses the reference implementation"
#: Text every "your code did not finish" failure contains.
TIMEOUT_MARK = "did not finish within"

DEFAULT_BUDGET_S = 30.0
#: A cluster using a student's reconcile refuses to hold more versions of one key than this.
MAX_SIBLINGS = 64


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
        from ..labs import invariants
        promise = invariants().get(invariant, (None, ""))[1]
        lines = [f"{invariant}: {headline or promise}"]
        if input:
            lines.append(f"  smallest failing input: {input}")
        if expected is not None or got is not None:
            lines.append(f"  expected: {show(expected)}")
            lines.append(f"  got:      {show(got)}")
        if note:
            lines.append(f"  note: {note}")
        if seed is not None:
            lines.append(f"  seed {seed}: replay with {replay}" if replay else f"  seed {seed}")
        super().__init__("\n".join(lines))


class ReferenceUsed(GradingFailure):
    """The student's part calls or wraps the reference implementation: no marks."""


class Expected(str):
    """A text shown verbatim (not repr'd) in expected / got."""


def show(x: Any) -> str:
    if isinstance(x, Expected):
        return str(x)
    text = repr(x)
    return text if len(text) <= 400 else text[:400] + " ..."


class Mismatch(Exception):
    """Raised inside a Hypothesis run: the example broke the invariant (Hypothesis shrinks it)."""

    def __init__(self, input: str, expected: Any, got: Any, note: str = ""):
        super().__init__(input)
        self.input, self.expected, self.got, self.note = input, expected, got, note


class Abort(BaseException):
    """Stop the whole check at once, without shrinking (not implemented, reference used...).

    A ``BaseException`` so that neither Hypothesis nor a student's ``except Exception`` keeps it.
    """

    def __init__(self, failure: GradingFailure):
        super().__init__(str(failure))
        self.failure = failure


class StudentTimeout(BaseException):
    """Raised by the budget timer inside whatever code is running."""


class State(threading.local):
    def __init__(self) -> None:
        self.student_depth = 0
        self.reference_calls: list[str] = []
        self.working_on = ""


STATE = State()
