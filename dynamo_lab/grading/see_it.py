"""What the labs' "see it" cells lean on, in a student's own kernel.

* :func:`fold`: an exception the student's part raised while the cluster was running it is
  shown as one short message (your frame, the line, what Dynamo was doing) instead of a
  hundred lines through the simulator, the node and the adapter. The full traceback is kept:
  IPython's ``%tb`` shows it, and so does ``traceback.print_exception`` (plain Python ignores
  the fold). The adapters' shared path (:func:`~dynamo_lab.grading.harness.student_scope`)
  folds every exception that leaves student code, once; the type and the message are the
  student's own, so the checks' reports (which read them) are unchanged.
* :func:`waits_for`: a cell that needs an earlier part, or a name an earlier cell makes, says
  which one it waits for instead of failing with ``NameError`` or ``NotImplementedError``.
"""

from __future__ import annotations

import dis
import os
import sys
import sysconfig
import types
from pathlib import Path
from typing import Any, Optional

_PACKAGE = str(Path(__file__).resolve().parent.parent) + os.sep
_LIBRARIES = tuple(str(Path(p).resolve()) + os.sep for p in {
    sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")})
_RED, _BOLD, _RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


# -- where it broke ------------------------------------------------------------------------------

def _is_students(filename: str) -> bool:
    """A frame of code the student wrote: not this package, not the standard library or an
    installed package (a notebook cell, a test file, a module of their own)."""
    if filename.startswith("<frozen") or filename in ("<string>",):
        return False
    path = os.path.realpath(filename) if os.path.isabs(filename) else filename
    return not path.startswith(_PACKAGE) and not path.startswith(_LIBRARIES)


def _name(frame: types.FrameType) -> str:
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    owner = frame.f_locals.get("self")
    if "." not in name and owner is not None:
        name = f"{type(owner).__name__}.{name}"
    return name.replace(".<locals>", "")


def _where(filename: str, lineno: Optional[int]) -> str:
    """'Cell In[7], line 21' for a notebook cell (as IPython names it), else 'file.py, line 21'."""
    cell = None
    try:
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821
        cell = shell.compile._filename_map.get(filename)
    except Exception:
        pass
    place = f"Cell In[{cell}]" if cell is not None else os.path.basename(filename)
    return f"{place}, line {lineno}" if lineno else place


def _line(filename: str, lineno: Optional[int]) -> str:
    import linecache
    return linecache.getline(filename, lineno or 0).strip()


def _student_frames(tb: Optional[types.TracebackType]) -> list[tuple[types.FrameType, int]]:
    out = []
    while tb is not None:
        if _is_students(tb.tb_frame.f_code.co_filename):
            out.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return out


def _innermost_run(tb: Optional[types.TracebackType]) -> list[tuple[types.FrameType, int]]:
    """The student's frames below the last library frame: the part the cluster called, down
    to where it raised (a notebook helper that started the cluster is above them)."""
    run: list[tuple[types.FrameType, int]] = []
    while tb is not None:
        if _is_students(tb.tb_frame.f_code.co_filename):
            run.append((tb.tb_frame, tb.tb_lineno))
        else:
            run = []
        tb = tb.tb_next
    return run


# -- what Dynamo was doing -----------------------------------------------------------------------

def _phrase(msg: Any, src: Optional[str]) -> str:
    """'coordinated a put of 'cart' from client alice' for the message a node was handling."""
    kind = type(msg).__name__
    if isinstance(src, str) and src.startswith("client:"):
        src = src[len("client:"):]
    if kind == "Forward":
        inner = msg.request
        op = type(inner).__name__.replace("Client", "").lower()
        return f"took over a {op} of {inner.key!r} forwarded by node {src}"
    key = getattr(msg, "key", None)
    of = f" of {key!r}" if isinstance(key, str) else ""
    table = {
        "ClientPut": f"coordinated a put{of} from client {src}",
        "ClientGet": f"coordinated a get{of} from client {src}",
        "ClientDelete": f"coordinated a delete{of} from client {src}",
        "ReplicaPut": f"stored a replica{of} sent by node {src}",
        "ReplicaGet": f"read its replica{of} for node {src}",
        "ReplicaPutAck": f"counted node {src}'s acknowledgement of a write{of}",
        "ReplicaGetReply": f"counted node {src}'s answer to a read{of}",
        "ReadRepair": f"repaired its replica{of} for node {src}",
        "HandoffPut": f"kept a hinted replica{of} from node {src}",
        "HandoffAck": f"dropped a hint{of} node {src} took back",
        "Gossip": f"merged gossip from node {src}",
        "Transfer": f"took over keys from node {src}",
        "SyncVersions": f"merged the versions node {src} sent by anti-entropy",
        "MerkleLevel": f"compared Merkle hashes with node {src}",
        "MerkleLeaves": f"compared Merkle leaves with node {src}",
        "GossipTick": "gossiped (its periodic timer)",
        "HandoffTick": "tried to hand its hints back (its periodic timer)",
        "AntiEntropyTick": "started an anti-entropy round (its periodic timer)",
        "RebalanceTick": "moved away keys it no longer replicates (its periodic timer)",
        "RequestTimeout": "gave up waiting for a quorum (its request timer)",
        "ForwardTimeout": "gave up waiting for a forwarded request (its timer)",
        "ReapTick": f"reaped a tombstone{of} (its timer)",
    }
    return table.get(kind, f"handled {kind}" + (f" from {src}" if src else "") + of)


def dynamo_was_doing(frame: Optional[types.FrameType]) -> str:
    """What the cluster was doing when code below ``frame`` ran: 'node C coordinated a put of
    'cart' from client alice'; '' when no node of a cluster was running it (or it cannot be
    told: this only ever adds words to a report, it never raises)."""
    try:
        return _doing(frame)
    except Exception:
        return ""


def _doing(frame: Optional[types.FrameType]) -> str:
    from ..runtime import Driver
    services = None
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, Driver):
            if frame.f_code.co_name == "step":
                args = frame.f_locals.get("args") or ()
                if len(args) == 2:                          # on_message(src, msg)
                    return f"node {owner.name} {_phrase(args[1], args[0])}"
                if len(args) == 1:                          # on_timer(timer)
                    return f"node {owner.name} {_phrase(args[0], None)}"
            if frame.f_code.co_name == "boot":
                return f"node {owner.name} started"
        if services is None and type(owner).__name__ == "NodeServices":
            services = owner
        frame = frame.f_back
    if services is not None:
        return f"node {services.id} was building its ring or its clocks"
    return ""


# -- the fold ------------------------------------------------------------------------------------

def fold(exc: BaseException, doing: Optional[str] = None) -> BaseException:
    """Mark ``exc`` (raised by student code the cluster called) to be shown folded; returns it.

    ``doing`` is what Dynamo was doing (found on the running stack when not given). An
    exception already folded is left as it is (the innermost fold knows most).
    """
    if getattr(exc, "_dynamo_lab_fold", None) is not None:
        return exc
    if doing is None:
        doing = dynamo_was_doing(sys._getframe(1))
    state = {"doing": doing, "renders": 0}
    try:
        exc._dynamo_lab_fold = state  # type: ignore[attr-defined]
        exc._render_traceback_ = lambda: _render(exc)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):    # an exception type without a __dict__: shown whole
        pass
    return exc


