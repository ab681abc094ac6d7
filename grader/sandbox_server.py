"""The sandbox: where a student's code runs at grading time, and nothing else does.

Started by :mod:`grader.sandbox` as ``python -I -S sandbox_server.py`` (no site-packages, no
user paths), inside new mount, network and PID namespaces where the machine allows. It uses the
standard library only and imports nothing of the project, so neither the reference
implementation nor the grader is reachable from it. It

1. reads one job line from stdin: the lab's prelude (the helpers the lab hands students), the
   student's answer cells, the folders to hide and the limits;
2. isolates itself: every folder to hide gets an empty read-only file system mounted over it
   (the checkout, the course folder with the gradebook and the other submissions, the home
   folders, the virtual environment), the standard library alone is mounted back, ``/tmp`` is a
   fresh small scratch space; then it gives up root (``nobody``), or, when started unprivileged,
   its capabilities (a nested user namespace), so none of this can be undone; then memory, CPU
   time, file size, open files and processes are capped;
3. runs the prelude and each answer cell, and reports which names they defined and which
   cells raised;
4. answers requests, one JSON object per line, until stdin closes: call a name, call a method
   of an object it handed out, read an attribute. Values cross as JSON with a few tags
   (tuples, sets, dicts with non-string keys, bytes, the lab's plain-data types, handles of
   objects that stay here).

Nothing here is trusted: the grader only ever compares what comes back with the reference.
"""

import base64
import ctypes
import json
import os
import resource
import signal
import sys
import traceback
from typing import Any, NamedTuple

PROTOCOL_OUT = None
MAX_LINE = 8 * 1024 * 1024


# -- plain-data types the labs pass across ---------------------------------------------------

class Version(NamedTuple):
    """One version of a key (Lab 2): a JSON value, a clock {node: counter}, a delete flag."""
    value: Any
    clock: dict
    deleted: bool = False


class FrozenRing:
    """A ring that answers preference_list from a table (what the grader hands moved_fraction)."""

    def __init__(self, table, nodes):
        self._table = {(k, n): list(p) for k, n, p in table}
        self.nodes = list(nodes)

    def preference_list(self, key, n):
        try:
            return list(self._table[(key, n)])
        except KeyError:
            raise ValueError(f"this test ring only knows the keys it was given; asked for "
                             f"preference_list({key!r}, {n})") from None

    def __repr__(self):
        return f"<ring of {self.nodes}>"


WIRE_TYPES = {"Version": Version, "FrozenRing": FrozenRing}
_handles: dict = {}


def _handle(obj) -> dict:
    h = len(_handles) + 1
    _handles[h] = obj
    return {"$h": h, "repr": _safe_repr(obj), "type": type(obj).__name__,
            "callable": callable(obj), "is_class": isinstance(obj, type)}


def _safe_repr(obj) -> str:
    try:
        text = repr(obj)
    except Exception as exc:  # a student's __repr__ may raise
        text = f"<{type(obj).__name__} whose repr raised {type(exc).__name__}>"
    return text if len(text) <= 300 else text[:297] + "..."


def encode(x, special, depth=0):
    """``x`` as JSON: plain values as they are; non-finite floats, tuples, sets, dicts with
    keys that are not plain strings and bytes as tagged objects; anything else as
    ``special(x, encode_one)`` returns it. The grader uses the same codec with its own
    ``special`` (:mod:`grader.sandbox`)."""
    if depth > 100:
        raise ValueError("nested more than 100 levels deep")

    def one(item):
        return encode(item, special, depth + 1)

    t = type(x)
    if x is None or t in (bool, int, str):
        return x
    if t is float:
        return x if x == x and x not in (float("inf"), float("-inf")) else {"$f": repr(x)}
    if t is list:
        return [one(i) for i in x]
    if t is tuple:
        return {"$t": [one(i) for i in x]}
    if t in (set, frozenset):
        return {"$set": [one(i) for i in x], "frozen": t is frozenset}
    if t is dict:
        if all(type(k) is str and not k.startswith("$") for k in x):
            return {k: one(v) for k, v in x.items()}
        return {"$d": [[one(k), one(v)] for k, v in x.items()]}
    if t is bytes:
        return {"$b": base64.b64encode(x).decode("ascii")}
    return special(x, one)


