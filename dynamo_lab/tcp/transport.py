"""The node-to-node transport: persistent TCP connections carrying framed messages.

One :class:`Transport` per node process. It

* listens for peers; each inbound connection starts with the handshake (see :mod:`.framing`):
  the peer proves it holds the cluster's secret, then carries messages from that one peer;
* keeps one outbound connection per peer (:class:`PeerLink`), opened on first use,
  re-opened with exponential backoff when it breaks; messages to a peer that cannot be
  reached are dropped (Dynamo's protocols retry: gossip, timeouts, hinted handoff);
* applies the fault model (:class:`~dynamo_lab.faults.LinkFaults`, the simulator's) on both
  ends of every link: a cut link drops what this node would send on it and what arrives on it,
  and each message sent meets its fate (lost, delayed, duplicated) before it is queued;
* owns every task it starts, and cancels them all in :meth:`Transport.close`.

Only network messages cross a connection: a timer or an ``AdminLeave`` arriving from a peer is
refused, like an unknown type.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Callable, Optional

from ..errors import ProtocolError
from ..faults import FaultConfig, LinkFaults
from ..codec import dumps, loads
from ..messages import AdminLeave, MESSAGE_TYPES
from .framing import (MAX_FRAME_BYTES, FrameError, challenge_payload, dial_handshake,
                      encode_frame, new_nonce, parse_hello, read_frame, split_address,
                      welcome_payload)

#: Connections accepted per wake-up of a listening socket (and its listen() backlog). asyncio
#: accepts that many before any protocol sees them, so it bounds the descriptors a burst of
#: connections takes above the caps.
ACCEPT_BACKLOG = 16

#: Message types a peer may send. AdminLeave is only for the node's own admin endpoint.
WIRE_TYPES = frozenset(name for name in MESSAGE_TYPES if name != AdminLeave.__name__)


class PeerLink:
    """The outbound connection to one peer, with its queue and its reconnect loop.

    Messages wait in a bounded queue while a connection is being made. When an attempt fails,
    what waited for it is dropped (the peer is unreachable: Dynamo's timeouts and retries take
    over) and the link backs off exponentially. A new message, or the peer connecting to us,
    cuts the backoff short (at most one attempt per ``backoff_min_s``), so a peer that comes
    back is reached at once, and a peer that stays away costs one refused connect now and then.
    """

    QUEUE_LIMIT = 10_000

    def __init__(self, transport: "Transport", peer: str):
        self.transport = transport
        self.peer = peer
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(self.QUEUE_LIMIT)
        self.state = "connecting"          # "connecting", "up" or "down"
        self.connects = 0
        self.failures = 0
        self.sent = 0
        self.dropped = 0
        self._wake = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"link->{peer}")

    def wake(self) -> None:
        """Retry now rather than at the end of the backoff (something to send, or the peer
        just connected to us); never sooner than ``backoff_min_s`` after the last attempt."""
        if self.state == "down":
            self._wake.set()

    def offer(self, frame: bytes) -> None:
        if self.queue.full():
            self.dropped += 1
            return
        self.queue.put_nowait(frame)
        self.wake()

    async def _run(self) -> None:
        t, log = self.transport, self.transport.log
        delay = t.backoff_min_s
        while not t.closing:
            address = t.resolve(self.peer)
            writer = None
            try:
                if not address:
                    raise OSError(f"no address known for {self.peer} yet")
                host, port = split_address(address)
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                        t.connect_timeout_s)
                await asyncio.wait_for(self._handshake(reader, writer, address),
                                       t.hello_timeout_s)
                self.state, delay = "up", t.backoff_min_s
                self.connects += 1
                log.debug("connected to %s at %s", self.peer, address)
                await self._pump(reader, writer)
                log.info("connection to %s at %s closed; reconnecting", self.peer, address)
            except ProtocolError as exc:
                self.failures += 1
                if self.state != "down":
                    log.warning("refused by %s at %s: %s; retrying with backoff",
                                self.peer, address, exc)
            except (OSError, ValueError, asyncio.TimeoutError, ConnectionError) as exc:
                self.failures += 1
                if self.state != "down":
                    log.info("cannot reach %s at %s: %s; retrying with backoff",
                             self.peer, address or "?", exc or type(exc).__name__)
            except Exception:  # a bug: say so, and keep the link alive
                self.failures += 1
                log.exception("link to %s failed", self.peer)
            finally:
                if writer is not None:
                    writer.close()
            self.state = "down"
            self._drain_queue()
            self._wake.clear()
            await asyncio.sleep(t.backoff_min_s)
            try:
                await asyncio.wait_for(self._wake.wait(), delay * (0.5 + t.rng.random()))
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, t.backoff_max_s)

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         address: str) -> None:
        """Answer the peer's challenge with our hello and check its welcome (see
        :mod:`.framing`). Raises :class:`ProtocolError` if the peer is not who we meant to
        reach or cannot prove it holds the secret."""
        t = self.transport
        await dial_handshake(reader, writer, node=t.node_id, address=t.address,
                             cluster=t.cluster, secret=t.secret, expect=self.peer,
                             max_bytes=t.max_frame_bytes)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Write queued frames until the connection breaks. The peer never writes on this
        connection, so end-of-stream from it means it closed (or was killed)."""
        while True:
            frame = await self.queue.get()
            batch = [frame]
            while not self.queue.empty() and len(batch) < 256:
                batch.append(self.queue.get_nowait())
            if reader.at_eof() or writer.is_closing():
                self.dropped += len(batch)
                return
            writer.writelines(batch)
            await writer.drain()
            self.sent += len(batch)

    def _drain_queue(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
            self.dropped += 1

    def to_json(self) -> dict:
        return {"state": self.state, "connects": self.connects, "failures": self.failures,
                "sent": self.sent, "dropped": self.dropped, "queued": self.queue.qsize()}


class Transport:
    """Framed messages between nodes over TCP. See the module docstring.

    ``secret`` is the cluster's shared secret: only peers that prove they hold it are heard,
    and only peers that prove it are sent anything (``ValueError`` if it is empty).
    ``deliver(src, msg)`` is called for every message that arrives on a link that is not cut;
    ``on_drop(src, dst, msg, why)`` for every message the faults stop;
    ``addresses(dst)`` gives the node's current idea of a peer's address (its membership view),
    consulted before the address book and the addresses peers announced in their hellos.
    """

    def __init__(self, node_id: str, cluster: str, deliver: Callable[[str, Any], Any], *,
                 secret: str, addresses: Callable[[str], str] = lambda _n: "",
                 address_book: Optional[dict[str, str]] = None,
                 faults: Optional[LinkFaults] = None,
                 on_drop: Callable[[str, str, Any, str], None] = lambda *_a: None,
                 log: Optional[logging.Logger] = None, max_frame_bytes: int = MAX_FRAME_BYTES,
                 hello_timeout_s: float = 5.0, connect_timeout_s: float = 2.0,
                 backoff_min_s: float = 0.05, backoff_max_s: float = 1.0, seed: int = 0):
        if not isinstance(secret, str) or not secret:
            raise ValueError("a transport needs the cluster's secret (a non-empty string)")
        self.node_id = node_id
        self.cluster = cluster
        self.secret = secret
        self.deliver = deliver
        self.addresses = addresses
        self.address_book = dict(address_book or {})
        self.learned: dict[str, str] = {}
        self.faults = faults or LinkFaults(FaultConfig.none(), random.Random(f"{seed}/{node_id}"))
        self.on_drop = on_drop
        self._delayed: set[asyncio.TimerHandle] = set()   # messages the fault model holds back
        self.log = log or logging.getLogger(f"dynamo_lab.tcp.{node_id}")
        self.max_frame_bytes = max_frame_bytes
        self.hello_timeout_s = hello_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.rng = random.Random(f"{seed}/{node_id}/backoff")
        self.address = ""
        self.closing = False
        self.links: dict[str, PeerLink] = {}
        self.server: Optional[asyncio.base_events.Server] = None
        self._inbound: set[asyncio.Task] = set()
        self.max_inbound = 256          # inbound connections at once; more are closed at once
        self.refused = 0
        self.received = 0

    # -- listening ------------------------------------------------------------------------

    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind (port 0: the OS picks one) without accepting yet; returns ``HOST:PORT``."""
        self.server = await asyncio.start_server(self._accept, host, port, start_serving=False,
                                                 backlog=ACCEPT_BACKLOG)
        bound_host, bound_port = self.server.sockets[0].getsockname()[:2]
        self.address = f"{bound_host}:{bound_port}"
        return self.address

    async def start_serving(self) -> None:
        assert self.server is not None, "listen() first"
        await self.server.start_serving()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._inbound) >= self.max_inbound:
            # Unauthenticated connections die within hello_timeout_s; until then, a flood of
            # them must not use up the descriptors the node needs.
            self.refused += 1
            self.log.warning("peer connection limit (%d) reached; closing a new connection",
                             self.max_inbound)
            writer.transport.abort()
            return
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._inbound.add(task)
        task.add_done_callback(self._inbound.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        who = f"{peername[0]}:{peername[1]}" if peername else "?"
        src = None
        try:
            nonce = new_nonce()
            writer.write(encode_frame(challenge_payload(self.node_id, nonce)))
            await writer.drain()
            try:
                first = await asyncio.wait_for(read_frame(reader, self.max_frame_bytes),
                                               self.hello_timeout_s)
            except asyncio.TimeoutError:
                self._refuse(who, f"no hello within {self.hello_timeout_s} s; closing")
                return
            if first is None:
                self._refuse(who, "closed before saying hello")
                return
            src, address, their_nonce = parse_hello(first, self.cluster, self.secret,
                                                    server=self.node_id, server_nonce=nonce)
            if src == self.node_id:
                raise ProtocolError(f"peer claims to be this node ({src})")
            writer.write(encode_frame(welcome_payload(self.node_id, self.cluster, self.secret,
                                                      client=src, nonce=their_nonce)))
            await writer.drain()
            if address:
                self.learned[src] = address
            link = self.links.get(src)
            if link is not None:
                link.wake()
            who = f"{src} ({who})"
            while True:
                payload = await read_frame(reader, self.max_frame_bytes)
                if payload is None:
                    return
                self._on_frame(src, who, payload)
        except FrameError as exc:
            self._refuse(who, f"{exc}; closing the connection")
        except ProtocolError as exc:
            self._refuse(who, f"{exc}; closing the connection")
        except (ConnectionError, OSError) as exc:
            self.log.info("connection from %s lost: %s", who, exc)
        except Exception:  # a bug: say so, drop this connection, keep serving the others
            self.log.exception("connection from %s failed", who)
        finally:
            writer.close()

    def _on_frame(self, src: str, who: str, payload: bytes) -> None:
        try:
            msg = loads(payload)
            name = type(msg).__name__
            if name not in WIRE_TYPES:
                raise ProtocolError(f"{name} may not be sent over the network")
        except ProtocolError as exc:
            self._refuse(who, f"{exc}; frame dropped")
            return
        if self.faults.cut(src, self.node_id):
            self.on_drop(src, self.node_id, msg, "partition")
            return
        self.received += 1
        self.deliver(src, msg)

    def _refuse(self, who: str, why: str) -> None:
        self.refused += 1
        self.log.warning("refused input from %s: %s", who, why)

    # -- sending --------------------------------------------------------------------------

    def resolve(self, node: str) -> str:
        """Where ``node`` listens: its membership entry, else the address book, else its hello."""
        return self.addresses(node) or self.address_book.get(node) or self.learned.get(node, "")

    def send(self, dst: str, msg: Any) -> None:
        """Queue ``msg`` for ``dst`` (never blocks; may drop, see :class:`PeerLink`), after
        the fault model had its say: a cut link or a lost message goes nowhere, a delayed
        copy is queued later."""
        if self.closing:
            return
        if self.faults.cut(self.node_id, dst):
            self.on_drop(self.node_id, dst, msg, "partition")
            return
        delays = self.faults.fate(self.node_id, dst)
        if not delays:
            self.on_drop(self.node_id, dst, msg, "lost")
            return
        payload = dumps(msg)
        if len(payload) > self.max_frame_bytes:
            self.log.error("not sending %s to %s: %d bytes exceeds the frame limit",
                           type(msg).__name__, dst, len(payload))
            return
        frame = encode_frame(payload, self.max_frame_bytes)
        for delay in delays:
            if delay <= 0:
                self._offer(dst, frame)
                continue
            box: list = []
            box.append(asyncio.get_running_loop().call_later(delay, self._offer_later, box,
                                                             dst, frame))
            self._delayed.add(box[0])

    def _offer_later(self, box: list, dst: str, frame: bytes) -> None:
        self._delayed.discard(box[0])
        if not self.closing:
            self._offer(dst, frame)

    def _offer(self, dst: str, frame: bytes) -> None:
        link = self.links.get(dst)
        if link is None:
            link = self.links[dst] = PeerLink(self, dst)
        link.offer(frame)

    # -- shutting down --------------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening, close every connection and cancel every task this transport owns."""
        self.closing = True
        for handle in self._delayed:
            handle.cancel()
        self._delayed.clear()
        if self.server is not None:
            self.server.close()
        tasks = [link.task for link in self.links.values()] + list(self._inbound)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    def to_json(self) -> dict:
        return {"address": self.address, "received": self.received, "refused": self.refused,
                "links": {p: link.to_json() for p, link in sorted(self.links.items())},
                "faults": self.faults.to_json()}
