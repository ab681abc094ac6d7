"""JSON text at C speed: the standard library's C encoder and C scanner, each built once.

``json.dumps`` (and ``JSONEncoder.encode``) builds a new C encoder at every call, and
``json.loads`` passes through three layers of Python before its C scanner runs. For the small
messages nodes exchange (a timer is 40 bytes) that overhead was most of the cost of the
simulator's wire check. These two keep the standard library's output and errors exactly:

- :func:`encoder` returns a function giving what ``JSONEncoder(...).encode`` gives for the
  options this project uses (compact separators, UTF-8 characters kept, no NaN).
- :func:`loads` returns what ``json.loads`` returns; whenever its fast path does not apply
  (leading or trailing whitespace, a BOM, bytes that are not UTF-8, anything malformed) it
  *is* ``json.loads``, so every error is the one ``json.loads`` raises.

Where the C accelerators are missing (another Python), both are the standard functions.
"""

from __future__ import annotations

import json
from json import encoder as _std_encoder, scanner as _std_scanner
from typing import Any, Callable

_PROBE = {"b": [1, 2.5, -0.0, 1e300, None, True, "é\n\"\\"], "a": {"z": "", "y": []}}


def encoder(*, sort_keys: bool = False) -> Callable[[Any], str]:
    """``JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False).encode``, with its C encoder made once instead of at every call."""
    std = json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False)
    make_c = getattr(_std_encoder, "c_make_encoder", None)
    basestring = _std_encoder.encode_basestring

    def make():
        # markers: the ids of the containers being encoded, for the circular-reference check.
        return make_c({}, std.default, basestring, None, ":", ",", sort_keys, False, False)

    try:
        state = [make()]
        if "".join(state[0](_PROBE, 0)) != std.encode(_PROBE):
            raise ValueError("differs")
    except (TypeError, ValueError):       # no C encoder, or one with another signature
        return std.encode

    def encode(obj: Any) -> str:
        if isinstance(obj, str):
            return basestring(obj)       # as JSONEncoder.encode does
        try:
            return "".join(state[0](obj, 0))
        except BaseException:
            state[0] = make()            # a failed call may leave its markers behind
            raise

    return encode


_scan_once = _std_scanner.make_scanner(json.JSONDecoder())


def loads(data: str | bytes) -> Any:
    """``json.loads(data)``, without its layers of Python for a document with no surrounding
    whitespace (what :func:`encoder` writes)."""
    if type(data) is bytes:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return json.loads(data)
    elif type(data) is str:
        text = data
    else:
        return json.loads(data)
    try:
        obj, end = _scan_once(text, 0)
    except (StopIteration, ValueError):
        return json.loads(data)
    if end != len(text):
        return json.loads(data)
    return obj
