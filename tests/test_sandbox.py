"""The grading sandbox: what a student's code can reach, what crosses the boundary, and how it
ends (grader.sandbox, grader.sandbox_server)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dynamo_lab import grading
from dynamo_lab.hashing import key_hash
from grader.preludes import prelude
from grader.sandbox import (Limits, RemoteError, Sandbox, SandboxError, SandboxTimeout,
                            namespace_prefix)

ROOT = Path(__file__).resolve().parents[1]
needs_namespaces = pytest.mark.skipif(
    not namespace_prefix(), reason="no Linux namespaces here (install util-linux 'unshare', "
                                   "or allow unprivileged user namespaces)")


def run(source: str, **kw) -> Sandbox:
    return Sandbox("", [{"id": "answer", "source": source}], **kw).start()


def test_values_cross_as_what_they_are():
    with run("def echo(*a, **k):\n    return a, k\n"
             "def shapes():\n    return (1, [2, 3]), {1, 2}, {(1, 'a'): 2.5}, b'x', float('nan')\n"
             "def gen():\n    return (i for i in range(3))\n") as sb:
        args, kwargs = sb.proxy("echo")((1, "a"), {"A": 1}, grading.Version(["x"], {"A": 1}),
                                        flag=True)
        assert args == ((1, "a"), {"A": 1}, grading.Version(["x"], {"A": 1})) and kwargs == {"flag": True}
        assert isinstance(args[2], grading.Version)
        tup, st, d, b, nan = sb.proxy("shapes")()
        assert tup == (1, [2, 3]) and st == {1, 2} and d == {(1, "a"): 2.5} and b == b"x"
        assert nan != nan
        assert "generator" in repr(sb.proxy("gen")())     # an object that stays in the sandbox


def test_objects_stay_in_the_sandbox_and_their_methods_run_there():
    with run("class Box:\n    def __init__(self, x):\n        self.x = x\n"
             "    def add(self, y):\n        self.x += y\n        return self.x\n") as sb:
        box = sb.proxy("Box")(1)
        assert box.add(2) == 3 and box.add(3) == 6
        assert sb.names["Box"] == "class"


def test_a_students_exception_keeps_its_builtin_type_and_says_where():
    with run("def f(n):\n    if n < 0:\n        raise ValueError('negative')\n    return 1 / n\n"
             "class Mine(KeyError):\n    pass\n"
             "def g():\n    raise Mine('custom')\n") as sb:
        with pytest.raises(ValueError, match="negative") as err:
            sb.proxy("f")(-1)
        assert isinstance(err.value, RemoteError) and "cell answer, line 3" in err.value.where
        with pytest.raises(ZeroDivisionError):
            sb.proxy("f")(0)
        with pytest.raises(KeyError, match="custom") as mine:    # a student's own subclass
            sb.proxy("g")()
        assert type(mine.value).__name__ == "Mine"
        with pytest.raises(NameError):
            sb.proxy("missing")()


def test_cells_that_raise_are_reported_and_the_others_still_run():
    sb = Sandbox("", [{"id": "a", "source": "x = 1 / 0"}, {"id": "b", "source": "y = 2"},
                      {"id": "c", "source": "%matplotlib inline\nz = 3"}]).start()
    with sb:
        assert [e["cell"] for e in sb.errors] == ["a"] and sb.errors[0]["type"] == "ZeroDivisionError"
        assert {"y", "z"} <= set(sb.names)


def test_a_call_that_never_returns_is_stopped_and_the_sandbox_with_it():
    with run("def spin():\n    while True:\n        pass\n", call_timeout_s=1.0) as sb:
        t0 = time.monotonic()
        with pytest.raises(SandboxTimeout):
            sb.proxy("spin")()
        assert time.monotonic() - t0 < 10
        with pytest.raises(SandboxError):
            sb.proxy("spin")()


def test_a_top_level_loop_that_ignores_the_cell_limit_is_named():
    cells = [{"id": "ok", "source": "a = 1"},
             {"id": "stuck", "source": "import signal, time\n"
                                      "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                      "while True:\n    time.sleep(0.1)\n"}]
    with pytest.raises(SandboxTimeout) as err:
        Sandbox("", cells, cell_timeout_s=0.5).start()
    assert err.value.cell == "stuck"


def test_memory_is_capped():
    with run("def hog():\n    return len(bytearray(3 * 1024 ** 3))\n",
             limits=Limits(memory_mb=512)) as sb:
        with pytest.raises(MemoryError):
            sb.proxy("hog")()


def test_the_reference_and_the_grader_cannot_be_imported():
    with run("def imp(name):\n    __import__(name)\n") as sb:
        for name in ("dynamo_lab", "grader", "hypothesis", "nbgrader"):
            with pytest.raises(ModuleNotFoundError):
                sb.proxy("imp")(name)
        sb.proxy("imp")("hashlib")            # the standard library is there


@needs_namespaces
def test_the_checkout_the_home_and_the_course_are_hidden(tmp_path):
    course = tmp_path / "course"
    (course / "submitted" / "other").mkdir(parents=True)
    (course / "gradebook.db").write_text("secret")
    source = ("import os\n"
              "def look(path):\n    return sorted(os.listdir(path)) if os.path.isdir(path) else None\n"
              "def write(path):\n    open(path, 'w').write('x')\n"
              "def whoami():\n    return os.getuid()\n")
    from grader.sandbox import default_hide, default_keep
    home = Path.home()
    # Only the way to the standard library is left in a hidden folder (pyenv keeps it in ~).
    stdlib_way = {Path(k).relative_to(home).parts[0] for k in default_keep()
                  if Path(k).is_relative_to(home)}
    with Sandbox("", [{"id": "a", "source": source}], hide=default_hide(course)).start() as sb:
        assert sb.notes == []
        for path in (ROOT, ROOT / "dynamo_lab", course):
            assert not sb.proxy("look")(str(path)), f"{path} is visible to the student's code"
        assert set(sb.proxy("look")(str(home)) or []) <= stdlib_way
        with pytest.raises(OSError):
            sb.proxy("write")(str(ROOT / "pwned"))
        sb.proxy("write")("/tmp/scratch")     # its own scratch space is writable
        assert sb.proxy("look")("/tmp") == ["scratch"]
    assert not (ROOT / "pwned").exists()


@needs_namespaces
def test_no_network_and_no_process_outlives_the_sandbox():
    source = ("import os, socket, subprocess\n"
              "def connect():\n    socket.create_connection(('127.0.0.1', 1), timeout=1)\n"
              "def escape():\n    return subprocess.Popen(['sleep', '3599'], start_new_session=True).pid\n")
    sb = Sandbox("", [{"id": "a", "source": source}]).start()
    with pytest.raises(OSError):
        sb.proxy("connect")()
    sb.proxy("escape")()
    sb.close()
    time.sleep(0.3)
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and
            (p / "cmdline").exists() and b"3599" in (p / "cmdline").read_bytes()]
    assert left == []


def test_the_labs_preludes_hand_out_the_references_helpers():
    keys = ["cart:alice", "A#0", "é", "x" * 1000]
    with Sandbox(prelude("lab1_consistent_hashing"),
                 [{"id": "a", "source": "def h(k):\n    return key_hash(k), vnode_token('A', 3)\n"}]).start() as sb:
        for key in keys:
            assert sb.proxy("h")(key) == (key_hash(key), key_hash("A#3"))
        for bad in ("", 3):
            with pytest.raises(ValueError):
                sb.proxy("h")(bad)
    with Sandbox(prelude("lab2_vector_clocks"),
                 [{"id": "a", "source": "def v():\n    return Version(['x'], {'A': 1}), CONCURRENT\n"}]).start() as sb:
        assert sb.proxy("v")() == (grading.Version(["x"], {"A": 1}), "concurrent")


def _landlock_abi() -> int:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)) if hasattr(libc, "syscall") else -1


@pytest.mark.skipif(_landlock_abi() < 1, reason="this kernel has no Landlock (Linux 5.13+ with "
                                                "CONFIG_SECURITY_LANDLOCK): the fallback cannot isolate files")
def test_without_namespaces_landlock_still_keeps_the_files_apart(monkeypatch):
    monkeypatch.setenv("DYNAMO_LAB_SANDBOX_NAMESPACES", "0")
    namespace_prefix.cache_clear()
    try:
        source = ("import os\n"
                  "def read(path):\n    return open(path).read()\n"
                  "def write(name):\n    open(name, 'w').write('x')\n    return os.listdir('.')\n")
        with Sandbox("", [{"id": "a", "source": source}]).start() as sb:
            assert not namespace_prefix() and sb.notes == []
            for path in (ROOT / "dynamo_lab" / "ring.py", Path("/etc/passwd")):
                with pytest.raises(PermissionError):
                    sb.proxy("read")(str(path))
            assert sb.proxy("write")("scratch.txt") == ["scratch.txt"]
    finally:
        namespace_prefix.cache_clear()
