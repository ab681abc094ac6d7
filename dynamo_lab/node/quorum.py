"""The quorum of one request, and sloppy quorum's choice of replicas (the paper, 4.5 and 4.6).

Pure data and pure functions: no messages, no clock, no store. The coordinator asks
:func:`choose_replicas` where a request goes, builds one :class:`PutQuorum` (put or delete)
or :class:`GetQuorum` per request, tells it each reply and each timeout, and carries out the
one decision it returns:

=====================  ===================================================================
:class:`Wait`          nothing to do yet
:class:`Answer`        the quorum is reached: answer the client now (``done``: nobody else
                       is awaited either)
:class:`Retry`         the timeout passed without a quorum: send to these stand-ins, each
                       with a hint naming the silent node it stands in for, and wait again
:class:`Fail`          no quorum, and nobody left to try: tell the client, saying whether
                       a write may have applied anyway
:class:`Finish`        answered before; now everyone awaited has replied or timed out
=====================  ===================================================================

Lab 3 swaps these for a student's (``Parts.choose_replicas``, ``Parts.put_quorum``,
``Parts.get_quorum``); each docstring here is the whole contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Optional, Sequence, Union

#: Where a request goes: target node -> the node it stands in for (None: it is a top-N node).
Targets = dict[str, Optional[str]]


def choose_replicas(preference: Sequence[str], walk: Sequence[str], down: Collection[str],
                    me: str, sloppy: bool = True) -> Targets:
    """The first N healthy nodes for a key: where a put, delete or get is sent.

    ``preference``: the key's top N nodes; ``walk``: every node of the ring clockwise from
    the key (it starts with ``preference``); ``down``: the nodes this coordinator believes
    down; ``me``: the coordinator, which never believes itself down.

    Each top-N node believed up is a target standing for itself (``None``). For each one
    believed down, in preference order, the next node of the walk beyond the top N that is
    believed up and not chosen yet stands in for it (its value names the node it stands in
    for: it receives a *hint*). When the walk runs out, the down node has no stand-in.
    Without ``sloppy`` quorum the targets are the top N as they are, down or not.
    """
    if not sloppy:
        return {p: None for p in preference}
    spare = stand_ins(preference, walk, down)
    targets: Targets = {}
    for p in preference:
        if p == me or p not in down:
            targets[p] = None
        elif spare:
            targets[spare.pop(0)] = p
    return targets


def stand_ins(preference: Sequence[str], walk: Sequence[str], down: Collection[str],
              exclude: Collection[str] = ()) -> list[str]:
    """The nodes that may stand in for a top-N node: the walk beyond the top N, without the
    nodes believed down and those in ``exclude`` (already asked), in walk order."""
    return [s for s in walk if s not in preference and s not in exclude and s not in down]


@dataclass(frozen=True)
class Wait:
    """Nothing to do yet."""


@dataclass(frozen=True)
class Answer:
    """Answer the client with what was gathered; ``done``: nobody else is awaited."""
    done: bool = False


@dataclass(frozen=True)
class Retry:
    """Send the request to these stand-ins (stand-in -> the silent node it stands in for)."""
    stand_ins: Targets


@dataclass(frozen=True)
class Fail:
    """No quorum: fail the request. ``may_have_applied``: some replica stored the write;
    ``silent``: the targets that never replied."""
    may_have_applied: bool
    silent: tuple = ()


@dataclass(frozen=True)
class Finish:
    """Answered before, and now nobody is awaited any more."""


Decision = Union[Wait, Answer, Retry, Fail, Finish]


@dataclass
class Quorum:
    """What both kinds of request share: ``needed`` replies (W or R) out of ``targets``."""
    needed: int
    primaries: list[str]             # the key's top N
    targets: Targets                 # everyone asked so far, with whom each stands in for
    heard: set = field(default_factory=set)
    answered: bool = False
    retried: bool = False

    def silent(self) -> list[str]:
        """The targets that have not replied (in the order they were asked)."""
        return [t for t in self.targets if t not in self.heard]

    def on_reply(self, node: str) -> Decision:
        """``node`` replied (a late or a stranger's reply changes nothing: :class:`Wait`).

        The ``needed``-th reply is :class:`Answer` (``done`` if it is also the last awaited);
        the last awaited after the answer is :class:`Finish`.
        """
        if node not in self.targets or node in self.heard:
            return Wait()
        self.heard.add(node)
        done = len(self.heard) >= len(self.targets)
        if not self.answered and len(self.heard) >= self.needed:
            self.answered = True
            return Answer(done)
        return Finish() if done else Wait()

    def on_timeout(self, spare: Sequence[str], me: str) -> Decision:
        """The request timeout passed. ``spare``: the stand-ins still available (healthy,
        beyond the top N, not asked yet), in walk order.

        Answered already: :class:`Finish` (stop waiting for the silent ones). Otherwise, the
        first time, each silent node (other than ``me``; a silent stand-in counts for the node
        it stood in for) gets the next spare stand-in: :class:`Retry`, if there is any.
        Otherwise :class:`Fail`.
        """
        if self.answered:
            return Finish()
        if not self.retried:
            self.retried = True
            missing = [self.targets[t] or t for t in self.silent()
                       if (self.targets[t] or t) != me]
            extra = dict(zip(spare, missing))
            if extra:
                self.targets.update(extra)
                return Retry(extra)
        self.answered = True
        return Fail(self.may_have_applied(), tuple(self.silent()))

    def may_have_applied(self) -> bool:
        return False


@dataclass
class PutQuorum(Quorum):
    """A put or a delete: W acknowledgements, the coordinator's own write included."""

    def may_have_applied(self) -> bool:
        """A replica that acknowledged stored the write, though W were not reached."""
        return bool(self.heard)


@dataclass
class GetQuorum(Quorum):
    """A get: R replies, each with the siblings that replica holds (kept in ``replies``)."""
    replies: dict = field(default_factory=dict)

    def on_reply(self, node: str, versions: Sequence = ()) -> Decision:
        """``node`` replied with ``versions``: as :meth:`Quorum.on_reply`, keeping them."""
        if node in self.targets and node not in self.heard:
            self.replies[node] = list(versions)
        return super().on_reply(node)