def folded_lines(exc: BaseException) -> list[str]:
    """The short report of a folded exception, as plain lines (no colour)."""
    doing = exc._dynamo_lab_fold["doing"]  # type: ignore[attr-defined]
    frames = _student_frames(exc.__traceback__)
    name, detail = type(exc).__name__, str(exc)
    where = getattr(exc, "where", "")        # raised in the grading sandbox: it says where
    called = _innermost_run(exc.__traceback__)
    if called:
        entry, (deepest, lineno) = called[0][0], called[-1]
        culprit = f"your `{_name(entry)}` raised {name}"
        at = f"{_where(deepest.f_code.co_filename, lineno)}, in {_name(deepest)}"
        text = _line(deepest.f_code.co_filename, lineno)
        at_line = f"  at {at}" + (f": {text}" if text else "")
    else:
        culprit, at_line = f"your code raised {name}", (f"  where:{where}" if where else "")
    lines = [f"{name}: {culprit}" + (f" while {doing}" if doing else " inside the cluster")]
    if detail:
        lines.append(f"  message: {detail}")
    if at_line:
        lines.append(at_line)
    cells = [f for f in frames if f[0].f_code.co_name == "<module>"]
    if cells:
        frame, lineno = cells[0]
        lines.append(f"  your cell: {_where(frame.f_code.co_filename, lineno)}: "
                     f"{_line(frame.f_code.co_filename, lineno)}")
    depth = sum(1 for tb in _walk(exc.__traceback__)
                if not _is_students(tb.tb_frame.f_code.co_filename))
    lines.append(f"  ({depth} frames through the simulator, the node and the adapter are "
                 f"folded away: run %tb to see them)")
    return lines


