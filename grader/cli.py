"""``python -m grader``: the instructor's grading command.

::

    python -m grader release                       # regenerate labs/ from solutions/
    python -m grader autograde SUBMISSIONS         # a folder or an LMS .zip export
    python -m grader feedback                      # HTML per student, hidden tests removed
    python -m grader export grades.csv             # one row per student
    python -m grader selfcheck                     # solutions: full marks; releases: zero
    python -m grader similarity LAB                # copied code, side by side
    python -m grader report LAB                    # the class report of one lab
    python -m grader build                         # solutions/*.ipynb from each lab's .cells

Every command takes ``--course-dir`` (default ``grader/course``, or ``$DYNAMO_LAB_COURSE_DIR``)
and ``--lab`` (repeatable; default: every lab).
"""

from __future__ import annotations

from . import _bootstrap  # noqa: F401

import argparse
import os
import sys
from pathlib import Path

from .config import DEFAULT_CELL_TIMEOUT_S, DEFAULT_NOTEBOOK_TIMEOUT_S, LABS_DIR


def _course(args):
    from .course import Course
    return Course(args.course_dir, cell_timeout_s=args.cell_timeout)


def cmd_release(args) -> int:
    course = _course(args)
    for path in course.release(args.lab, out_dir=Path(args.out)):
        print(f"wrote {_rel(path)}")
    return 0


def _course_seed(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"the course seed is a whole number >= 0, not {text!r}")
    return int(text)


def cmd_handout(args) -> int:
    from .handout import LeakError, write_handout
    try:
        written = write_handout(Path(args.dir), git=not args.no_git)
    except (FileExistsError, ValueError, LeakError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files to {args.dir}"
          + ("" if args.no_git else " (a git repository with one commit)"))
    return 0


def cmd_autograde(args) -> int:
    course = _course(args)
    if args.course_seed is not None:
        from .seeds import save_course_seed
        save_course_seed(course.dir, args.course_seed)
    summary = course.autograde(args.submissions, labs=args.lab, workers=args.workers,
                               timeout_s=args.timeout, progress=not args.quiet,
                               students=args.student)
    for problem in summary.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if summary.rows:
        width = max(len(r["student"]) for r in summary.rows)
        for r in sorted(summary.rows, key=lambda r: (r["lab"], r["student"])):
            flags = f"  [{', '.join(r['flags'])}]" if r["flags"] else ""
            print(f"{r['lab']}  {r['student']:<{width}}  {r['score']:g}/{r['max']:g}  "
                  f"{r['status']:<7} {r['seconds']:6.1f} s{flags}")
            if r["status"] != "ok":
                print(f"    why: see its grading log, {_rel(Path(r['log']))}")
    print(f"graded {len(summary.rows)} notebook(s) in {summary.seconds:.1f} s; "
          f"results in {_rel(course.dir)}")
    return 0 if summary.rows else 1


def cmd_feedback(args) -> int:
    course = _course(args)
    run = course.feedback(args.lab)
    print(f"wrote {len(run.pages)} feedback page(s) under {_rel(course.dir / 'feedback')}")
    for problem in run.problems:
        print(f"could not serve {problem}")
    return 1 if run.problems else 0


def cmd_late(args) -> int:
    course = _course(args)
    try:
        policy = course.set_late_policy(args.lab_id, args.due, per_day=args.per_day,
                                        max_fraction=args.max, unknown_days=args.unknown_days)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.lab_id} is due {policy.due[args.lab_id]}; a late notebook loses "
          f"{policy.per_day:.0%} of its score per day (at most {policy.max:.0%}); one the LMS "
          f"only marks late counts {policy.unknown_days:g} day(s) late. Applies to notebooks "
          f"graded from now on.")
    return 0


