"""How a :class:`~dynamo_lab.node.Parts` travels to a node process: as code, never as pickles.

A node process of :class:`~dynamo_lab.TcpCluster` rebuilds the parts from a JSON description
(:func:`describe_parts` in the parent, :func:`build_parts` in the node). Each part is one of

``{"ref": "package.module:Name", "path": ROOT}``
    a class or function of an importable module (``ROOT`` is the folder it was imported from);
``{"ref": "/abs/path/file.py:Name"}``
    a class or function of a source file, loaded by the node under a private module name;
``{"call": PART, "args": [PART, ...], "kwargs": {NAME: PART}}``
    what an adapter made: the labs' adapters (``grading.student_ring_factory``,
    ``grading.student_versioning``) are decorated with :func:`recipe`, so what they return
    remembers how it was made and the node makes it again;
``{"data": JSON}``
    plain data (a recipe's ``vnodes=8``).

Code with no importable file (a notebook's cells, or the ``__main__`` of a script) is
*shipped*: the source of each class and function used, with the helpers, imports and constants
it needs from its module, is written to one ``.py`` file the node loads (:func:`ship_source`).
A part that cannot travel (an object with no recipe, a closure, a global that is neither code,
a module nor a constant) is refused with a :class:`ConfigError` that says what to do.

A node also takes parts by reference, ``dynamo-lab node --parts my_parts.py:PARTS`` (or
``module:PARTS``): a :class:`Parts`, or a function that returns one (:func:`load_parts`).
"""

from __future__ import annotations

import ast
import dataclasses
import dis
import functools
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import linecache
import math
import os
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError

RECIPE = "__dynamo_recipe__"
_WHAT_TO_DO = ("define it at the top level of a cell or module, or put your parts in a .py file "
               "and pass TcpCluster(parts='my_parts.py:PARTS')")


def recipe(make: Callable) -> Callable:
    """Decorator for adapters: what ``make(*args, **kwargs)`` returns remembers the call, so a
    node process can make it again (its arguments travel as code references or JSON data)."""
    @functools.wraps(make)
    def remembering(*args, **kwargs):
        made = make(*args, **kwargs)
        try:
            setattr(made, RECIPE, (remembering, args, kwargs))
        except (AttributeError, TypeError):
            pass        # an object that takes no attributes: refused if it is shipped
        return made
    return remembering


# -- the parent: describing ------------------------------------------------------------------------