def decode(x, special):
    """The inverse of :func:`encode`; an object with a tag not known here is
    ``special(obj, decode_one)`` (which returns the plain dict when it knows no tag either)."""
    def one(item):
        return decode(item, special)

    if isinstance(x, list):
        return [one(i) for i in x]
    if not isinstance(x, dict):
        return x
    if "$t" in x:
        return tuple(one(i) for i in x["$t"])
    if "$set" in x:
        items = [one(i) for i in x["$set"]]
        try:
            return frozenset(items) if x.get("frozen") else set(items)
        except TypeError:                  # unhashable items: keep them visible as a list
            return items
    if "$d" in x:
        try:
            return {one(k): one(v) for k, v in x["$d"]}
        except TypeError:
            return [(one(k), one(v)) for k, v in x["$d"]]
    if "$b" in x:
        return base64.b64decode(x["$b"])
    if "$f" in x:
        return float(x["$f"])
    return special(x, one)


def _encode_here(x, one):
    if type(x) is Version:
        return {"$v": [one(x.value), one(x.clock), one(x.deleted)]}
    if isinstance(x, tuple) and WIRE_TYPES.get(type(x).__name__) is type(x):
        return {"$nt": type(x).__name__, "f": [one(i) for i in x]}   # a lab's record (prelude)
    return _handle(x)


def _decode_here(x, one):
    if "$v" in x:
        value, clock, deleted = x["$v"]
        return Version(one(value), one(clock), deleted)
    if "$h" in x:
        return _handles[x["$h"]]
    if "$ring" in x:
        table, nodes = x["$ring"]
        return FrozenRing(table, nodes)
    if "$nt" in x:
        cls, items = WIRE_TYPES.get(x["$nt"]), [one(i) for i in x["f"]]
        return cls(*items) if cls is not None else tuple(items)
    return {k: one(v) for k, v in x.items()}


# -- isolation ---------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REMOUNT = 1, 2, 4, 4096, 32
CLONE_NEWUSER = 0x10000000


