"""The one codec between messages and JSON: :func:`dumps`/:func:`loads` for the wire,
:func:`encode`/:func:`decode` for the JSON-ready dicts a trace keeps. There is no pickle anywhere.

A message or timer (a frozen dataclass of :mod:`dynamo_lab.messages`) is one JSON object,
``{"type": name, field: value, ...}``. A version is written from the texts it made once (its
value as it was built, with sorted keys, as a store hands it out; its clock's canonical text).
Decoding checks every field against the type its class declares and raises
:class:`ProtocolError` naming the field for anything else, so a peer's bytes are checked once,
here, and trusted inside the node.

Each class gets, on first use, a *writer* and a *reader* made from its fields and type hints:
Python source generated once per class, as :mod:`dataclasses` makes ``__init__``.

- The writer writes text, integer and flag fields inline and hands every other field to
  :func:`_wire_text`.
- The reader takes every field at once, checks text, integer and flag fields inline, and
  decodes the rest with the field's decoder. A message with a field missing or one too many goes
  the general way (:func:`_build`), field by field, so every error is the same either way.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from json.encoder import encode_basestring
from typing import Any, Callable, Optional, Union

from . import jsontext
from .errors import ProtocolError
from .messages import MESSAGE_TYPES, TIMER_TYPES, MemberState
from .ring import KeyRange
from .vclock import VectorClock
from .versions import Versioned


def encode(msg: Any) -> dict:
    """The JSON-ready form of a message or timer: ``{"type": name, field: value, ...}``."""
    out = {"type": type(msg).__name__}
    plain = _PLAIN_TYPES
    for field in _message_fields(msg):
        v = getattr(msg, field)
        out[field] = v if type(v) in plain else _to_wire(v)
    return out


def decode(obj: Any) -> Any:
    """Rebuild a message from :func:`encode`'s output; :class:`ProtocolError` if it is not one."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"a message is a JSON object, got {type(obj).__name__}")
    name = obj.get("type")
    cls = MESSAGE_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        cls = TIMER_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {name!r}")
    return _read(cls, obj)


def _read(cls: type, obj: dict) -> Any:
    read = _READERS.get(cls)
    if read is None:
        read = _READERS[cls] = _reader(cls)
    return read(obj)


# json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False), its C encoder
# built once (jsontext).
_to_json_text = jsontext.encoder()


def dumps(msg: Any) -> bytes:
    """Encode a message to compact UTF-8 JSON bytes: the JSON of :func:`encode`'s output, a
    version written from the texts it made once."""
    write = _WRITERS.get(type(msg))
    if write is None:
        _message_fields(msg)                  # (TypeError for anything but a message)
        write = _WRITERS[type(msg)] = _writer(type(msg))
    return write(msg).encode("utf-8")


_WRITERS: dict[type, Callable[[Any], str]] = {}
_READERS: dict[type, Callable[[dict], Any]] = {}


def _writer(cls: type) -> Callable[[Any], str]:
    """``msg -> its JSON text``, generated for ``cls``: for ``ClientGet``,
    ``''.join(('{"type":"ClientGet","req_id":', <req_id>, ',"key":', <key>, '}'))``."""
    hints = typing.get_type_hints(cls)
    parts = [repr('{"type":' + _to_json_text(cls.__name__))]
    for name in _field_names(cls):
        tp, x = hints[name], f"(x := m.{name})"
        parts.append(repr(f',"{name}":'))
        if tp is str:
            parts.append(f"(_str(x) if type{x} is str else _text(x))")
        elif tp is int:
            parts.append(f"(_int(x) if type{x} is int else _text(x))")
        elif tp is bool:
            parts.append(f"('true' if {x} is True else 'false' if x is False else _text(x))")
        elif tp == Optional[str]:
            parts.append(f"('null' if {x} is None else _str(x) if type(x) is str else _text(x))")
        else:
            parts.append(f"_text(m.{name})")
    parts.append("'}'")
    return _generated(cls, "write", "m", f"return ''.join(({', '.join(parts)}))",
                      _str=encode_basestring, _int=int.__repr__, _text=_wire_text)


