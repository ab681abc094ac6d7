"""Is it the student's own code? Each lab says what its parts must not use of the reference
(:class:`dynamo_lab.labs.OwnCode`); a part that uses it gets no marks.

Two layers find it. Before a check runs, the student's code is read (:func:`reference_uses`:
bytecode, closures, defaults, base classes, and the student's helpers it reaches). While it
runs, the reference methods the lab watches record any call made from student code
(:func:`tripwire`). Reference code the node runs *for* a student's part, through the services it
hands the part, is not the student's use: :func:`on_students_behalf` and
:class:`StudentServices`.
"""

from __future__ import annotations

import builtins
import contextlib
import dis
import functools
import importlib
import os
import sys
import sysconfig
import types
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .failures import REFERENCE_USED_MARK, STATE, ReferenceUsed


@dataclass(frozen=True)
class Rules:
    """One lab's own-code rules, resolved: ``objects`` id -> public name; ``modules``;
    ``watched`` (class, method name) pairs."""
    modules: tuple[str, ...]
    objects: dict[int, str]
    watched: tuple[tuple[type, str], ...]


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@functools.lru_cache(maxsize=None)
def rules_of(lab=None) -> Rules:
    """The rules of ``lab`` (a :class:`~dynamo_lab.labs.Lab`), or of every lab together.
    (Modules and classes live as long as the process, so their ids are stable.)"""
    from ..labs import labs
    specs = [lab.own_code] if lab is not None else [one.own_code for one in labs()]
    modules: list[str] = []
    objects: dict[int, str] = {}
    watched: list[tuple[type, str]] = []
    for spec in specs:
        modules += [m for m in spec.modules if m not in modules]
        for name, ref in spec.objects.items():
            objects[id(_load(ref))] = name
        for ref, methods in spec.watched.items():
            owner = _load(ref)
            watched += [(owner, m) for m in methods if (owner, m) not in watched]
    return Rules(tuple(modules), objects, tuple(watched))


def lab_of(invariant: str):
    """The lab an invariant belongs to (None for a name no lab grades)."""
    from ..labs import invariants
    found = invariants().get(invariant)
    return found[0] if found else None


@contextlib.contextmanager
def on_students_behalf():
    """Code run here is the reference working for the student's part (a service of the node),
    not the student's code using the reference: the tripwire does not count it."""
    depth, STATE.student_depth = STATE.student_depth, 0
    try:
        yield
    finally:
        STATE.student_depth = depth


