"""Hinted handoff's two decisions, as pure functions (the paper, section 4.6).

A node that stood in for another keeps the replica apart, with a *hint* naming the node it was
meant for. :mod:`.handoff` asks these functions what to do and carries it out:

* :func:`handoff_tick`, on the node's periodic ``HandoffTick``: which hinted replicas to send
  back now, to the node each was meant for;
* :func:`handoff_ack`, when that node acknowledges one: may the hint be forgotten?

Both answer with a list of *actions*, plain tuples, done in order:

=============================  ==========================================================
``("send", intended, key)``    send the hinted replica of ``key`` to ``intended``
``("forget", intended, key)``  delete the hint for ``intended`` of ``key``
=============================  ==========================================================

Hints for nodes that left the ring for good, and those a leaving node passes on, are the
handoff part's own business (:mod:`.handoff`). Lab 3 swaps these two for a student's
(``Parts.handoff_tick``, ``Parts.handoff_ack``); each docstring here is the whole contract.
"""

from __future__ import annotations

from typing import Collection, Optional, Sequence

#: One action: ("send" | "forget", intended node, key).
Action = tuple[str, str, str]


def handoff_tick(hints: Sequence[tuple[str, str]], down: Collection[str]) -> list[Action]:
    """One round of hinted handoff: what to send back now.

    ``hints``: ``(intended, key)`` for each hinted replica this node keeps, grouped by intended
    node (in name order) and in the order they are kept; ``down``: the nodes this node
    believes down now.

    Each hint whose intended node is believed up is sent to that node, in the order given:
    ``("send", intended, key)``. A hint for a node believed down stays where it is. Nothing is
    forgotten here: a hint is kept until its node acknowledged it (:func:`handoff_ack`), so a
    handoff lost on the way is sent again on a later round.
    """
    return [("send", intended, key) for intended, key in hints if intended not in down]


def handoff_ack(intended: str, key: str, held: Optional[str], acked: str) -> list[Action]:
    """``intended`` acknowledged the hinted replica of ``key`` it was sent.

    ``held``: the digest of what this node keeps for (``intended``, ``key``) now (None when it
    keeps nothing); ``acked``: the digest of what ``intended`` acknowledged (equal digests,
    equal versions).

    Forget the hint, ``[("forget", intended, key)]``, only when ``intended`` acknowledged
    exactly what is held now. Otherwise nothing (``[]``): a write that reached the hint after
    it was sent is not delivered yet, and the next round sends it.
    """
    if held is not None and held == acked:
        return [("forget", intended, key)]
    return []