def _reader(cls: type) -> Callable[[dict], Any]:
    """``obj -> message``, generated for ``cls`` from its plan (see the module's docstring)."""
    _, steps = _plan(cls)
    if "type" in {name for name, _, _ in steps} or not all(f.init for f in dataclasses.fields(cls)):
        return lambda obj: _build(cls, obj)
    hints = typing.get_type_hints(cls)
    xs = [f"x{i}" for i in range(len(steps))]
    lines = [f"if len(obj) != {len(steps)} + ('type' in obj):", "    return _build(_cls, obj)"]
    if steps:
        lines[:0] = ["try:", *(f"    {x} = obj[{name!r}]" for x, (name, _, _) in zip(xs, steps)),
                     "except KeyError:", "    return _build(_cls, obj)"]
    env: dict[str, Any] = {"_cls": cls, "_build": _build}
    for x, (name, decoder, _) in zip(xs, steps):
        tp = hints[name]
        env[f"_{x}"] = decoder
        if tp in (str, int, bool):
            lines.append(f"if type({x}) is not {tp.__name__}: {x} = _{x}({x})")
        elif tp == Optional[str]:
            lines.append(f"if {x} is not None and type({x}) is not str: {x} = _{x}({x})")
        elif tp is not Any:
            lines.append(f"{x} = _{x}({x})")
    lines.append(f"return _cls({', '.join(xs)})")
    return _generated(cls, "read", "obj", "\n".join(lines), **env)


def _generated(cls: type, kind: str, arg: str, body: str, **env: Any) -> Callable:
    source = f"def {kind}({arg}):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    exec(source, env)
    fn = env[kind]
    fn.__qualname__ = f"{kind}_{cls.__name__}"
    fn.__source__ = source                    # (for whoever wonders what it does)
    return fn


def _wire_text(v: Any) -> str:
    t = type(v)
    if t is Versioned:
        wid = v.write_id
        return ('{"value":' + v.value_text() + ',"clock":' + v.clock.json_text()
                + (',"deleted":true' if v.deleted else ',"deleted":false')
                + ("}" if wid is None else ',"write_id":' + _to_json_text(wid) + "}"))
    if t is MemberState:
        # Gossip sends a node's whole view every round, mostly the same members as last
        # time: each member's text is made once (it is frozen; a change is a new object).
        text = v.__dict__.get("_wire_text")
        if text is None:
            text = _to_json_text(_to_wire(v))
            object.__setattr__(v, "_wire_text", text)
        return text
    if t is tuple:
        if _PLAIN_TYPES.issuperset(map(type, v)):
            return _to_json_text(v)          # (the encoder writes a tuple as a list)
        if any(type(x) in _NESTED_TEXT for x in v):
            return "[" + ",".join([_wire_text(x) for x in v]) + "]"
    return _to_json_text(v if t in _PLAIN_TYPES else _to_wire(v))


_NESTED_TEXT = frozenset({Versioned, MemberState, tuple})   # what _wire_text writes itself


def loads(data: bytes | str) -> Any:
    """Decode bytes from :func:`dumps`; :class:`ProtocolError` on anything malformed."""
    try:
        obj = jsontext.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"message is not valid JSON: {exc}") from None
    return decode(obj)


def round_trip(msg: Any) -> Any:
    """``decode(json(encode(msg)))``: what the receiver of ``msg`` would see on the wire."""
    return loads(dumps(msg))


_PLAIN = (str, int, float, bool, type(None), list, dict)
_PLAIN_TYPES = frozenset(_PLAIN)