class StudentServices:
    """The node's services as a student's part sees them in a graded cluster: every service
    runs :func:`on_students_behalf` (wrap a student's part class with :func:`student_part`)."""

    def __init__(self, services: Any):
        object.__setattr__(self, "_services", services)

    def __getattr__(self, name: str) -> Any:
        with on_students_behalf():
            value = getattr(self._services, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def service(*args, **kwargs):
            with on_students_behalf():
                return value(*args, **kwargs)
        return service


def student_part(part_class: type):
    """A part factory for :class:`~dynamo_lab.Parts`: builds ``part_class`` with
    :class:`StudentServices` instead of the node's own."""
    def build(services):
        return part_class(StudentServices(services))
    build.__name__ = f"student_part({part_class.__name__})"
    return build


_TRIPWIRE_DEPTH = 0
_SAVED: list[tuple[type, str, Any]] = []


def _make_watcher(owner: type, name: str, raw: Any) -> Any:
    label = f"dynamo_lab.{owner.__name__}.{name.lstrip('_') if name != '__init__' else '__init__'}"
    if isinstance(raw, classmethod):
        fn = raw.__func__

        @functools.wraps(fn)
        def watched_cls(*args, **kwargs):
            if STATE.student_depth:
                STATE.reference_calls.append(label)
            return fn(*args, **kwargs)
        return classmethod(watched_cls)

    @functools.wraps(raw)
    def watched(*args, **kwargs):
        if STATE.student_depth:
            STATE.reference_calls.append(label)
        return raw(*args, **kwargs)
    return watched


@contextlib.contextmanager
def tripwire(lab=None):
    """Watch the reference's methods (those ``lab`` watches; every lab's without one) while a
    check runs; restore them afterwards."""
    global _TRIPWIRE_DEPTH
    if _TRIPWIRE_DEPTH == 0:
        for owner, name in rules_of(lab).watched:
            raw = owner.__dict__.get(name)
            if raw is None:
                continue
            _SAVED.append((owner, name, raw))
            setattr(owner, name, _make_watcher(owner, name, raw))
    _TRIPWIRE_DEPTH += 1
    try:
        yield
    finally:
        _TRIPWIRE_DEPTH -= 1
        if _TRIPWIRE_DEPTH == 0:
            while _SAVED:
                owner, name, raw = _SAVED.pop()
                setattr(owner, name, raw)


def _is_reference_module(obj: Any) -> bool:
    return isinstance(obj, types.ModuleType) and obj.__name__.startswith("dynamo_lab")


def _resolve(name: str, fn_globals: Mapping[str, Any]) -> Any:
    if name in fn_globals:
        return fn_globals[name]
    return getattr(builtins, name, None)


def _scan_code(code: types.CodeType, fn_globals: Mapping[str, Any],
               closure: Mapping[str, Any], found: list[str], todo: list[Any], where: str,
               rules: "Rules") -> None:
    forbidden = rules.objects
    current: Any = None        # the object the previous instruction loaded, when known
    importing: Optional[str] = None
    for ins in dis.get_instructions(code):
        op, arg = ins.opname, ins.argval
        if op in ("LOAD_GLOBAL", "LOAD_NAME"):
            current = _resolve(arg, fn_globals)
        elif op in ("LOAD_DEREF", "LOAD_CLASSDEREF") and arg in closure:
            current = closure[arg]
        elif op in ("LOAD_ATTR", "LOAD_METHOD") and current is not None:
            current = getattr(current, arg, None) if _is_reference_module(current) else None
        elif op == "IMPORT_NAME":
            importing = arg
            if arg in rules.modules:
                found.append(f"{where} imports {arg}")
            current = None
            continue
        elif op == "IMPORT_FROM" and importing and importing.startswith("dynamo_lab"):
            mod = __import__(importing, fromlist=[arg])
            obj = getattr(mod, arg, None)
            if id(obj) in forbidden:
                found.append(f"{where} imports {forbidden[id(obj)]}")
            continue
        elif op == "IMPORT_STAR" and importing == "dynamo_lab":
            found.append(f"{where} does 'from dynamo_lab import *'")
            continue
        else:
            current = None
            continue
        if current is None:
            continue
        if id(current) in forbidden:
            found.append(f"{where} uses {forbidden[id(current)]}")
            current = None
        elif isinstance(current, (types.FunctionType, type)):
            todo.append(current)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _scan_code(const, fn_globals, closure, found, todo, where, rules)


def _user_functions(obj: Any) -> list[tuple[str, types.FunctionType]]:
    if isinstance(obj, types.FunctionType):
        return [(obj.__qualname__, obj)]
    if isinstance(obj, types.MethodType):
        return _user_functions(obj.__func__)
    if isinstance(obj, type):
        out = []
        for name, attr in sorted(vars(obj).items()):
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if isinstance(attr, property):
                for f in (attr.fget, attr.fset, attr.fdel):
                    if isinstance(f, types.FunctionType):
                        out.append((f.__qualname__, f))
            elif isinstance(attr, types.FunctionType):
                out.append((attr.__qualname__, attr))
        return out
    return []


def reference_uses(obj: Any, lab=None) -> list[str]:
    """Where ``obj`` (a function or class, and the student helpers it reaches) uses what
    ``lab`` forbids of the reference (every lab's rules without one): a list of human-readable
    findings, empty when it does not."""
    rules = rules_of(lab)
    forbidden = rules.objects
    found: list[str] = []
    seen: set[int] = set()
    todo: list[Any] = [obj]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if id(item) in forbidden:
            found.append(f"it is {forbidden[id(item)]}")
            continue
        if _is_library(item):
            continue
        if isinstance(item, type):
            for base in item.__mro__[1:]:
                if id(base) in forbidden:
                    found.append(f"class {item.__qualname__} inherits from {forbidden[id(base)]}")
                elif base is not object and not _is_library(base):
                    todo.append(base)
            for name, attr in sorted(vars(item).items()):
                if id(attr) in forbidden:
                    found.append(f"class {item.__qualname__} holds {forbidden[id(attr)]} as {name}")
        for qualname, fn in _user_functions(item):
            closure = {}
            if fn.__closure__:
                for var, cell in zip(fn.__code__.co_freevars, fn.__closure__):
                    try:
                        closure[var] = cell.cell_contents
                    except ValueError:
                        continue
            for var, value in closure.items():
                if id(value) in forbidden:
                    found.append(f"{qualname} captures {forbidden[id(value)]}")
            for default in (fn.__defaults__ or ()) + tuple((fn.__kwdefaults__ or {}).values()):
                if id(default) in forbidden:
                    found.append(f"{qualname} has {forbidden[id(default)]} as a default")
            _scan_code(fn.__code__, fn.__globals__, closure, found, todo, qualname, rules)
    return sorted(set(found))


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")
             if paths.get(k)}
    return tuple(sorted(roots))


def _is_library(obj: Any) -> bool:
    """True for objects of installed packages, the standard library and dynamo_lab itself (not
    scanned); False for the student's code (a notebook's ``__main__``, or any other file)."""
    module = getattr(obj, "__module__", None) or ""
    if module == "__main__" or module.startswith("__"):
        return False
    if module == "builtins" or module.startswith("dynamo_lab"):
        return True
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if path is None:
        return module in sys.builtin_module_names
    path = os.path.realpath(path)
    return any(path.startswith(root + os.sep) for root in _library_roots())


def assert_own_code(obj: Any, what: str = "code", *, invariant: str = "",
                    seed: Optional[int] = None, replay: str = "") -> None:
    """Raise :class:`ReferenceUsed` if ``obj`` (a student's function or class) uses the
    reference implementation directly: imports, names, base classes, closures, helpers. The
    rules are those of the lab the ``invariant`` belongs to (every lab's without one)."""
    __tracebackhide__ = True
    found = reference_uses(obj, lab_of(invariant))
    if found:
        raise ReferenceUsed(invariant or "own-code", headline=f"your {what} {REFERENCE_USED_MARK}",
                            note="; ".join(found) + ". The lab's parts must be your own code; "
                                 "this check gives no marks while they use the reference",
                            seed=seed, replay=replay)
