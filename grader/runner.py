"""Autograding many notebooks in parallel, with a hard wall-clock limit on each one.

A pool of worker processes (:mod:`grader.worker`), each loading nbgrader once and then grading
jobs one by one. nbgrader's own limit is per cell, and a kernel that ignores SIGINT defeats it;
so the parent watches every job: when one runs longer than ``timeout_s``, the worker, its
kernel and anything they started are killed by PID (found through the process tree), the job is
reported as ``timeout``, and a fresh worker takes the remaining jobs. Grading never hangs.
"""

from __future__ import annotations

import collections
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .config import ROOT

STARTUP_TIMEOUT_S = 180.0


@dataclass
class JobResult:
    lab: str
    student: str
    status: str                  # "ok" | "error" | "timeout"
    seconds: float
    log: str = ""
    error: str = ""


def _children_map() -> dict[int, list[int]]:
    """parent pid -> child pids, from /proc (Linux) or ``ps`` (elsewhere)."""
    kids: dict[int, list[int]] = collections.defaultdict(list)
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces and parentheses
            ppid = int(text[text.rindex(")") + 2:].split()[1])
            kids[ppid].append(int(entry.name))
        return kids
    out = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True,
                         text=True, check=False).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            kids[int(parts[1])].append(int(parts[0]))
    return kids


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the process tree (children first, then theirs)."""
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            if child not in out:
                out.append(child)
                todo.append(child)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it, each by its PID. The tree is read before
    anything is killed: a killed parent's children would be re-parented and lost."""
    victims = descendants(pid)
    for p in [pid] + victims:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class _Worker:
    def __init__(self, number: int, cmd: list[str], env: dict, log_dir: Path):
        self.number = number
        self.log_path = log_dir / f"worker-{number}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env=env, cwd=str(ROOT),
                                     start_new_session=True)
        self.spawned = time.monotonic()
        self.ready = False
        self.job: Optional[dict] = None
        self.started: Optional[float] = None
        self._buf = b""

    def send(self, job: dict) -> bool:
        self.job, self.started = job, None
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def messages(self) -> tuple[list[tuple[str, dict]], bool]:
        """Messages now readable, and whether the worker's stdout is closed (it died)."""
        assert self.proc.stdout is not None
        data = os.read(self.proc.stdout.fileno(), 1 << 16)
        if not data:
            return [], True
        self._buf += data
        out = []
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            text = line.decode("utf-8", "replace")
            if text.startswith("@@"):
                kind, _, payload = text[2:].partition("@@ ")
                try:
                    out.append((kind, json.loads(payload or "{}")))
                except json.JSONDecodeError:
                    continue
        return out, False

    def stop(self, kill: bool = False) -> None:
        if kill:
            kill_tree(self.proc.pid)
        else:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=None if kill else 30)
        except subprocess.TimeoutExpired:
            kill_tree(self.proc.pid)
            self.proc.wait()
        self._log.close()

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


def worker_env(course_dir: Path) -> dict:
    """The environment of workers and their kernels: the repository first on ``PYTHONPATH``, so
    every kernel imports the ``dynamo_lab`` of this checkout; a fixed hash seed, so a student's
    set order cannot change a grade; Hypothesis' cache in the course folder, not in the
    student's autograded folder (where it would be copied into the feedback)."""
    env = dict(os.environ)
    env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(course_dir / ".cache" / "hypothesis")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PYTHONHASHSEED"] = "0"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


def run_jobs(jobs: list[tuple[str, str]], *, course_dir: Path, release_dir: Path, workers: int,
             timeout_s: float, cell_timeout_s: int, progress: bool = True) -> list[JobResult]:
    """Autograde every ``(lab, student)`` job; returns one :class:`JobResult` per job, in order."""
    if not jobs:
        return []
    log_dir = course_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "grader.worker", "--course-dir", str(course_dir),
           "--release-dir", str(release_dir), "--cell-timeout", str(int(cell_timeout_s))]
    env = worker_env(course_dir)
    pending = collections.deque({"lab": lab, "student": student} for lab, student in jobs)
    results: dict[tuple[str, str], JobResult] = {}
    sel = selectors.DefaultSelector()
    pool: list[_Worker] = []
    spawned = 0

    def spawn() -> _Worker:
        nonlocal spawned
        spawned += 1
        w = _Worker(spawned, cmd, env, log_dir)
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        pool.append(w)
        return w

    def retire(w: _Worker, kill: bool) -> None:
        sel.unregister(w.proc.stdout)
        pool.remove(w)
        w.stop(kill=kill)

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), unit="nb", desc="autograde", dynamic_ncols=True)

    def record(job: dict, status: str, seconds: float, log: str = "", error: str = "") -> None:
        results[(job["lab"], job["student"])] = JobResult(job["lab"], job["student"], status,
                                                          seconds, log, error)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{job['student']}/{job['lab']}: {status}", refresh=True)

    for _ in range(max(1, min(workers, len(jobs)))):
        spawn()
    try:
        while len(results) < len(jobs):
            now = time.monotonic()
            for w in list(pool):
                if w.ready and w.job is None and pending:
                    job = pending.popleft()
                    if not w.send(job):
                        pending.appendleft(job)
                        retire(w, kill=True)
                        spawn()
            deadlines = []
            for w in pool:
                if not w.ready:
                    deadlines.append(w.spawned + STARTUP_TIMEOUT_S)
                elif w.job is not None and w.started is not None:
                    deadlines.append(w.started + timeout_s)
            wait = max(0.05, min(deadlines) - now) if deadlines else 0.5
            for key, _ in sel.select(timeout=min(wait, 5.0)):
                w = key.data
                msgs, dead = w.messages()
                for kind, payload in msgs:
                    if kind == "ready":
                        w.ready = True
                    elif kind == "start":
                        w.started = time.monotonic()
                    elif kind == "done" and w.job is not None:
                        status = "ok" if payload.get("ok") else "error"
                        record(w.job, status, payload.get("seconds", 0.0), payload.get("log", ""),
                               payload.get("error", ""))
                        w.job, w.started = None, None
                if dead:
                    if w.job is not None:
                        record(w.job, "error", time.monotonic() - (w.started or w.spawned),
                               error=f"the grading worker exited (code {w.proc.poll()}):\n{w.log_tail()}")
                    elif not w.ready:
                        raise RuntimeError(f"a grading worker could not start:\n{w.log_tail()}")
                    retire(w, kill=True)
                    if pending and len(pool) < workers:
                        spawn()
            now = time.monotonic()
            for w in list(pool):
                if not w.ready and now > w.spawned + STARTUP_TIMEOUT_S:
                    tail = w.log_tail()
                    retire(w, kill=True)
                    raise RuntimeError(f"a grading worker did not start within {STARTUP_TIMEOUT_S:.0f} s:\n{tail}")
                if w.job is not None and w.started is not None and now > w.started + timeout_s:
                    job = w.job
                    retire(w, kill=True)
                    record(job, "timeout", now - (w.started or now),
                           error=f"stopped after {timeout_s:g} s (the limit per notebook): the "
                                 f"notebook, its kernel and their children were killed")
                    if pending and len(pool) < workers:
                        spawn()
            if not pool and len(results) < len(jobs):
                spawn()
    except BaseException:
        for w in list(pool):
            retire(w, kill=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    for w in list(pool):
        retire(w, kill=False)
    sel.close()
    return [results[(lab, student)] for lab, student in jobs]
