"""Lab 1's checks pass a correct ring written another way than the notebook's solution (the
checks compare behaviour, not code). tests/test_grading.py uses this ring too."""

from __future__ import annotations

import itertools
from collections import Counter

from dynamo_lab import grading
from dynamo_lab.hashing import RING_SIZE, key_hash

FEW = {"examples": 30}


# -- a ring written differently from the notebook's solution -------------------------------------

def linear_successor(tokens, h):
    if not tokens:
        raise ValueError("no tokens")
    for i, t in enumerate(tokens):
        if t >= h:
            return i
    return 0


class DictRing:
    """Tokens in a dict token -> node, walked by a linear scan; nodes in a set."""

    def __init__(self, nodes, vnodes=8):
        if vnodes < 1 or len(set(nodes)) != len(list(nodes)):
            raise ValueError("bad ring")
        self.v = vnodes
        self.owner = {}
        self.members = set()
        for x in nodes:
            self.add_node(x)

    def add_node(self, node):
        if node in self.members:
            raise ValueError("present")
        self.members.add(node)
        self.owner.update({key_hash(f"{node}#{i}"): node for i in range(self.v)})

    def remove_node(self, node):
        if node not in self.members:
            raise ValueError("absent")
        self.members.discard(node)
        self.owner = {t: x for t, x in self.owner.items() if x != node}

    def tokens(self):
        return sorted((t, x) for t, x in self.owner.items())

    def _walk(self, key):
        pairs = self.tokens()
        if not pairs:
            raise ValueError("empty ring")
        start = linear_successor([t for t, _ in pairs], key_hash(key))
        return (pairs[(start + k) % len(pairs)][1] for k in range(len(pairs)))

    def coordinator(self, key):
        return next(self._walk(key))

    def preference_list(self, key, n):
        if not 0 < n <= len(self.members):
            raise ValueError("bad n")
        seen = dict.fromkeys(self._walk(key))
        return list(itertools.islice(seen, n))

    def ownership(self):
        pairs = self.tokens()
        share = Counter({x: 0 for x in self.members})
        for (prev, _), (tok, node) in zip([pairs[-1]] + pairs[:-1], pairs):
            share[node] += (tok - prev) % RING_SIZE or RING_SIZE
        return {x: share[x] / RING_SIZE for x in share}


def fraction_moved(old, new, keys, n=1):
    if not keys:
        raise ValueError("no keys")
    return len([k for k in keys if sorted(old.preference_list(k, n)) != sorted(new.preference_list(k, n))]) / len(keys)


def test_a_correct_ring_written_another_way_passes_every_ring_check():
    grading.check_successor_index(linear_successor, **FEW)
    for check in (grading.check_ring_tokens, grading.check_coordinator,
                  grading.check_preference_list_distinct, grading.check_preference_list_order,
                  grading.check_membership_changes, grading.check_ownership):
        check(DictRing, **FEW)
    grading.check_bad_requests(DictRing)
    grading.check_moved_fraction(fraction_moved, **FEW)
    grading.check_ring_in_cluster(DictRing, seed=3)
