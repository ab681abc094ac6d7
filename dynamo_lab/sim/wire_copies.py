"""The simulator's wire check, for the many identical messages a cluster sends: a coordinator
sends the same ``ReplicaGet`` to each replica, and replicas that agree answer alike."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Optional, Union

from .. import jsontext
from ..codec import dumps, loads
from ..messages import MemberState
from ..ring import KeyRange
from ..vclock import VectorClock
from ..versions import Versioned


class WireCopies:
    """:func:`~dynamo_lab.codec.round_trip` for a sender of many identical messages (the simulator: a coordinator
    sends the same ``ReplicaGet`` to each replica, and replicas that agree answer alike): bytes
    decoded a moment ago are not decoded again.

    Each receiver still gets what decoding its bytes gives, and shares nothing it could change
    with another: a message made only of frozen parts (text, numbers, clocks, ranges, members)
    is handed on as it is; a version gets a value of its own, parsed from the canonical text it
    was decoded with. Messages that carry a client's JSON are decoded every time."""

    def __init__(self, keep: int = 64):
        self.keep = keep                      # how many recent messages it remembers
        self._decoded: dict[bytes, tuple[Any, tuple[str, ...]]] = {}

    def __call__(self, msg: Any) -> Any:
        data = dumps(msg)
        seen = self._decoded.get(data)
        if seen is not None:
            out, versions_in = seen
            return _with_own_values(out, versions_in) if versions_in else out
        out = loads(data)
        versions_in = _copy_plan(type(out))
        if versions_in is not None:
            if len(self._decoded) >= self.keep:
                self._decoded.clear()
            self._decoded[data] = (out, versions_in)
        return out


_COPY_PLANS: dict[type, Optional[tuple[str, ...]]] = {}


def _copy_plan(cls: type) -> Optional[tuple[str, ...]]:
    """How a copy of a decoded ``cls`` is made: the fields holding versions (a tuple of them),
    which get values of their own; None if it has a part that is not frozen."""
    if cls not in _COPY_PLANS:
        hints = typing.get_type_hints(cls)
        kinds = {f.name: _frozenness(hints[f.name]) for f in dataclasses.fields(cls)}
        _COPY_PLANS[cls] = (None if "thawed" in kinds.values()
                            else tuple(f for f, k in kinds.items() if k == "versions"))
    return _COPY_PLANS[cls]


def _frozenness(tp: Any) -> str:
    """"frozen" for a field type nothing can change, "versions" for ``tuple[Versioned, ...]``
    (whose values can), "thawed" for anything else (JSON, a nested message, a loose tuple)."""
    if tp in (str, int, float, bool, type(None), VectorClock, KeyRange, MemberState):
        return "frozen"
    if tp == tuple[Versioned, ...]:
        return "versions"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if (origin in (Union, types.UnionType) or origin is tuple and args) and all(
            _frozenness(a) == "frozen" for a in args if a is not Ellipsis):
        return "frozen"
    return "thawed"


def _with_own_values(msg: Any, fields: tuple[str, ...]) -> Any:
    twin = object.__new__(type(msg))
    twin.__dict__.update(msg.__dict__)
    for f in fields:
        twin.__dict__[f] = tuple([v._with_value(jsontext.loads(v._text))  # type: ignore[attr-defined]
                                  for v in msg.__dict__[f]])
    return twin
