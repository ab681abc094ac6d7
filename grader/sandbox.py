"""The trusted side of the sandbox: start a student's code in :mod:`grader.sandbox_server` and
talk to it by plain data.

The grader keeps everything that decides a grade (the reference, the generated inputs, the
comparison, the verdict) in its own process, and hands the checks *proxies* for the student's
names: calling a :class:`RemoteFunction` sends the arguments as JSON to the sandbox and brings
the answer back; a :class:`RemoteClass` makes a :class:`RemoteObject` that stays in the sandbox
and whose methods are called the same way. An exception the student's code raised comes back as
an exception of the same builtin type (``ValueError`` stays a ``ValueError``), carrying where in
the student's cells it was raised.

Isolation, where the machine allows it (Linux with ``unshare``, as root or with unprivileged
user namespaces): new mount, network and PID namespaces; the checkout, the course folder, the
home folders and the virtual environment hidden; the student's code as ``nobody`` (or without
capabilities); memory, CPU time, file size, open files and processes capped; and the whole
process tree ends with the sandbox, since it is a PID namespace. Where it does not, the sandbox
still runs without site-packages (the reference cannot be imported), in its own session, with
the same limits, and says so in :attr:`Sandbox.notes`.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from . import sandbox_server as _wire
from .config import ROOT

SERVER = Path(__file__).with_name("sandbox_server.py")
MAX_LINE = 8 * 1024 * 1024 + 1024


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use."""
    memory_mb: int = 1024        # address space
    cpu_s: int = 300             # CPU seconds, all calls together
    file_mb: int = 16            # the largest file it may write (in its scratch space)
    processes: int = 32          # processes and threads of its user (unprivileged starts)
    scratch_mb: int = 64         # its /tmp


class SandboxError(Exception):
    """The sandbox stopped, or broke the protocol: the student's code did not answer. A check
    stops at the first one (``abort_check``): every later call would fail the same way."""
    abort_check = True


class SandboxTimeout(SandboxError):
    """The student's code did not answer in time; ``cell`` names the answer cell that was
    running, when it was one."""
    cell: Optional[str] = None


class RemoteError(Exception):
    """Mixed into the exception a student's code raised in the sandbox. ``where`` says where
    (`` (in f, cell increment, line 3: ...)``), ``remote_type`` its class name."""
    where = ""
    remote_type = ""


@functools.lru_cache(maxsize=None)
def _remote_class(name: str, base_name: str) -> type:
    base = getattr(builtins, base_name, None)
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = RuntimeError
    return type(name, (base, RemoteError), {"__module__": "student"})


def remote_exception(err: dict) -> RemoteError:
    """The exception to raise for what the student's code raised: a class of the same name
    deriving from the same builtin exception (``RuntimeError`` when none is known)."""
    name = str(err.get("type", "Error"))
    base = name if err.get("builtin") else str(err.get("base", "RuntimeError"))
    exc = _remote_class(name, base)(str(err.get("message", "")))
    exc.where = str(err.get("where", ""))
    exc.remote_type = str(err.get("type", ""))
    return exc


# -- the wire ----------------------------------------------------------------------------------

def encode(x: Any) -> Any:
    """A value the checks pass to the student's code, as JSON with tags (the codec of
    :mod:`grader.sandbox_server`, with the grader's own types)."""
    return _wire.encode(x, _encode_special)


def decode(x: Any, sandbox: "Sandbox") -> Any:
    """A value the student's code returned."""
    return _wire.decode(x, lambda obj, one: _decode_special(obj, one, sandbox))


def _encode_special(x: Any, one) -> Any:
    from dynamo_lab import grading
    from dynamo_lab.labs.lab1_consistent_hashing.checks import _FrozenRing
    if isinstance(x, grading.Version):
        return {"$v": [one(x.value), one(x.clock), bool(x.deleted)]}
    if isinstance(x, RemoteObject):
        return {"$h": x._handle}
    if isinstance(x, _FrozenRing):
        return {"$ring": [[[k, n, list(p)] for (k, n), p in sorted(x._table.items())], x.nodes]}
    if isinstance(x, tuple) and _records().get(type(x).__name__) is type(x):
        return {"$nt": type(x).__name__, "f": [one(i) for i in x]}
    raise TypeError(f"the grader cannot pass a {type(x).__name__} to the student's code")


def _decode_special(x: dict, one, sandbox: "Sandbox") -> Any:
    from dynamo_lab import grading
    if "$v" in x:
        value, clock, deleted = x["$v"]
        return grading.Version(one(value), one(clock), deleted)
    if "$h" in x:
        cls = RemoteClass if x.get("is_class") else (RemoteCallable if x.get("callable")
                                                      else RemoteObject)
        return cls(sandbox, x["$h"], str(x.get("repr", "")), str(x.get("type", "")))
    if "$nt" in x:
        cls, items = _records().get(x["$nt"]), [one(i) for i in x["f"]]
        return cls(*items) if cls is not None else tuple(items)
    return {k: one(v) for k, v in x.items()}


