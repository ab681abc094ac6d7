"""Length-prefixed JSON frames and the authenticated handshake: how nodes talk over TCP.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (a message
from :func:`dynamo_lab.codec.dumps`, or a handshake frame). A connection opens with a
three-frame handshake that proves both ends hold the cluster's *secret* (never sent, never on
a command line) without revealing it:

1. the listening node sends a *challenge*: ``{"challenge": {"node": "B", "nonce": "<hex>",
   "protocol": 2}}``, a fresh random nonce per connection;
2. the connecting node answers with its *hello*: ``{"hello": {"node": "A", "address":
   "127.0.0.1:7001", "cluster": "...", "protocol": 2, "nonce": "<hex>", "proof": "<hex>"}}``
   where ``proof`` is HMAC-SHA256(secret, every field above and B's challenge), so a hello
   recorded on one connection is worthless on the next;
3. the listening node checks the proof and sends a *welcome* with its own proof over A's
   nonce, so A knows it reached a member of its cluster (not whatever took a dead node's
   port) before it sends anything.

After that every frame on the connection is a message from the node the hello named. A
receiver checks, in order:

* a length larger than the limit (16 MiB by default) is refused before any of the body is
  read: the connection is closed, since the stream cannot be trusted after it;
* a handshake frame that is malformed, of another protocol or cluster, or whose proof is wrong
  closes the connection (a log line says which);
* a frame that is not a known message is refused (a log line); the connection stays open,
  because framing is still intact.

The handshake authenticates the connection, it does not encrypt it: nodes of dynamo-lab only
listen on 127.0.0.1. :class:`FrameDecoder` is sans-I/O (bytes in, frames out), so it is tested
on its own; :func:`read_frame` is the asyncio form the transport uses. No pickle anywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import struct
from typing import Any

from ..errors import ProtocolError

#: The largest frame body a node accepts. A value is at most ~1 MB, but a Transfer or a
#: SyncVersions carries up to 64 keys' siblings, so the limit leaves room for those.
MAX_FRAME_BYTES = 16 * 1024 * 1024
PROTOCOL_VERSION = 2
_HEADER = struct.Struct(">I")


class FrameError(ProtocolError):
    """A peer broke the framing (oversize length, connection cut inside a frame). The
    connection cannot be trusted any further and is closed."""


def encode_frame(payload: bytes, max_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """The frame carrying ``payload``. Raises :class:`FrameError` if it is over ``max_bytes``
    (the receiver would refuse it anyway) and ``TypeError`` if it is not bytes."""
    if not isinstance(payload, (bytes, bytearray)):
        raise TypeError(f"a frame carries bytes, got {type(payload).__name__}")
    if len(payload) > max_bytes:
        raise FrameError(f"frame of {len(payload)} bytes exceeds the {max_bytes}-byte limit")
    return _HEADER.pack(len(payload)) + bytes(payload)


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get back whole frame bodies.

    Raises :class:`FrameError` as soon as a header announces more than ``max_bytes``, before
    buffering the body, so a hostile length cannot make the node allocate it.
    """

    def __init__(self, max_bytes: int = MAX_FRAME_BYTES):
        self.max_bytes = max_bytes
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole frame (nonzero at EOF: a cut frame)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out = []
        while len(self._buf) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(self._buf)
            if length > self.max_bytes:
                raise FrameError(f"frame of {length} bytes exceeds the {self.max_bytes}-byte limit")
            end = _HEADER.size + length
            if len(self._buf) < end:
                break
            out.append(bytes(self._buf[_HEADER.size:end]))
            del self._buf[:end]
        return out


async def read_frame(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME_BYTES) -> bytes | None:
    """The next frame body, or None on a clean end of stream (between frames).

    Raises :class:`FrameError` for an oversize length or a stream cut inside a frame.
    """
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError(f"connection closed inside a frame header "
                         f"({len(exc.partial)} of {_HEADER.size} bytes)") from None
    (length,) = _HEADER.unpack(header)
    if length > max_bytes:
        raise FrameError(f"frame of {length} bytes exceeds the {max_bytes}-byte limit")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(f"connection closed inside a frame ({len(exc.partial)} of {length} "
                         f"bytes received)") from None


