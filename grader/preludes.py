"""What each lab hands the student's code in the sandbox: the helpers of its setup cells, and
nothing of the reference implementation.

A lab's prelude (``sandbox_prelude`` in its spec, ``dynamo_lab/labs/<lab>/__init__.py``) is run
in the sandbox before the student's answer cells. It must define every
name the answer cells may use from the lab's setup cells (``key_hash``, ``vnode_token``,
``Version``, ``BEFORE`` ...), written with the standard library only. ``tests/test_sandbox.py``
checks each prelude against the reference (same hashes, same types) and that the solutions
score full marks through it.
"""

from __future__ import annotations

from pathlib import Path

_HASHING = Path(__file__).resolve().parent.parent / "dynamo_lab" / "hashing.py"


def _hashing_source() -> str:
    """The reference's key hash (a helper every lab hands out), made standalone."""
    text = _HASHING.read_text(encoding="utf-8")
    return text.replace("from .errors import InvalidKey",
                        "class InvalidKey(ValueError):\n    pass")


def prelude(lab_id: str) -> str:
    """The prelude of a lab: the key hash, then the lab's own helpers (its spec's
    ``sandbox_prelude``). Raises ``KeyError`` naming the labs."""
    from dynamo_lab.labs import lab
    return _hashing_source() + "\n" + lab(lab_id).sandbox_prelude