def _records() -> dict[str, type]:
    """The labs' plain-data records (named tuples their preludes define too), by name."""
    from dynamo_lab.labs import labs
    return {cls.__name__: cls for one in labs() for cls in one.records}


# -- proxies -----------------------------------------------------------------------------------

class RemoteObject:
    """An object that lives in the sandbox. Methods are called there; ``repr`` is its own."""

    def __init__(self, sandbox: "Sandbox", handle: int, text: str = "", type_name: str = ""):
        object.__setattr__(self, "_sandbox", sandbox)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_type_name", type_name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        sandbox, handle = self._sandbox, self._handle

        def method(*args, **kwargs):
            return sandbox.request("method", h=handle, name=name, args=args, kwargs=kwargs)
        method.__name__ = method.__qualname__ = name
        return method

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the student's objects live in the sandbox")

    def __repr__(self) -> str:
        return self._text or f"<{self._type_name} object>"


class RemoteCallable(RemoteObject):
    """A function or class the student's code handed back (or defined at the top level)."""

    def __init__(self, sandbox, handle, text="", type_name="", name: str = ""):
        super().__init__(sandbox, handle, text, type_name)
        object.__setattr__(self, "__name__", name or type_name)
        object.__setattr__(self, "__qualname__", name or type_name)

    def __call__(self, *args, **kwargs):
        if self._handle is None:
            return self._sandbox.request("call", name=self.__name__, args=args, kwargs=kwargs)
        return self._sandbox.request("method", h=self._handle, name="__call__", args=args,
                                     kwargs=kwargs)


class RemoteClass(RemoteCallable):
    pass


# -- the sandbox -------------------------------------------------------------------------------

def default_hide(course_dir: Optional[Path] = None) -> list[str]:
    """Folders the student's code must not see: the checkout, the course, the home folders, the
    virtual environment and where the project's packages are installed."""
    import dynamo_lab
    paths = {str(ROOT), "/root", "/home", sys.prefix, "/var/tmp", "/dev/shm", "/run", "/srv",
             "/opt", "/mnt", "/media", os.path.expanduser("~")}
    paths.update(str(Path(p).resolve().parent) for p in dynamo_lab.__path__)
    for scheme_vars in ({}, _base_vars()):                 # every site-packages folder
        found = sysconfig.get_paths(vars=scheme_vars)
        paths.update(os.path.realpath(found[k]) for k in ("purelib", "platlib"))
    if course_dir is not None:
        paths.add(str(Path(course_dir).resolve()))
    for p in list(paths):
        if p in ("/", "") or not os.path.isdir(p):
            paths.discard(p)
    return sorted(paths)


def _base_vars() -> dict:
    return {"base": sys.base_prefix, "platbase": sys.base_exec_prefix,
            "installed_base": sys.base_prefix, "installed_platbase": sys.base_exec_prefix}


def default_keep() -> list[str]:
    """What must stay readable inside hidden folders: the standard library (of the base
    interpreter, not of the virtual environment)."""
    paths = sysconfig.get_paths(vars=_base_vars())
    return sorted({os.path.realpath(paths["stdlib"]), os.path.realpath(paths["platstdlib"])})


