"""Length-prefixed JSON frames: how nodes talk over TCP.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (a message
from :func:`dynamo_lab.messages.dumps`, or the hello). Rules, in the order a receiver checks
them:

1. The first frame on a connection is the *hello*:
   ``{"hello": {"node": "A", "address": "127.0.0.1:7001", "cluster": "...", "protocol": 1}}``.
   It names the sending node; every later frame on the connection comes from that node.
2. A length larger than the limit (16 MiB by default) is refused before any of the body is
   read: the connection is closed, since the stream cannot be trusted after it.
3. A frame that is not a known message is refused (a log line); the connection stays open,
   because framing is still intact.

:class:`FrameDecoder` is sans-I/O (bytes in, frames out), so it is tested on its own;
:func:`read_frame` is the asyncio form the transport uses. No pickle anywhere.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

from ..errors import ProtocolError

#: The largest frame body a node accepts. A value is at most ~1 MB, but a Transfer or a
#: SyncVersions carries up to 64 keys' siblings, so the limit leaves room for those.
MAX_FRAME_BYTES = 16 * 1024 * 1024
PROTOCOL_VERSION = 1
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


def hello_payload(node: str, address: str, cluster: str) -> bytes:
    """The first frame a connecting node sends: who it is and where it listens."""
    return json.dumps({"hello": {"node": node, "address": address, "cluster": cluster,
                                 "protocol": PROTOCOL_VERSION}},
                      separators=(",", ":")).encode("utf-8")


def parse_hello(payload: bytes, cluster: str) -> tuple[str, str]:
    """``(node, address)`` from a hello frame. Raises :class:`ProtocolError` saying what is
    wrong: not JSON, not a hello, a bad node id, another protocol version or another cluster."""
    try:
        obj: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"hello is not valid JSON: {exc}") from None
    hello = obj.get("hello") if isinstance(obj, dict) else None
    if not isinstance(hello, dict):
        raise ProtocolError("the first frame must be a hello {\"hello\": {\"node\": ...}}")
    node, address = hello.get("node"), hello.get("address", "")
    if not isinstance(node, str) or not node or ":" in node or len(node) > 64:
        raise ProtocolError(f"hello names no valid node id: {node!r}")
    if not isinstance(address, str):
        raise ProtocolError(f"hello address must be a string, got {type(address).__name__}")
    if hello.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(f"{node} speaks protocol {hello.get('protocol')!r}, "
                            f"this node speaks {PROTOCOL_VERSION}")
    if hello.get("cluster") != cluster:
        raise ProtocolError(f"{node} belongs to cluster {hello.get('cluster')!r}, "
                            f"not this one ({cluster!r})")
    return node, address


def split_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:7001"`` -> ``("127.0.0.1", 7001)``; ``ValueError`` if malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"an address is HOST:PORT such as 127.0.0.1:7001; got {address!r}")
    return host.strip("[]"), int(port)