def describe_parts(parts: Any, ship_dir: str | os.PathLike) -> dict | str:
    """The JSON description of ``parts`` (a ``Parts``, or a reference string, passed through
    with a file path made absolute). Shipped source goes to ``ship_dir``."""
    from .node import Parts
    if isinstance(parts, str):
        load_parts(parts)                                   # refuse a bad reference early
        return _absolute(parts)
    if not isinstance(parts, Parts):
        raise ConfigError(f"parts must be a dynamo_lab.Parts or a reference 'module:NAME' / "
                          f"'file.py:NAME'; got {type(parts).__name__}")
    shipper = _Shipper(Path(ship_dir))
    out = {}
    for f in dataclasses.fields(parts):
        value = getattr(parts, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if value is default or (_is_data(value) and value == default):
            continue
        out[f.name] = shipper.describe(value, f"Parts.{f.name}")
    shipper.write()
    return out


def _absolute(ref: str) -> str:
    where, _, name = ref.rpartition(":")
    return f"{os.path.abspath(where)}:{name}" if _is_file_ref(where) else ref


def _is_file_ref(where: str) -> bool:
    return where.endswith(".py") or os.sep in where


def _is_data(v: Any) -> bool:
    """JSON data that comes back the same after a JSON round trip."""
    if v is None or isinstance(v, (bool, int, str)):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if type(v) is list:
        return all(_is_data(x) for x in v)
    if type(v) is dict:
        return all(isinstance(k, str) and _is_data(x) for k, x in v.items())
    return False


class _Shipper:
    """Describes parts; gathers what must be shipped as source, one file per module."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.roots: dict[str, list[str]] = {}     # module name -> top-level names to ship

    def describe(self, value: Any, what: str) -> dict:
        made = getattr(value, RECIPE, None) if not isinstance(value, type) else None
        if made is not None:
            make, args, kwargs = made
            return {"call": self.describe(make, f"the maker of {what}"),
                    "args": [self.describe(a, f"{what}, argument {i + 1}")
                             for i, a in enumerate(args)],
                    "kwargs": {k: self.describe(v, f"{what}, argument {k}")
                               for k, v in kwargs.items()}}
        if _is_data(value):
            return {"data": value}
        return self.reference(value, what)

    def reference(self, obj: Any, what: str) -> dict:
        if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj)):
            raise ConfigError(
                f"{what} is a {type(obj).__name__} object, which a node process cannot rebuild "
                f"(parts travel as code, never pickled): pass a class or a function, make it "
                f"with an adapter decorated with dynamo_lab.shipping.recipe (as grading's "
                f"adapters are), or put your parts in a .py file and pass "
                f"TcpCluster(parts='my_parts.py:PARTS')")
        qual, modname = obj.__qualname__, obj.__module__
        if "<" in qual:
            raise ConfigError(f"{what} ({qual}) is defined inside a function or is a lambda, so "
                              f"a node process cannot find it: {_WHAT_TO_DO}")
        mod = sys.modules.get(modname)
        found = _lookup(mod, qual) if mod is not None else None
        if found is not obj and not (inspect.ismethod(obj) and found == obj):
            raise ConfigError(f"{what} ({modname}.{qual}) is not what {modname}.{qual} names now "
                              f"(was it redefined?): run its cell again, then build the parts")
        file = getattr(mod, "__file__", None)
        if modname != "__main__" and file and os.path.isfile(file):
            if _importable(modname):
                return {"ref": f"{modname}:{qual}", "path": _import_root(modname, file)}
            return {"ref": f"{os.path.abspath(file)}:{qual}"}
        self.roots.setdefault(modname, [])
        top = qual.split(".")[0]
        if top not in self.roots[modname]:
            self.roots[modname].append(top)
        return {"ref": f"{self._file_of(modname)}:{qual}"}

    def _file_of(self, modname: str) -> Path:
        return (self.folder / f"shipped_{modname.strip('_').replace('.', '_')}.py").resolve()

    def write(self) -> None:
        for modname, names in self.roots.items():
            text = ship_source(sys.modules[modname], names)
            self.folder.mkdir(parents=True, exist_ok=True)
            self._file_of(modname).write_text(text, encoding="utf-8")


def _lookup(mod: Any, qual: str) -> Any:
    obj = mod
    for part in qual.split("."):
        obj = getattr(obj, part, None)
    return obj


def _import_root(modname: str, file: str) -> str:
    """The ``sys.path`` folder ``modname`` was imported from."""
    root = Path(file).resolve().parent
    depth = modname.count(".") + (Path(file).name == "__init__.py")
    for _ in range(depth):
        root = root.parent
    return str(root)


# -- shipping source ---------------------------------------------------------------------------------

def ship_source(mod: types.ModuleType, names: list[str]) -> str:
    """One module's source for the top-level classes and functions ``names``: their own code,
    the classes and functions of the module they use (found in their bytecode and
    decorators), and the modules, imported names and constants those use. Raises
    :class:`ConfigError` for a global that is none of these."""
    g = vars(mod)
    header: list[str] = []                           # imports and constants
    aliases: list[str] = []                          # other names of shipped definitions
    defs: dict[str, tuple[str, set[str]]] = {}       # name -> (source, names its definition uses)
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        obj = g[name]
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__:
            if obj.__name__ != name:
                aliases.append(f"{name} = {obj.__name__}")
                todo.append(obj.__name__)
                continue
            source, at_definition, at_call = _definition(obj)
            defs[name] = (source, at_definition)
            todo += sorted(n for n in at_definition | at_call if n in g and n != name)
        else:
            header.append(_import_or_constant(name, obj, mod.__name__))
    origin = getattr(mod, "__file__", None) or "a notebook's cells"
    return (f'"""Shipped by dynamo_lab.shipping from {origin} (module {mod.__name__}): the code '
            f'the parts use."""\n\n' + "".join(f"{h}\n" for h in sorted(
                header, key=lambda h: (not h.startswith(("import ", "from ")), h))) + "\n\n"
            + "\n\n\n".join(defs[n][0] for n in _definition_order(defs)) + "\n"
            + "".join(f"{a}\n" for a in aliases))