def _walk(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _render(exc: BaseException) -> list[str]:
    """IPython's hook: the folded report the first time; the whole traceback after (``%tb``)."""
    state = exc._dynamo_lab_fold  # type: ignore[attr-defined]
    state["renders"] += 1
    if state["renders"] > 1:
        return full_traceback(exc)
    try:
        first, *rest = folded_lines(exc)
    except Exception:           # never hide the student's error behind one of ours
        return full_traceback(exc)
    name, _, text = first.partition(": ")
    return [f"{_RED}{_BOLD}{name}{_RESET}: {text}", *rest]


def full_traceback(exc: BaseException) -> list[str]:
    """Every frame, as IPython (or, outside it, Python) shows an exception that is not folded."""
    try:
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821
        return shell.InteractiveTB.structured_traceback(type(exc), exc, exc.__traceback__)
    except Exception:
        import traceback
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()


# -- cells that wait for an earlier part ---------------------------------------------------------

class WaitingFor(NameError):
    """A cell needs a part that is not written yet, or a name an earlier cell did not make.
    Shown as its message alone (IPython's ``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        return [f"{_BOLD}waiting{_RESET}: {self}"]


def _stub_code(code: types.CodeType) -> bool:
    """The release's stub: the body starts by raising NotImplementedError."""
    for ins in dis.get_instructions(code):
        if ins.opname in ("RESUME", "NOP", "COPY_FREE_VARS", "MAKE_CELL", "PUSH_NULL"):
            continue
        return ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and ins.argval == "NotImplementedError"
    return False


def stubs(obj: Any, name: Optional[str] = None) -> list[str]:
    """What of ``obj`` is still the release's ``raise NotImplementedError()``: ``[name]`` for
    such a function or a class with nothing written, else the class's unwritten methods
    (``name`` defaults to the object's own name)."""
    name = name or getattr(obj, "__name__", "")
    if isinstance(obj, types.FunctionType):
        return [name] if _stub_code(obj.__code__) else []
    if isinstance(obj, type):
        methods = [(m, f) for m, f in vars(obj).items() if isinstance(f, types.FunctionType)]
        unwritten = [f"{name}.{m}" for m, f in methods if _stub_code(f.__code__)]
        return [name] if methods and len(unwritten) == len(methods) else unwritten
    return []


def waits_for(*names: str, namespace: Optional[dict] = None) -> None:
    """Stop the calling cell with one line unless every name is ready: defined in the
    notebook (``namespace``, default the caller's globals) and, for the student's functions
    and classes, no longer the release's ``raise NotImplementedError()``.

    Raises :class:`WaitingFor` naming what is missing: the parts first (the student knows
    them by name), then the names an earlier cell should have made.
    """
    ns = namespace if namespace is not None else sys._getframe(1).f_globals
    missing = [n for n in names if n not in ns]
    unwritten = [s for n in names if n in ns for s in stubs(ns[n], n)]
    if unwritten:
        shown = ", ".join(f"`{s}`" for s in unwritten)
        raise WaitingFor(f"this cell runs once {shown} {'is' if len(unwritten) == 1 else 'are'} "
                         f"written (still `raise NotImplementedError()`): implement "
                         f"{'it' if len(unwritten) == 1 else 'them'} above, then run this cell "
                         f"again")
    if missing:
        shown = ", ".join(f"`{n}`" for n in missing)
        raise WaitingFor(f"this cell needs {shown}, which an earlier cell makes: that cell did not "
                         f"run to the end (run it again and fix what it reports), then this one")