def cmd_export(args) -> int:
    course = _course(args)
    if args.lms:
        out = Path(args.csv).parent if args.csv else None
        paths, problems = course.export_lms(args.lms, out, args.lab)
        for problem in problems:
            print(f"warning: {problem}", file=sys.stderr)
    else:
        paths = [course.export(args.csv, args.lab, per_test=args.per_test)]
    for path in paths:
        print(f"wrote {_rel(path)}")
    return 0


def cmd_similarity(args) -> int:
    from .similarity import render_text, similarity
    course = _course(args)
    result = similarity(course, args.lab_id, threshold=args.threshold,
                        min_fingerprints=args.min_fingerprints, common=args.common)
    print(render_text(result, show_code=not args.no_code))
    out = course.dir / "similarity"
    print(f"\nwrote {_rel(out / (args.lab_id + '.html'))} (side by side) and "
          f"{_rel(out / (args.lab_id + '.json'))}; export shows the flags")
    return 0


def cmd_report(args) -> int:
    from .report import class_report, render_text
    course = _course(args)
    report = class_report(course, args.lab_id, top=args.top)
    print(render_text(report))
    print(f"\nwrote {_rel(Path(report['html']))} and {_rel(Path(report['png']))}")
    return 0


def cmd_selfcheck(args) -> int:
    course = _course(args)
    ok, report = course.selfcheck(workers=args.workers, timeout_s=args.timeout, labs=args.lab,
                                  progress=not args.quiet)
    print("\n".join(report))
    print("selfcheck passed" if ok else "selfcheck FAILED")
    return 0 if ok else 1