def _import_or_constant(name: str, obj: Any, here: str) -> str:
    if isinstance(obj, types.ModuleType):
        if obj.__name__ == "__main__" or not _importable(obj.__name__):
            raise ConfigError(f"the parts use the module {name} ({obj.__name__}), which a node "
                              f"process cannot import: {_WHAT_TO_DO}")
        return f"import {obj.__name__} as {name}"
    modname, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if (callable(obj) and isinstance(modname, str) and isinstance(qual, str) and "<" not in qual
            and modname != here and modname in sys.modules and "." not in qual
            and _importable(modname)
            and _lookup(sys.modules[modname], qual) is obj):
        return f"from {modname} import {qual} as {name}"
    if _is_literal(obj):
        return f"{name} = {obj!r}"
    raise ConfigError(f"the parts use the global {name}, a {type(obj).__name__} object, which "
                      f"cannot be sent to a node process as source (only code, modules and "
                      f"constants can): make it a constant, a function or a class, or put your "
                      f"parts in a .py file and pass TcpCluster(parts='my_parts.py:PARTS')")


def _importable(modname: str) -> bool:
    """Would a fresh interpreter find ``modname`` on this ``sys.path`` (not merely in
    ``sys.modules``, where a module loaded from a file path also is)?"""
    if modname in sys.builtin_module_names:
        return True
    parent = modname.rpartition(".")[0]
    path = getattr(sys.modules.get(parent), "__path__", None) if parent else None
    if parent and path is None:
        return False
    try:
        return importlib.machinery.PathFinder.find_spec(modname, path) is not None
    except (ImportError, ValueError):
        return False


def _is_literal(v: Any) -> bool:
    """A value ``repr`` writes as a Python literal that reads back equal."""
    if not isinstance(v, (type(None), bool, int, float, complex, str, bytes, tuple, list, set,
                          dict)):
        return False
    try:
        back = ast.literal_eval(repr(v))
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        return False
    return type(back) is type(v) and back == v