def _dump(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _load(payload: bytes, kind: str) -> dict:
    """The body of a handshake frame ``{kind: {...}}``; :class:`ProtocolError` otherwise."""
    try:
        obj: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{kind} is not valid JSON: {exc}") from None
    body = obj.get(kind) if isinstance(obj, dict) else None
    if not isinstance(body, dict):
        raise ProtocolError(f"the {kind} frame was expected here: {{\"{kind}\": {{...}}}}")
    if body.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(f"{kind} of protocol {body.get('protocol')!r}; this node speaks "
                            f"{PROTOCOL_VERSION} (run the same dynamo-lab version everywhere)")
    return body


def _node_id(node: Any, kind: str) -> str:
    if not isinstance(node, str) or not node or ":" in node or len(node) > 64:
        raise ProtocolError(f"{kind} names no valid node id: {node!r}")
    return node


def _nonce(nonce: Any, kind: str) -> str:
    if not isinstance(nonce, str) or len(nonce) != 32 or any(c not in "0123456789abcdef"
                                                             for c in nonce):
        raise ProtocolError(f"{kind} carries no valid nonce (32 hex digits)")
    return nonce


def new_nonce() -> str:
    """A fresh 128-bit nonce, as 32 hex digits."""
    return secrets.token_hex(16)


def _proof(secret: str, *fields: str) -> str:
    if not secret:
        raise ValueError("the handshake needs the cluster's secret; it is empty")
    return hmac.new(secret.encode("utf-8"), "\n".join(fields).encode("utf-8"),
                    hashlib.sha256).hexdigest()


def _check_proof(proof: Any, secret: str, *fields: str) -> bool:
    return isinstance(proof, str) and hmac.compare_digest(proof.encode("utf-8", "replace"),
                                                          _proof(secret, *fields).encode())


def challenge_payload(node: str, nonce: str) -> bytes:
    """The first frame the listening node sends on a new connection."""
    return _dump({"challenge": {"node": node, "nonce": nonce, "protocol": PROTOCOL_VERSION}})


def parse_challenge(payload: bytes) -> tuple[str, str]:
    """``(node, nonce)`` from a challenge frame; :class:`ProtocolError` if malformed."""
    body = _load(payload, "challenge")
    return _node_id(body.get("node"), "challenge"), _nonce(body.get("nonce"), "challenge")


def hello_payload(node: str, address: str, cluster: str, secret: str, *, server: str,
                  server_nonce: str, nonce: str) -> bytes:
    """The connecting node's answer to ``server``'s challenge: who it is, where it listens,
    and the proof that it holds ``secret``."""
    proof = _proof(secret, "hello", str(PROTOCOL_VERSION), cluster, node, address, nonce,
                   server, server_nonce)
    return _dump({"hello": {"node": node, "address": address, "cluster": cluster,
                            "protocol": PROTOCOL_VERSION, "nonce": nonce, "proof": proof}})


def parse_hello(payload: bytes, cluster: str, secret: str, *, server: str,
                server_nonce: str) -> tuple[str, str, str]:
    """``(node, address, nonce)`` from a hello answering ``server``'s challenge
    ``server_nonce``. Raises :class:`ProtocolError` saying what is wrong: not JSON, not a
    hello, a bad node id, another protocol or cluster, or no valid proof of the secret."""
    hello = _load(payload, "hello")
    node = _node_id(hello.get("node"), "hello")
    address = hello.get("address", "")
    if not isinstance(address, str):
        raise ProtocolError(f"hello address must be a string, got {type(address).__name__}")
    if hello.get("cluster") != cluster:
        raise ProtocolError(f"{node} belongs to cluster {hello.get('cluster')!r}, "
                            f"not this one ({cluster!r})")
    nonce = _nonce(hello.get("nonce"), "hello")
    if not _check_proof(hello.get("proof"), secret, "hello", str(PROTOCOL_VERSION), cluster,
                        node, address, nonce, server, server_nonce):
        raise ProtocolError(f"hello from {node!r} does not prove it holds the cluster's "
                            f"secret (another cluster's secret, or none)")
    return node, address, nonce


def welcome_payload(node: str, cluster: str, secret: str, *, client: str, nonce: str) -> bytes:
    """The listening node's proof, over the connecting node's nonce, that it holds the secret."""
    proof = _proof(secret, "welcome", str(PROTOCOL_VERSION), cluster, node, client, nonce)
    return _dump({"welcome": {"node": node, "protocol": PROTOCOL_VERSION, "proof": proof}})


def check_welcome(payload: bytes, cluster: str, secret: str, *, server: str, client: str,
                  nonce: str) -> None:
    """Raise :class:`ProtocolError` unless ``payload`` is ``server``'s valid welcome."""
    body = _load(payload, "welcome")
    if body.get("node") != server or not _check_proof(
            body.get("proof"), secret, "welcome", str(PROTOCOL_VERSION), cluster, server,
            client, nonce):
        raise ProtocolError(f"the welcome from {server!r} does not prove it holds the "
                            f"cluster's secret")


async def dial_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                         node: str, address: str, cluster: str, secret: str,
                         expect: str | None = None,
                         max_bytes: int = MAX_FRAME_BYTES) -> str:
    """The connecting side of the handshake: read the challenge, send our hello, check the
    welcome. Returns the listener's node id. Raises :class:`ProtocolError` if the listener is
    not ``expect`` (when given) or cannot prove it holds ``secret``, or closed the connection
    on our hello (it refused us: its log says why); ``ConnectionError`` if it closed before
    its challenge."""
    first = await read_frame(reader, max_bytes)
    if first is None:
        raise ConnectionError("closed before sending its challenge")
    server, server_nonce = parse_challenge(first)
    if expect is not None and server != expect:
        raise ProtocolError(f"{address or 'the peer'} is node {server}, not {expect} "
                            f"(a stale address)")
    nonce = new_nonce()
    writer.write(encode_frame(hello_payload(node, address, cluster, secret, server=server,
                                            server_nonce=server_nonce, nonce=nonce)))
    await writer.drain()
    welcome = await read_frame(reader, max_bytes)
    if welcome is None:
        raise ProtocolError("it closed the connection on our hello: does it run with the same "
                            "cluster and secret? (its log says why)")
    check_welcome(welcome, cluster, secret, server=server, client=node, nonce=nonce)
    return server


def split_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:7001"`` -> ``("127.0.0.1", 7001)``; ``ValueError`` if malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"an address is HOST:PORT such as 127.0.0.1:7001; got {address!r}")
    return host.strip("[]"), int(port)