@functools.lru_cache(maxsize=1)
def namespace_prefix() -> tuple[str, ...]:
    """The ``unshare`` command line that gives a sandbox its namespaces, or () when this
    machine cannot (no ``unshare``, not Linux, namespaces refused)."""
    tool = shutil.which("unshare")
    if (tool is None or not sys.platform.startswith("linux")
            or os.environ.get("DYNAMO_LAB_SANDBOX_NAMESPACES") == "0"):
        return ()
    cmd = [tool, "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
           "--propagation", "private"]
    if os.geteuid() != 0:
        cmd.append("--map-root-user")
    try:
        ok = subprocess.run(cmd + ["true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return tuple(cmd) if ok else ()


class Sandbox:
    """One sandboxed run of a student's cells::

        with Sandbox(prelude, [{"id": "increment", "source": "def increment(c, n): ..."}]) as sb:
            increment = sb.proxy("increment")
            increment({"A": 1}, "A")          # runs in the sandbox; {'A': 2}

    ``names`` maps what the cells defined to ``"function"``, ``"class"`` or ``"value"``;
    ``errors`` lists the cells that raised (``{"cell", "type", "message", "where"}``);
    ``notes`` says what isolation this machine could not give. ``label`` goes on the
    sandbox's command line (the course folder, say), so its processes can be told apart.
    """

    def __init__(self, prelude: str, cells: Iterable[dict], *, limits: Limits = Limits(),
                 hide: Optional[list[str]] = None, keep: Optional[list[str]] = None,
                 call_timeout_s: float = 60.0, cell_timeout_s: float = 10.0, label: str = ""):
        self.prelude = prelude
        self.cells = [{"id": str(c["id"]), "source": str(c["source"])} for c in cells]
        self.limits = limits
        self.hide = default_hide() if hide is None else list(hide)
        self.keep = default_keep() if keep is None else list(keep)
        self.call_timeout_s = call_timeout_s
        self.cell_timeout_s = cell_timeout_s
        self.label = label
        self.proc: Optional[subprocess.Popen] = None
        self.names: dict[str, str] = {}
        self.errors: list[dict] = []
        self.notes: list[str] = []
        self.uid: Optional[int] = None
        self._buf = b""
        self._dead = ""
        self._tried: dict[str, list[str]] = {}
        self._scratch: Optional[str] = None

    # -- life ---------------------------------------------------------------------------------

    def start(self) -> "Sandbox":
        prefix = namespace_prefix()
        if not prefix:                 # Landlock then keeps it to the stdlib and a scratch folder
            self._scratch = tempfile.mkdtemp(prefix="dynamo-lab-sandbox-")
            os.chmod(self._scratch, 0o777)
        # The label (ignored by the server) tells whose sandbox a process is, in ps.
        cmd = list(prefix) + [sys.executable, "-I", "-S", str(SERVER)] + ([self.label] if self.label else [])
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd="/", env=env,
                                     start_new_session=True)
        job = {"prelude": self.prelude, "cells": self.cells, "hide": self.hide,
               "keep": self.keep, "limits": asdict(self.limits),
               "cell_s": self.cell_timeout_s, "scratch": self._scratch}
        try:
            self._send(job)
            ready = self._receive(30.0)
            while "running" in ready:        # one line as each cell starts
                try:
                    ready = self._receive(self.cell_timeout_s + 5.0)
                except SandboxTimeout as exc:
                    exc.cell = str(ready["running"])
                    raise
        except BaseException:
            self.close()
            raise
        if not ready.get("ready"):
            self.close()
            raise SandboxError(f"the sandbox did not start: {ready}")
        self.names = dict(ready.get("names", {}))
        self.errors = list(ready.get("errors", []))
        self.notes = list(ready.get("notes", []))
        self.uid = ready.get("uid")
        self._tried = dict(ready.get("tried", {}))
        return self

    def tried(self) -> dict[str, list[str]]:
        """What the student's code tried that a solution never needs, so far: ``files`` (in
        the hidden folders), ``processes``, ``network``, ``grader-or-reference`` (imports),
        each with a few examples. Reported, never trusted (the code could lie)."""
        if self.proc is not None and not self._dead:
            try:
                self._tried = dict(self.request("tried"))
            except (SandboxError, RemoteError):
                pass
        return self._tried

    def close(self) -> None:
        """Stop the sandbox and everything it started (its session; its PID namespace)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        self._dead = self._dead or "the sandbox was closed"
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        from .runner import kill_tree
        kill_tree(proc.pid)
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- talking ------------------------------------------------------------------------------

    def proxy(self, name: str) -> RemoteCallable:
        """A proxy for the top-level name ``name`` of the student's cells (which need not
        exist: calling it then raises ``NameError``, as the student's kernel would)."""
        cls = RemoteClass if self.names.get(name) == "class" else RemoteCallable
        return cls(self, None, f"<your {name}>", self.names.get(name, "undefined"), name)

    def request(self, op: str, **fields) -> Any:
        """Send one request; return the decoded answer or raise what the student's code
        raised (a :class:`RemoteError`), :class:`SandboxTimeout` or :class:`SandboxError`."""
        if self.proc is None or self._dead:
            raise SandboxError(self._dead or "the sandbox is not running")
        msg = {"op": op, **{k: v for k, v in fields.items() if k not in ("args", "kwargs")}}
        if "args" in fields:
            msg["args"] = encode(list(fields["args"]))
            msg["kwargs"] = encode(dict(fields["kwargs"]))
        try:
            self._send(msg)
            reply = self._receive(self.call_timeout_s)
        except SandboxError:
            raise
        except BaseException:
            # Interrupted (the check's time budget ran out): the sandbox may still be busy.
            self._dead = "your code was stopped: it ran past the time limit"
            self.close()
            raise
        if "err" in reply:
            raise remote_exception(reply["err"])
        return decode(reply.get("ok"), self)

    def _send(self, obj: dict) -> None:
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise self._died() from None

    def _receive(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._dead = f"your code did not finish within {timeout_s:g} s"
                    self.close()
                    raise SandboxTimeout(self._dead)
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise self._died()
                self._buf += chunk
                if len(self._buf) > MAX_LINE:
                    self._dead = "your code sent an answer larger than 8 MiB"
                    self.close()
                    raise SandboxError(self._dead)
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            self._dead = "the sandbox broke the protocol"
            self.close()
            raise SandboxError(self._dead) from None

    def _died(self) -> SandboxError:
        code = self.proc.poll() if self.proc is not None else None
        if code is None and self.proc is not None:
            try:
                code = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        why = {-signal.SIGKILL: "killed (out of memory or CPU time?)",
               -signal.SIGXCPU: "out of CPU time", -signal.SIGSEGV: "crashed"}.get(code, f"exit code {code}")
        self._dead = f"your code stopped the sandbox ({why})"
        self.close()
        return SandboxError(self._dead)