def _mount(src, target, fstype, flags, data=None) -> None:
    if _libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None,
                   flags, data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def isolate(hide: list, keep: list, scratch_mb: int) -> list:
    """Hide ``hide``, mount ``keep`` back read-only, give ``/tmp`` a fresh scratch space.
    Returns notes on what could not be done (empty when fully isolated)."""
    notes = []
    keep_fds = {}
    for k in keep:
        try:
            keep_fds[k] = os.open(k, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            pass
    def under(path, roots):
        return any(path != r and path.startswith(r.rstrip("/") + "/") for r in roots)

    def hide_now(paths):
        for h in paths:
            if os.path.isdir(h):
                _mount("none", h, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")

    try:
        hide_now([h for h in hide if not under(h, keep)])
        _mount("none", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={scratch_mb}m,mode=1777")
        for k, fd in keep_fds.items():
            if under(k, hide):
                os.makedirs(k, exist_ok=True)
                _mount(f"/proc/self/fd/{fd}", k, None, MS_BIND)
                _mount("none", k, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
        hide_now([h for h in hide if under(h, keep)])      # site-packages inside the stdlib
        for h in hide:
            if os.path.isdir(h):
                _mount("none", h, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    except (OSError, AttributeError) as exc:
        notes.append(f"files not isolated: {exc}")
    finally:
        for fd in keep_fds.values():
            os.close(fd)
    return notes


# Landlock (Linux 5.13+): an unprivileged process can give up file access itself.
_SYS_CREATE, _SYS_ADD, _SYS_RESTRICT = 444, 445, 446
_FS_EXECUTE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 2, 1 << 3
_FS_ALL = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1}   # ABI -> every right it knows
_NET_CONNECT_TCP, _NET_BIND_TCP = 1 << 1, 1 << 0
PR_SET_NO_NEW_PRIVS = 38
#: Where the shared libraries of the standard library's extension modules are.
_SYSTEM_LIBS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPort(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def landlock(read_only: list, writable: list) -> str:
    """Restrict this process (and what it starts) to reading ``read_only`` and the system
    libraries, reading and writing ``writable``, and no TCP. Returns "" when done, or why not."""
    sys_ = getattr(_libc, "syscall", None)
    if sys_ is None:
        return "no Landlock on this system"
    abi = sys_(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return "Landlock is not enabled in this kernel"
    fs_all = _FS_ALL.get(min(abi, 3))
    attr = _RulesetAttr(fs_all, (_NET_CONNECT_TCP | _NET_BIND_TCP) if abi >= 4 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 4 else 8
    fd = sys_(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        return f"Landlock refused a ruleset: {os.strerror(ctypes.get_errno())}"
    reading = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    rules = [(p, reading) for p in list(read_only) + list(_SYSTEM_LIBS)]
    rules += [(p, fs_all) for p in writable] + [("/dev/null", _FS_READ_FILE | (1 << 1))]
    try:
        for path, rights in rules:
            try:
                pfd = os.open(path, os.O_PATH)
            except OSError:
                continue
            try:
                if os.path.isfile(path):
                    rights &= _FS_EXECUTE | _FS_READ_FILE | (1 << 1)
                rule = _PathBeneath(rights, pfd)
                sys_(_SYS_ADD, fd, 1, ctypes.byref(rule), ctypes.c_uint32(0))
            finally:
                os.close(pfd)
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if sys_(_SYS_RESTRICT, fd, ctypes.c_uint32(0)) != 0:
            return f"Landlock could not restrict: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(fd)
    return ""


def drop_privileges(notes: list) -> None:
    """Root of the machine gives way to nobody; root of a user namespace (an unprivileged
    start) enters a nested one, which leaves it no capability over the mounts made above."""
    if _outer_root():
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        except OSError as exc:
            notes.append(f"could not become nobody: {exc}")
    elif os.getuid() == 0 and _libc.unshare(CLONE_NEWUSER) != 0:
        notes.append(f"could not drop capabilities: {os.strerror(ctypes.get_errno())}")


def _outer_root() -> bool:
    """True when this process is root of the machine (not only of a user namespace)."""
    try:
        with open("/proc/self/uid_map") as f:
            first = f.read().split()
        return os.getuid() == 0 and first[:2] == ["0", "0"]
    except OSError:
        return os.getuid() == 0


def set_limits(limits: dict) -> None:
    mb = 1024 * 1024
    caps = [(resource.RLIMIT_AS, limits["memory_mb"] * mb),
            (resource.RLIMIT_CPU, limits["cpu_s"]),
            (resource.RLIMIT_FSIZE, limits["file_mb"] * mb),
            (resource.RLIMIT_NOFILE, 64),
            (resource.RLIMIT_CORE, 0)]
    if os.getuid() != 0:
        caps.append((resource.RLIMIT_NPROC, limits["processes"]))
    for which, value in caps:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


# -- what the student's code tries --------------------------------------------------------------

#: kind -> the first few things seen (paths, commands, modules): reported, never trusted.
TRIED: dict = {}
_PROCESS_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                   "os.fork", "os.forkpty", "pty.spawn")
_GRADER_MODULES = ("dynamo_lab", "grader", "nbgrader", "IPython", "ipykernel")


def _tried(kind: str, detail) -> None:
    seen = TRIED.setdefault(kind, [])
    text = str(detail)[:200]
    if len(seen) < 5 and text not in seen:
        seen.append(text)


def watch(hide: list, keep: list) -> None:
    """Note (through an audit hook, which cannot be removed) what the student's code tries
    that a solution never needs: reading the hidden folders, starting processes, the network,
    importing the grader or the reference."""
    roots = tuple(h.rstrip("/") + "/" for h in hide)
    kept = tuple(k.rstrip("/") + "/" for k in keep)

    def hidden(path) -> bool:
        try:
            path = os.fsdecode(path)
        except TypeError:
            return False
        path = os.path.normpath(os.path.join("/tmp", path)) if not path.startswith("/") else path
        return (path in hide or path.startswith(roots)) and not path.startswith(kept)

    def hook(event, args):
        if event in ("open", "os.listdir", "os.scandir", "glob.glob", "sqlite3.connect",
                     "shutil.rmtree", "os.remove", "os.rename") and args and hidden(args[0]):
            _tried("files", args[0])
        elif event in _PROCESS_EVENTS:
            _tried("processes", args[0] if args else event)
        elif event == "socket.connect":
            _tried("network", args[1] if len(args) > 1 else "")
        elif event == "import" and str(args[0]).split(".")[0] in _GRADER_MODULES:
            _tried("grader-or-reference", args[0])

    sys.addaudithook(hook)


# -- running the student's code ----------------------------------------------------------------

def _strip_magics(source: str) -> str:
    """IPython magics and shell escapes are not Python: blank them (line numbers stay)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


#: "<cell id>" -> the cell's lines, to quote where an exception was raised (read from here,
#: never from a file: the files are hidden, and reading them would look like trying).
CELL_LINES: dict = {}


def _where(tb) -> str:
    """`` (in f, cell increment, line 3: return x)`` for the deepest frame in a cell."""
    frames = list(traceback.walk_tb(tb))
    for frame, lineno in reversed(frames):
        name = frame.f_code.co_filename
        if name in CELL_LINES:
            lines = CELL_LINES[name]
            text = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
            return f" (in {frame.f_code.co_name}, {name[1:-1]}, line {lineno}: {text})"
    return ""


def _error(exc: BaseException) -> dict:
    """What the grader learns of an exception: its class, the nearest builtin class it
    derives from (so a ``class RingError(ValueError)`` is still a ``ValueError``), the
    message and where in the student's cells it was raised."""
    base = next((c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"), "Exception")
    return {"type": type(exc).__name__, "base": base, "message": str(exc)[:2000],
            "builtin": type(exc).__module__ == "builtins", "where": _where(exc.__traceback__)}


class CellTimeout(BaseException):
    """A cell ran past its time limit (a BaseException, so ``except Exception`` cannot keep it)."""


def _on_alarm(signum, frame):
    raise CellTimeout("the cell ran past its time limit (an endless loop at the top level?)")


def run_cells(ns: dict, prelude: str, cells: list, cell_s: float, say) -> list:
    exec(compile(prelude, "<prelude>", "exec"), ns)
    errors = []
    signal.signal(signal.SIGALRM, _on_alarm)
    for cell in cells:
        say({"running": cell["id"]})     # so the grader knows which cell never came back
        try:
            # Repeats every 0.25 s, so a bare "except:" that swallows the first one meets more.
            signal.setitimer(signal.ITIMER_REAL, cell_s, 0.25)
            source, name = _strip_magics(cell["source"]), f"<cell {cell['id']}>"
            CELL_LINES[name] = source.splitlines()
            exec(compile(source, name, "exec"), ns)
        except BaseException as exc:  # noqa: B902 (SystemExit too: the cell stops, the rest runs)
            errors.append({"cell": cell["id"], **_error(exc)})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
    return errors


def answer(ns: dict, req: dict) -> dict:
    op = req.get("op")
    if op == "tried":
        return {"ok": encode(TRIED, _encode_here)}
    if op == "call":
        target = ns.get(req["name"])
        if target is None:
            return {"err": {"type": "NameError", "builtin": True, "where": "",
                            "message": f"name {req['name']!r} is not defined"}}
    elif op in ("method", "getattr"):
        target = _handles[req["h"]]
    else:
        return {"err": {"type": "ProtocolError", "builtin": False, "where": "",
                        "message": f"unknown op {op!r}"}}
    try:
        if op == "getattr":
            value = getattr(target, req["name"])
        else:
            fn = getattr(target, req["name"]) if op == "method" else target
            value = fn(*decode(req.get("args", []), _decode_here),
                       **decode(req.get("kwargs", {}), _decode_here))
        return {"ok": encode(value, _encode_here)}
    except BaseException as exc:  # noqa: B902
        return {"err": _error(exc)}


def names(ns: dict) -> dict:
    out = {}
    for name, value in ns.items():
        if name.startswith("__"):
            continue
        out[name] = "class" if isinstance(value, type) else ("function" if callable(value) else "value")
    return out


def main() -> int:
    proto_in = sys.stdin
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    job = json.loads(proto_in.readline())
    notes = list(job.get("notes", []))
    scratch = job.get("scratch")
    if scratch:
        # No namespaces (the grader said so): Landlock alone keeps the files apart.
        why = landlock(job["keep"], [scratch])
        if why:
            notes.append(f"files not isolated: {why}")
    else:
        notes += isolate(job["hide"], job["keep"], job["limits"]["scratch_mb"])
        drop_privileges(notes)      # (under Landlock nothing is to be gained, and root's
    os.chdir(scratch or "/tmp")     # standard library may sit in a folder nobody cannot read)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)          # what the student's code prints goes nowhere
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")
    set_limits(job["limits"])

    def say(obj) -> None:
        line = json.dumps(obj)
        if len(line) > MAX_LINE:
            line = json.dumps({"err": {"type": "ResultTooLarge", "builtin": False, "where": "",
                                       "message": f"the answer is {len(line)} bytes of JSON, "
                                                  f"more than {MAX_LINE}"}})
        proto_out.write(line + "\n")
        proto_out.flush()

    ns = {"__name__": "__student__", "__builtins__": __builtins__, "__wire__": WIRE_TYPES}
    import builtins
    before = dict(vars(builtins))
    watch(job["hide"], job["keep"])
    try:
        errors = run_cells(ns, job["prelude"], job["cells"], job["cell_s"], say)
    except BaseException as exc:  # noqa: B902 (the prelude itself failed: the grader's bug)
        errors = [{"cell": "<prelude>", **_error(exc)}]
    ns.pop("__wire__", None)
    for name in sorted(sys.modules):          # a fake grader module put in place
        if name.split(".")[0] in _GRADER_MODULES:
            _tried("grader-or-reference", f"sys.modules[{name!r}]")
    changed = sorted(k for k, v in vars(builtins).items() if before.get(k, object()) is not v)
    if changed:
        _tried("builtins", ", ".join(changed))

    say({"ready": True, "names": names(ns), "errors": errors, "notes": notes, "tried": TRIED,
         "uid": os.getuid()})
    for line in proto_in:
        if not line.strip():
            continue
        try:
            reply = answer(ns, json.loads(line))
            say(reply)
        except BaseException as exc:  # noqa: B902 (an answer that cannot be encoded, ...)
            say({"err": _error(exc)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