def cmd_build(args) -> int:
    from .build_notebooks import main as build_main
    return build_main(["--check"] if args.check else [])


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Run 'python -m grader COMMAND --help' for each command.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course-dir", default=os.environ.get("DYNAMO_LAB_COURSE_DIR"),
                        help="nbgrader course directory (gradebook, submitted, autograded, "
                             "feedback); default grader/course")
    common.add_argument("--lab", action="append", metavar="LAB",
                        help="only this lab (repeatable); default: every lab")
    common.add_argument("--cell-timeout", type=int, default=DEFAULT_CELL_TIMEOUT_S, metavar="S",
                        help=f"limit of one test cell's checks, seconds (default {DEFAULT_CELL_TIMEOUT_S})")
    grading = argparse.ArgumentParser(add_help=False)
    grading.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)),
                         help="notebooks graded at once (default: CPUs, at most 4)")
    grading.add_argument("--timeout", type=float, default=DEFAULT_NOTEBOOK_TIMEOUT_S, metavar="S",
                         help=f"hard wall-clock limit per notebook, seconds (default "
                              f"{DEFAULT_NOTEBOOK_TIMEOUT_S}); past it the notebook's processes are killed")
    grading.add_argument("--quiet", action="store_true", help="no progress bar")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("release", parents=[common], help="regenerate labs/ from solutions/")
    s.add_argument("--out", default=str(LABS_DIR), help="release folder (default labs/)")
    s.set_defaults(func=cmd_release)

    s = sub.add_parser("autograde", parents=[common, grading],
                       help="grade a folder of notebooks or an LMS zip export")
    s.add_argument("submissions", help="folder (student/lab/notebook.ipynb, student/notebook.ipynb, "
                                       "student_notebook.ipynb) or .zip export (Canvas, Moodle)")
    s.add_argument("--student", action="append", metavar="ID",
                   help="only this student (repeatable): regrade one student")
    s.add_argument("--course-seed", type=_course_seed, metavar="N",
                   help="draw the hidden checks' examples from this seed (kept in the course "
                        "folder for regrades and feedback); default: the seeds in the cells")
    s.set_defaults(func=cmd_autograde)

    s = sub.add_parser("late", parents=[common], help="a lab's due date and the late penalty")
    s.add_argument("lab_id", metavar="LAB")
    s.add_argument("--due", required=True, metavar="WHEN",
                   help="due date and time, ISO 8601, UTC unless it says (2026-12-08T23:59)")
    s.add_argument("--per-day", type=float, metavar="F",
                   help="fraction of the score lost per day late, or part of one (0.1 = 10%%)")
    s.add_argument("--max", type=float, metavar="F", help="the most a late notebook loses (0.5)")
    s.add_argument("--unknown-days", type=float, metavar="D",
                   help="how late a notebook counts whose time the LMS does not say, only that "
                        "it was late (Canvas LATE_); default 1")
    s.set_defaults(func=cmd_late)

    s = sub.add_parser("feedback", parents=[common], help="HTML feedback for graded submissions")
    s.set_defaults(func=cmd_feedback)

    s = sub.add_parser("export", parents=[common], help="grades as CSV (or as Canvas/Moodle imports)")
    s.add_argument("csv", nargs="?", default=None,
                   help="output file (default: grades.csv in the course folder; with --lms, "
                        "the files go beside it)")
    s.add_argument("--per-test", action="store_true", help="a column for every test too")
    s.add_argument("--lms", choices=["canvas", "moodle"],
                   help="files the LMS imports without editing: canvas (grades-canvas.csv) or "
                        "moodle (a grading worksheet per lab, grades-moodle-LAB.csv)")
    s.set_defaults(func=cmd_export)

    from .similarity import DEFAULT_COMMON, DEFAULT_MIN_FINGERPRINTS, DEFAULT_THRESHOLD
    course_only = argparse.ArgumentParser(add_help=False)
    course_only.add_argument("--course-dir", default=os.environ.get("DYNAMO_LAB_COURSE_DIR"),
                             help="nbgrader course directory; default grader/course")
    course_only.set_defaults(cell_timeout=DEFAULT_CELL_TIMEOUT_S)
    s = sub.add_parser("similarity", parents=[course_only],
                       help="copied code: pairs of students (or a student and the reference) "
                            "whose answer cells are near-identical")
    s.add_argument("lab_id", metavar="LAB", help="the lab, e.g. lab2_vector_clocks")
    s.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="F",
                   help=f"flag a pair when at least this share of the smaller submission's "
                        f"fingerprints is shared (0 < F <= 1; default {DEFAULT_THRESHOLD:g})")
    s.add_argument("--min-fingerprints", type=int, default=DEFAULT_MIN_FINGERPRINTS, metavar="N",
                   help=f"never flag a submission with fewer fingerprints of its own (default "
                        f"{DEFAULT_MIN_FINGERPRINTS})")
    s.add_argument("--common", type=int, default=DEFAULT_COMMON, metavar="N",
                   help=f"ignore code found in more than N submissions, as everyone's way of "
                        f"writing it (MOSS's -m; 0: never; default {DEFAULT_COMMON})")
    s.add_argument("--no-code", action="store_true", help="list the pairs without their code")
    s.set_defaults(func=cmd_similarity)

    s = sub.add_parser("report", parents=[course_only],
                       help="class report: scores, pass rate per test, the invariants broken most")
    s.add_argument("lab_id", metavar="LAB", help="the lab, e.g. lab2_vector_clocks")
    s.add_argument("--top", type=int, default=10, metavar="N",
                   help="how many broken invariants to list (default 10)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("selfcheck", parents=[common, grading],
                       help="solutions score full marks, releases zero, labs/ up to date")
    s.set_defaults(func=cmd_selfcheck)

    s = sub.add_parser("handout", help="write the repository students clone (no solutions, "
                                       "no hidden tests)")
    s.add_argument("dir", metavar="DIR", help="a new (or empty) folder outside this checkout")
    s.add_argument("--no-git", action="store_true", help="do not make it a git repository")
    s.set_defaults(func=cmd_handout)

    s = sub.add_parser("build", help="write solutions/*.ipynb from each lab's .cells file")
    s.add_argument("--check", action="store_true", help="only report notebooks out of date")
    s.set_defaults(func=cmd_build)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .course import GradingError
    try:
        return args.func(args)
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
