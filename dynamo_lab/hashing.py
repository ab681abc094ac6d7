"""The key hash: MD5 of the UTF-8 key, read as a 128-bit integer (the paper, section 4.2).

MD5 is used for placement, not for security: it spreads keys uniformly and is the same on every
machine, every run and every ``PYTHONHASHSEED`` (Python's own ``hash`` is none of these).
"""

from __future__ import annotations

import functools
import hashlib

from .errors import InvalidKey

RING_BITS = 128
RING_SIZE = 1 << RING_BITS
MAX_KEY_BYTES = 1024


def check_key(key: object) -> str:
    """Return ``key`` if it is a usable key; raise :class:`InvalidKey` saying why if not."""
    if not isinstance(key, str):
        raise InvalidKey(f"keys are strings; got {type(key).__name__} {key!r}. "
                         f"Convert it first, e.g. str({key!r}).")
    if key == "":
        raise InvalidKey("the empty string is not a key; use a non-empty name such as 'cart:alice'")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:          # a lone surrogate; a key too long is said first
        size = None
    if (size if size is not None else len(key.encode("utf-8", "surrogatepass"))) > MAX_KEY_BYTES:
        raise InvalidKey(f"key is longer than {MAX_KEY_BYTES} bytes; use a shorter name or hash it")
    if size is None:
        raise InvalidKey(f"key {key!r} is not valid Unicode text (lone surrogate)")
    return key


def key_hash(key: str) -> int:
    """Position of ``key`` on the ring: MD5 of its UTF-8 bytes as a big-endian 128-bit integer.

    Raises :class:`InvalidKey` (a ``ValueError``) for anything but a non-empty string.
    """
    if type(key) is str:
        return _position(key)
    check_key(key)                      # a str subclass, or not a str: raises for the latter
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest(), "big")


@functools.lru_cache(maxsize=1 << 16)
def _position(key: str) -> int:
    # Memoised: a key's position never changes, and a node asks for it at every step.
    check_key(key)
    return int.from_bytes(hashlib.md5(key.encode("utf-8")).digest(), "big")