def _definition(obj: Any) -> tuple[str, set[str], set[str]]:
    """``(source, names its definition evaluates, globals its code reads when called)``."""
    if inspect.isclass(obj):
        funcs = _functions_of(obj)
        anchors = [f.__code__ for f in funcs if _has_source(f.__code__)]
        if not anchors:
            raise ConfigError(f"cannot find the source of class {obj.__qualname__} (it has no "
                              f"methods of its own): {_WHAT_TO_DO.split(', or ', 1)[1]}")
        filename, line = anchors[0].co_filename, anchors[0].co_firstlineno
        node, lines = _find(filename, lambda n: isinstance(n, ast.ClassDef)
                            and n.name == obj.__name__ and n.lineno <= line <= n.end_lineno)
        at_call = set().union(*(_code_globals(f.__code__) for f in funcs))
    else:
        code = obj.__code__
        node, lines = _find(code.co_filename, lambda n: isinstance(
            n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == obj.__name__
            and _first_line(n) == code.co_firstlineno)
        at_call = _code_globals(code)
    source = textwrap.dedent("".join(lines[_first_line(node) - 1:node.end_lineno])).rstrip()
    return source, _definition_names(node), at_call


def _functions_of(cls: type) -> list[types.FunctionType]:
    out = []
    for v in vars(cls).values():
        if isinstance(v, (staticmethod, classmethod)):
            v = v.__func__
        if isinstance(v, property):
            out += [f for f in (v.fget, v.fset, v.fdel) if inspect.isfunction(f)]
        elif inspect.isfunction(v):
            out.append(v)
        elif inspect.isclass(v) and v.__qualname__.startswith(cls.__qualname__ + "."):
            out += _functions_of(v)
    return out


def _has_source(code: types.CodeType) -> bool:
    return bool(linecache.getlines(code.co_filename))


def _find(filename: str, match: Callable[[ast.AST], bool]) -> tuple[ast.AST, list[str]]:
    lines = linecache.getlines(filename)
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:      # a cell with IPython syntax (%magic): look at one statement at a time
        tree = None
    nodes = [n for n in ast.walk(tree) if match(n)] if tree is not None else []
    if not nodes:
        raise ConfigError(f"cannot find the source code in {filename}: {_WHAT_TO_DO}")
    return nodes[0], lines


def _first_line(node: ast.AST) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def _code_globals(code: types.CodeType) -> set[str]:
    names = {i.argval for i in dis.get_instructions(code)
             if i.opname in ("LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_globals(const)
    return names


def _definition_names(node: ast.AST) -> set[str]:
    """Names a ``def`` or ``class`` statement evaluates when it runs (decorators, bases,
    defaults, annotations, a class body's own statements), not what its functions read later."""
    out: set[str] = set()

    def visit(n: ast.AST, top: bool) -> None:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and not top:
            parts = list(getattr(n, "decorator_list", [])) + n.args.defaults + [
                d for d in n.args.kw_defaults if d is not None]
            parts += [a.annotation for a in n.args.args + n.args.kwonlyargs if a.annotation]
            parts += [n.returns] if getattr(n, "returns", None) else []
            for p in parts:
                visit(p, False)
            return
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            out.add(n.id)
        for child in ast.iter_child_nodes(n):
            visit(child, False)

    if isinstance(node, ast.ClassDef):
        for part in node.decorator_list + node.bases + [k.value for k in node.keywords]:
            visit(part, False)
        for stmt in node.body:
            visit(stmt, False)
    else:
        visit(node, False)
    return out


def _definition_order(defs: dict[str, tuple[str, set[str]]]) -> list[str]:
    """Definitions in an order where each comes after what its definition evaluates."""
    done: list[str] = []

    def place(name: str, seen: frozenset) -> None:
        if name in done or name in seen:
            return
        for dep in sorted(defs[name][1]):
            if dep in defs:
                place(dep, seen | {name})
        done.append(name)

    for name in defs:
        place(name, frozenset())
    return done


# -- the node: building ------------------------------------------------------------------------------

def build_parts(desc: dict | str):
    """The ``Parts`` a description (or a reference string) stands for."""
    from .node import Parts
    if isinstance(desc, str):
        return load_parts(desc)
    known = {f.name for f in dataclasses.fields(Parts)}
    if not isinstance(desc, dict) or set(desc) - known:
        raise ConfigError(f"parts must describe fields among {sorted(known)}; got "
                          f"{sorted(desc) if isinstance(desc, dict) else desc!r} (are the "
                          f"cluster and the node running the same dynamo-lab?)")
    return Parts(**{name: _build(spec) for name, spec in desc.items()})


def _build(spec: Any) -> Any:
    if not isinstance(spec, dict):
        raise ConfigError(f"not a part description: {spec!r}")
    if "data" in spec:
        return spec["data"]
    if "ref" in spec:
        return resolve(spec["ref"], spec.get("path"))
    if "call" in spec:
        make = _build(spec["call"])
        return make(*[_build(a) for a in spec.get("args", [])],
                    **{k: _build(v) for k, v in spec.get("kwargs", {}).items()})
    raise ConfigError(f"not a part description (no data, ref or call): {spec!r}")


def resolve(ref: str, path: str | None = None) -> Any:
    """The object ``ref`` names: ``"package.module:Name"`` (imported; ``path`` is added to
    ``sys.path`` first when given) or ``"path/to/file.py:Name"`` (the file loaded under a
    private module name, once). ``Name`` may be dotted (``Class.method``)."""
    where, sep, qual = ref.rpartition(":")
    if not sep or not where or not qual:
        raise ConfigError(f"a reference is 'module:NAME' or 'path/to/file.py:NAME'; got {ref!r}")
    try:
        if _is_file_ref(where):
            mod = _load_file(where)
        else:
            if path and path not in sys.path:
                sys.path.append(path)
            mod = importlib.import_module(where)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot load {where} for {ref!r}: {type(exc).__name__}: {exc}") from None
    obj = _lookup(mod, qual)
    if obj is None:
        raise ConfigError(f"{where} has no {qual} (for {ref!r})")
    return obj


def load_parts(ref: str):
    """The ``Parts`` a reference names: a ``Parts`` object, or a function returning one."""
    from .node import Parts
    obj = resolve(_absolute(ref))
    if callable(obj) and not isinstance(obj, Parts):
        obj = obj()
    if not isinstance(obj, Parts):
        raise ConfigError(f"{ref} is a {type(obj).__name__}, not a dynamo_lab.Parts (or a "
                          f"function returning one)")
    return obj


@functools.lru_cache(maxsize=None)
def _load_file(path: str) -> types.ModuleType:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"no source file {path}")
    name = f"_dynamo_lab_parts_{Path(path).stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod
