"""Forwarding: a client request that reaches a node outside the key's top N (the paper, 4.5).

The node passes it to the first top-N node it believes up and relays the answer. It waits
``FORWARD_WAIT`` request timeouts; then it suspects the target and tries once more (the next
top-N node, or itself), as the *same write*: the forward carries the write's id and says it
is a retry, so a coordinator that did apply it does not apply it twice. A forward that arrives
later than ``FORWARD_START_BUDGET`` request timeouts after it was sent (the receiver was
stopped, or the network held it) is refused unapplied, so that it is not applied beside the
retry; its sender tries elsewhere.

Used by the coordinator (it is no part of its own: it owns no message handler).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional

from ..messages import ClientGet, ClientReply, Forward, ForwardTimeout
from .services import NodeServices

FORWARD_WAIT = 3
FORWARD_START_BUDGET = 2


class Forwarded(NamedTuple):
    """A request this node passed to another coordinator and waits to relay the answer of."""
    client: str
    request: object
    target: str
    retried: bool
    write_id: Optional[str]


class Forwarding:
    """The forwards one node has in flight, for its coordinator: ``accept(client, request,
    retried=, write_id=, avoid=)`` is the coordinator's entry point, called again for a retry;
    ``fail(client, request, detail, may_have_applied)`` answers the client with a quorum
    error; ``new_id()`` names a forward."""

    def __init__(self, node: NodeServices, accept: Callable, fail: Callable,
                 new_id: Callable[[], str]):
        self.node = node
        self.accept = accept
        self.fail = fail
        self.new_id = new_id
        self.waiting: dict[str, Forwarded] = {}

    def forward(self, client: str, request, kind: str, pref: list[str], retried: bool,
                write_id: Optional[str], avoid: Optional[str]) -> bool:
        """Pass ``request`` to the first top-N node believed up (not ``avoid``). False when
        there is none: the caller coordinates it itself."""
        node = self.node
        target = next((p for p in pref if not node.suspected(p) and p != avoid), None)
        if target is None:
            return False
        fwd_id = self.new_id()
        self.waiting[fwd_id] = Forwarded(client, request, target, retried, write_id)
        node.send(target, Forward(fwd_id, dataclasses.replace(request, req_id=fwd_id), write_id,
                                  retry=retried, sent_at=node.now))
        node.set_timer(FORWARD_WAIT * node.config.request_timeout_s, ForwardTimeout(fwd_id))
        node.note(f"{kind} {request.key!r}: not in its top {len(pref)} {pref}; forwarded to "
                  f"{target}")
        return True

    def too_late(self, src: str, msg: Forward, kind: str) -> bool:
        """Refuse (and say so to ``src``) a forward whose sender has given up on it."""
        node = self.node
        age = node.now - msg.sent_at
        if not (msg.sent_at and age > FORWARD_START_BUDGET * node.config.request_timeout_s):
            return False
        node.count("forwards_expired")
        node.note(f"forward {msg.fwd_id} from {src} arrived {age:.3f} s after it was sent; "
                  f"its sender has given up on it: not applied")
        node.send(src, ClientReply(msg.fwd_id, kind, str(msg.request.key), False,
                                   coordinator=node.id, error_kind="expired",
                                   error=f"the forward reached {node.id} too late; nothing "
                                         f"was applied"))
        return True

    def on_reply(self, src: str, msg: ClientReply) -> None:
        """Relay the answer to the client (or, when the forward arrived too late to be
        applied, try once more elsewhere)."""
        fwd = self.waiting.pop(msg.req_id, None)
        if fwd is None:
            self.node.note(f"late reply {msg.req_id} from {src} ignored (already answered)")
            return
        if msg.error_kind == "expired" and not fwd.retried:
            self.node.note(f"{src} got the forward too late; trying again elsewhere")
            self.accept(fwd.client, fwd.request, retried=True, write_id=fwd.write_id, avoid=src)
            return
        self.node.send(fwd.client, dataclasses.replace(msg, req_id=fwd.request.req_id))

    def on_timeout(self, fwd_id: str) -> None:
        """No answer in time: suspect the target; retry once, then fail."""
        fwd = self.waiting.pop(fwd_id, None)
        if fwd is None:
            return
        node = self.node
        node.membership.timed_out(fwd.target, node.now)
        if not fwd.retried:
            node.note(f"{fwd.target} did not answer a forwarded request; trying again")
            self.accept(fwd.client, fwd.request, retried=True, write_id=fwd.write_id)
            return
        self.fail(fwd.client, fwd.request, f"forwarded to {fwd.target}, which did not answer",
                  not isinstance(fwd.request, ClientGet))
