"""The steps of one anti-entropy exchange, as pure functions (the paper, section 4.7).

Two replicas of a key range compare their Merkle trees (:mod:`dynamo_lab.merkle`) top-down;
:mod:`.anti_entropy` carries the exchange over messages and asks these functions what to do
at each step:

* :func:`diff_level`, on the other side's hashes of some nodes at one level: which of them
  differ here, and what to send back (the children's hashes, or at the leaves their entries);
* :func:`differing_keys`, on both sides' entries of the differing leaves: the keys to repair;
* :func:`repair_key`, on both sides' versions of one such key: what to keep, and whether the
  other side must be sent it.

Lab 4 swaps these (and the tree, ``Parts.merkle_tree``) for a student's through
``Parts.diff_level``, ``Parts.differing_keys`` and ``Parts.repair_key``; each docstring here is
the whole contract.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..merkle import diff_entries, differing_children
from .common import same_versions


def diff_level(tree: Any, level: int, remote_hashes: Mapping[int, str]) -> tuple[list[int], dict]:
    """Compare this replica's ``tree`` with the other side's hashes at ``level``.

    ``remote_hashes``: ``{index: hex hash}`` of some nodes at ``level`` (0 is the root) of the
    other replica's tree, of the same shape. Returns ``(differing, reply)``:

    * ``differing``: the sorted indices of ``remote_hashes`` whose hash differs from this
      tree's ``node_hash(level, index)``;
    * ``reply``: what this side sends next. Above the leaves (``level < tree.depth``), for each
      differing node its two children's hashes, ``{child index: hex hash}`` at ``level + 1``
      (children of node ``i`` are ``2i`` and ``2i + 1``): that is 2 hashes per differing node
      and nothing for the nodes that agree, so the walk stops there. At the leaves
      (``level == tree.depth``), the entries of the differing leaves, ``{key: digest}``.

    Nothing differs: ``([], {})``, and the exchange is over. Reads ``tree`` only through
    ``node_hash``, ``leaf_entries`` and ``depth``. (Here, a remote hash that is not a str, or
    an index that is no node, raises :class:`~dynamo_lab.errors.ClientError`, so the node
    refuses the message.)
    """
    differing = differing_children(tree, level, remote_hashes)
    reply: dict = {}
    for i in differing:
        if level == tree.depth:
            reply.update(tree.leaf_entries(i))
        else:
            for child in (2 * i, 2 * i + 1):
                reply[child] = tree.node_hash(level + 1, child)
    return differing, reply


def differing_keys(mine: Mapping[str, str], theirs: Mapping[str, str]) -> list[str]:
    """The keys to repair: ``mine`` and ``theirs`` are both sides' ``{key: digest}`` entries of
    the differing leaves. Returns, sorted, every key held by one side only or by both with
    different digests (equal digests, equal versions); nothing else."""
    return diff_entries(mine, theirs)


def repair_key(mine: Sequence[Any], theirs: Sequence[Any],
               siblings: Sequence[Any]) -> tuple[list[Any], bool]:
    """The repair of one key the trees found different.

    ``mine``: the versions this replica holds (maybe none); ``theirs``: the versions the other
    replica sent (maybe none: it asked for this key, holding nothing of it); ``siblings``: the
    reconciliation of both (the versions no other version supersedes).

    Returns ``(keep, send_back)``. ``keep`` is what this replica stores from now on: the
    siblings, never just the versions received (a repair that overwrites loses the writes only
    this replica had). ``send_back`` is True when the other side does not hold exactly the
    siblings already (it lacks some, or holds a superseded one), so that it is sent them and
    both end with the same versions; False otherwise (a reply it does not need is not sent).
    """
    keep = list(siblings)
    return keep, not same_versions(keep, theirs)
