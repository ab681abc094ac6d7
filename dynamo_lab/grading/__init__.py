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

Adapters plug a student's part into the reference node, each lab's in its ``checks.py``:
:func:`student_ring_factory` (Lab 1), :func:`student_versioning` (Lab 2), :func:`student_parts`
(Lab 3: the quorum core and hinted handoff), :func:`student_ae_parts` (Lab 4: the Merkle tree
and anti-entropy's steps), :func:`student_gossip_parts` (Lab 5: the view
merge, the gossip round, the failure detector).

The package is the shared harness (:mod:`.failures`, :mod:`.own_code`, :mod:`.harness`); each
lab's checks live in its folder (``dynamo_lab/labs/<lab>/checks.py``) and are reachable here
by name (``grading.check_coordinator``), as the notebooks' test cells call them.
"""

from __future__ import annotations

from typing import Any

from .failures import (REFERENCE_USED_MARK, TIMEOUT_MARK, GradingFailure,  # noqa: F401
                       ReferenceUsed)
from .own_code import assert_own_code, student_part  # noqa: F401
from .self_check import self_check  # noqa: F401

_SHARED = ["GradingFailure", "ReferenceUsed", "REFERENCE_USED_MARK", "TIMEOUT_MARK",
           "INVARIANTS", "assert_own_code", "student_part", "self_check"]


def _lab_exports() -> dict[str, Any]:
    """Every lab's public checks and adapters, by name (each lab's ``checks.__all__``)."""
    from ..labs import labs
    out: dict[str, Any] = {}
    for lab in labs():
        module = lab.checks
        for name in module.__all__:
            if name in out or name in _SHARED:
                raise ImportError(f"{lab.id} exports {name}, which another lab exports too")
            out[name] = getattr(module, name)
    return out


def __getattr__(name: str) -> Any:
    if name == "INVARIANTS":
        from ..labs import invariants
        return {inv: (lab.id.split("_")[0], promise) for inv, (lab, promise) in invariants().items()}
    if name == "__all__":
        return _SHARED + list(_lab_exports())
    exports = _lab_exports()
    if name in exports:
        return exports[name]
    raise AttributeError(f"dynamo_lab.grading has no {name!r}: the checks are "
                         f"{', '.join(sorted(n for n in exports if n.startswith('check_')))}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SHARED) | set(_lab_exports()))
