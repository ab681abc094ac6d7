"""One grading worker: autogrades the (lab, student) jobs it reads on stdin, one at a time.

Started by :mod:`grader.runner`; not meant to be run by hand. Protocol, one JSON object per line:

* in:  ``{"lab": ..., "student": ...}``
* out: ``@@ready@@ {}`` once nbgrader is loaded; ``@@start@@ {"lab", "student"}`` when a job
  begins (the parent's wall-clock limit for the job starts then); ``@@done@@ {"lab",
  "student", "ok", "seconds", "log", "error"}`` when it ends.

The protocol uses a private copy of the original stdout; file descriptor 1 is pointed at stderr,
so nothing printed by a library or a notebook can corrupt it.
"""

from __future__ import annotations

from . import _bootstrap  # noqa: F401  (first: PATH and a faster nbgrader import)

import argparse
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.worker")
    parser.add_argument("--course-dir", required=True)
    parser.add_argument("--release-dir", required=True)
    parser.add_argument("--cell-timeout", type=int, required=True)
    args = parser.parse_args(argv)

    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def say(kind: str, payload: dict) -> None:
        proto.write(f"@@{kind}@@ {json.dumps(payload)}\n")
        proto.flush()

    from nbgrader.apps import NbGraderAPI

    from .config import make_config

    config = make_config(args.course_dir, release_dir=args.release_dir,
                         cell_timeout_s=args.cell_timeout)
    api = NbGraderAPI(config=config)
    say("ready", {})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        job = json.loads(line)
        say("start", job)
        t0 = time.monotonic()
        try:
            result = api.autograde(job["lab"], job["student"], force=True, create=True)
        except Exception as exc:  # nbgrader reports most failures in result; this is the rest
            result = {"success": False, "error": f"{type(exc).__name__}: {exc}"}
        say("done", {**job, "ok": bool(result.get("success")),
                     "seconds": round(time.monotonic() - t0, 3),
                     "log": (result.get("log") or "")[-20000:],
                     "error": (result.get("error") or "")[-20000:]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
