"""What each lab hands the student's code in the sandbox: the helpers of its setup cells, and
nothing of the reference implementation.

A lab's prelude is run in the sandbox before the student's answer cells. It must define every
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


LAB1 = '''
import statistics
from bisect import bisect_left


def vnode_token(node, i):
    return key_hash(f"{node}#{i}")
'''

LAB2 = '''
Version = __wire__["Version"]
BEFORE, AFTER, EQUAL, CONCURRENT = "before", "after", "equal", "concurrent"
'''

PRELUDES = {"lab1_consistent_hashing": LAB1, "lab2_vector_clocks": LAB2}


def prelude(lab: str) -> str:
    """The prelude of ``lab``: the key hash, then the lab's own helpers. Raises ``KeyError``
    naming the labs that have one."""
    if lab not in PRELUDES:
        raise KeyError(f"no sandbox prelude for lab {lab!r}; labs with one: {sorted(PRELUDES)}")
    return _hashing_source() + "\n" + PRELUDES[lab]