def _to_wire(v: Any) -> Any:
    if type(v) in _PLAIN_TYPES:
        return v
    if isinstance(v, (VectorClock, Versioned, KeyRange)):
        return v.to_json()
    if isinstance(v, MemberState):
        return {f: _to_wire(getattr(v, f)) for f in _field_names(MemberState)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return encode(v)
    if isinstance(v, tuple):
        return [x if type(x) in _PLAIN_TYPES else _to_wire(x) for x in v]
    return v


# What the codec knows of each class, worked out once from its fields and type hints: the
# field names, and for decoding, one checking decoder per field.
_NAMES: dict[type, tuple[str, ...]] = {}
_PLANS: dict[type, tuple[frozenset, tuple]] = {}


def _message_fields(msg: Any) -> tuple[str, ...]:
    """The field names of a message or timer; TypeError for anything else."""
    name = type(msg).__name__
    if name not in MESSAGE_TYPES and name not in TIMER_TYPES:
        raise TypeError(f"{name} is not a dynamo-lab message")
    return _field_names(type(msg))


def _field_names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _plan(cls: type) -> tuple[frozenset, tuple]:
    """``(every key a message of cls may have, ((field, decoder, required), ...))``."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        steps = tuple((f.name, _decoder(hints[f.name], f"{cls.__name__}.{f.name}"),
                       f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
                      for f in fields)
        plan = _PLANS[cls] = (frozenset(f.name for f in fields) | {"type"}, steps)
    return plan


def _build(cls: type, obj: dict) -> Any:
    names, steps = _plan(cls)
    kwargs = {}
    for name, decoder, required in steps:
        if name in obj:
            kwargs[name] = decoder(obj[name])
        elif required:
            raise ProtocolError(f"{cls.__name__} is missing field {name!r}")
    if len(obj) > len(kwargs) + ("type" in obj):      # only then can a key be unknown
        extra = set(obj) - names
        raise ProtocolError(f"{cls.__name__} has unknown fields {sorted(extra)}")
    return cls(**kwargs)


def _list(v: Any, where: str) -> list:
    if not isinstance(v, list):
        raise ProtocolError(f"{where}: expected a list, got {type(v).__name__}")
    return v


def _decoder(tp: Any, where: str):
    """A function that turns the wire form of a ``tp`` field back into a value, raising
    :class:`ProtocolError` (naming ``where``) for anything that is not one."""
    if tp is Any:
        return lambda v: v
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        nullable = type(None) in args
        rest = [a for a in args if a is not type(None)]
        inner = (decode if all(dataclasses.is_dataclass(a) for a in rest)
                 else _decoder(rest[0], where))
        return lambda v: None if v is None and nullable else inner(v)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0], where)
            if args[0] in (str, int):
                # A list of nothing but that type is the tuple (checked in C); anything
                # else goes item by item, for the error that names it.
                only = frozenset({args[0]})
                return lambda v: (tuple(v) if type(v) is list and only.issuperset(map(type, v))
                                  else tuple([item(x) for x in _list(v, where)]))
            return lambda v: tuple([item(x) for x in _list(v, where)])
        if not args:
            return lambda v: tuple(_freeze(x) for x in _list(v, where))
        items = [_decoder(a, where) for a in args]

        def fixed(v):
            if len(_list(v, where)) != len(items):
                raise ProtocolError(f"{where}: expected {len(items)} items, got {len(v)}")
            return tuple(dec(x) for dec, x in zip(items, v))
        return fixed
    if tp is tuple:
        return lambda v: tuple(_freeze(x) for x in _list(v, where))
    if tp in (VectorClock, Versioned, KeyRange):
        def parse(v):
            try:
                return tp.from_json(v)
            except ProtocolError:
                raise
            except (ValueError, TypeError, KeyError) as exc:
                raise ProtocolError(f"{where}: {exc}") from None
        return parse
    if tp is MemberState:
        def member(v):
            if not isinstance(v, dict):
                raise ProtocolError(f"{where}: expected an object")
            return _read(MemberState, v)
        return member
    if tp is str:
        def text(v):
            if type(v) is str:
                return v
            if not isinstance(v, str):
                raise ProtocolError(f"{where}: expected str, got {type(v).__name__}")
            return v
        return text
    if tp is int or tp is bool:
        def exact(v):
            if type(v) is tp:              # (a bool is not an int here, nor an int a bool)
                return v
            raise ProtocolError(f"{where}: expected {tp.__name__}, got {type(v).__name__}")
        return exact
    if tp is float:
        def number(v):
            if isinstance(v, float):
                return v
            if isinstance(v, int) and not isinstance(v, bool):
                return float(v)              # (JSON writes 2.0 as 2.0, but a person may not)
            raise ProtocolError(f"{where}: expected float, got {type(v).__name__}")
        return number
    raise ProtocolError(f"{where}: cannot decode type {tp!r}")  # pragma: no cover - codec bug


def _freeze(x: Any) -> Any:
    """Lists inside an untyped tuple field come back as tuples, as they were sent."""
    if isinstance(x, list):
        return tuple(_freeze(y) for y in x)
    return x
