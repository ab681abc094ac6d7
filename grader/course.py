"""The course: release, autograde, feedback, export and selfcheck, on top of nbgrader.

Everything nbgrader writes (``gradebook.db``, ``submitted/``, ``autograded/``, ``feedback/``)
stays in the course directory; ``results.json`` there adds what nbgrader does not record: the
status of each grading run (ok, error, timeout), how long it took, and the flags raised on the
submission (a restored test cell, an edited test cell, use of the reference implementation...).
"""

from __future__ import annotations

from . import _bootstrap  # noqa: F401

import csv
import hashlib
import html
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from .config import (COURSE_ID, DEFAULT_CELL_TIMEOUT_S, DEFAULT_NOTEBOOK_TIMEOUT_S,
                     LABS_DIR, SOLUTIONS_DIR, default_course_dir, hidden_test_lines, lab_ids,
                     lab_notebooks, make_config)
from .late import LatePolicy, load_policy, parse_when, save_policy
from .runner import run_jobs
from .submissions import SubmissionError, find_submissions, load_labs, stage


class GradingError(RuntimeError):
    """A grading step that failed for the whole course (not for one submission)."""


@dataclass
class FeedbackRun:
    """What ``feedback`` made: every page, and the students it could not serve (and why)."""
    pages: list = field(default_factory=list)
    problems: list = field(default_factory=list)


@dataclass
class Summary:
    """What an autograde run did: one row per (student, lab) and the problems met."""
    rows: list = field(default_factory=list)      # dicts: student, lab, status, score, max, flags
    problems: list = field(default_factory=list)
    seconds: float = 0.0


def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


class Course:
    """One course directory. ``Course()`` uses ``grader/course`` (or ``$DYNAMO_LAB_COURSE_DIR``)."""

    def __init__(self, course_dir: Optional[Path | str] = None, *,
                 cell_timeout_s: int = DEFAULT_CELL_TIMEOUT_S,
                 source_dir: Path = SOLUTIONS_DIR, exchange_dir: Optional[Path | str] = None):
        self.dir = Path(course_dir).resolve() if course_dir else default_course_dir()
        self.exchange_dir = exchange_dir
        self.source_dir = Path(source_dir).resolve()
        self.release_dir = self.dir / "release"
        self.cell_timeout_s = cell_timeout_s
        self.dir.mkdir(parents=True, exist_ok=True)
        self._apis: dict[str, object] = {}

    # -- nbgrader plumbing ---------------------------------------------------------------------

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.dir / 'gradebook.db'}?timeout=120"

    def api(self, release_dir: Optional[Path] = None):
        """An ``NbGraderAPI`` configured for this course (one per release directory)."""
        release_dir = Path(release_dir or self.release_dir).resolve()
        key = str(release_dir)
        if key not in self._apis:
            from nbgrader.apps import NbGraderAPI
            cfg = make_config(self.dir, release_dir=release_dir, cell_timeout_s=self.cell_timeout_s,
                              source_dir=self.source_dir, exchange_dir=self.exchange_dir)
            self._apis[key] = NbGraderAPI(config=cfg)
        return self._apis[key]

    def labs(self, only: Optional[Iterable[str]] = None) -> list[str]:
        known = lab_ids(self.source_dir)
        if not only:
            return known
        wanted = list(only)
        unknown = [x for x in wanted if x not in known]
        if unknown:
            raise GradingError(f"unknown lab(s) {unknown}; the labs are {known}")
        return [x for x in known if x in wanted]

    def generate(self, labs: Iterable[str], release_dir: Optional[Path] = None) -> list[Path]:
        """``nbgrader generate_assignment`` for each lab into ``release_dir`` (default: the
        course's private release folder); also records the labs in the gradebook."""
        api = self.api(release_dir)
        out_dir = Path(release_dir or self.release_dir).resolve()
        written = []
        for lab in labs:
            result = api.generate_assignment(lab, force=True, create=True)
            if not result.get("success"):
                raise GradingError(f"nbgrader could not generate {lab}:\n{result.get('error') or result.get('log')}")
            written += sorted((out_dir / lab).glob("*.ipynb"))
        return written

    def set_late_policy(self, lab: str, due: str, *, per_day: Optional[float] = None,
                        max_fraction: Optional[float] = None,
                        unknown_days: Optional[float] = None) -> LatePolicy:
        """Set ``lab``'s due date (and, if given, the course's penalty policy); applies to
        notebooks graded from now on. Raises ``ValueError`` for a bad date or fraction."""
        self.labs([lab])
        policy = load_policy(self.dir)
        policy.due[lab] = parse_when(due).isoformat()
        for name, value in (("per_day", per_day), ("max", max_fraction),
                            ("unknown_days", unknown_days)):
            if value is not None:
                setattr(policy, name, float(value))
        save_policy(self.dir, policy)
        self._apis.clear()                       # the plugin's settings come from the policy
        self.prepare([lab])
        self._apply_due_dates(policy, [lab])
        return policy

    def _apply_due_dates(self, policy: LatePolicy, labs: Iterable[str]) -> None:
        from nbgrader.api import Gradebook
        dated = [lab for lab in labs if lab in policy.due]
        if not dated:
            return
        with Gradebook(self.db_url, COURSE_ID) as gb:
            for lab in dated:
                due = policy.due_date(lab).astimezone(__import__("datetime").timezone.utc)
                gb.update_or_create_assignment(lab, duedate=due.replace(tzinfo=None))

    def prepare(self, labs: Iterable[str]) -> None:
        """Make sure the gradebook knows the current version of each lab (regenerating only the
        labs whose solution notebooks changed since the last run)."""
        stamp_path = self.dir / "source-digests.json"
        stamps = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
        stale = [lab for lab in labs
                 if stamps.get(lab) != _digest((self.source_dir / lab).glob("*.ipynb"))
                 or not (self.release_dir / lab).is_dir()]
        if stale:
            self.generate(stale)
            for lab in stale:
                stamps[lab] = _digest((self.source_dir / lab).glob("*.ipynb"))
            stamp_path.write_text(json.dumps(stamps, indent=1, sort_keys=True))

    # -- results.json --------------------------------------------------------------------------

    def _results(self) -> dict:
        path = self.dir / "results.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _save_results(self, data: dict) -> None:
        path = self.dir / "results.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)

    # -- release -------------------------------------------------------------------------------

    def release(self, labs: Optional[Iterable[str]] = None, out_dir: Path = LABS_DIR) -> list[Path]:
        """Regenerate the student notebooks (``labs/`` by default) from ``solutions/``."""
        labs = self.labs(labs)
        return self.generate(labs, release_dir=Path(out_dir))

    # -- autograde -----------------------------------------------------------------------------

    def autograde(self, source: Path | str, *, labs: Optional[Iterable[str]] = None,
                  workers: int = 2, timeout_s: float = DEFAULT_NOTEBOOK_TIMEOUT_S,
                  progress: bool = True, students: Optional[Iterable[str]] = None) -> Summary:
        """Grade every notebook found in ``source`` (a folder or an LMS zip export), or only
        those of ``students`` (to regrade one student; the others' grades stay).

        Each notebook is repaired (see :func:`grader.submissions.repair`), staged in
        ``submitted/``, autograded by nbgrader in a worker process under a hard wall-clock limit
        of ``timeout_s`` and scanned for flags. Returns a :class:`Summary`.
        """
        t0 = time.monotonic()
        labs = self.labs(labs)
        self.prepare(labs)
        infos = load_labs(self.release_dir, labs)
        with tempfile.TemporaryDirectory(prefix="dynamo-lab-unzip-") as tmp:
            try:
                subs, problems = find_submissions(Path(source), infos, Path(tmp))
            except SubmissionError as exc:
                raise GradingError(str(exc)) from None
            if students:
                wanted = set(students)
                unknown = sorted(wanted - {s.student for s in subs})
                if unknown:
                    raise GradingError(f"no submission of {', '.join(unknown)} in {source}; "
                                       f"students there: {', '.join(sorted({s.student for s in subs}))}")
                subs = [s for s in subs if s.student in wanted]
            submitted = self.dir / "submitted"
            policy = load_policy(self.dir)
            self._apply_due_dates(policy, labs)
            for sub in subs:
                stage(sub, infos[sub.lab], submitted,
                      policy.assumed_timestamp(sub.lab) if "late" in sub.flags else None)
        summary = Summary(problems=list(problems))
        if not subs:
            summary.problems.append(f"no notebook of {', '.join(labs)} found in {source}")
            return summary
        jobs = [(s.lab, s.student) for s in subs]
        for lab, student in jobs:   # a stale result must not survive a failed run
            (self.dir / "logs" / lab / f"{student}.tried.json").unlink(missing_ok=True)
            shutil.rmtree(self.dir / "autograded" / student / lab, ignore_errors=True)
            shutil.rmtree(self.dir / "feedback" / student / lab, ignore_errors=True)
        results = run_jobs(jobs, course_dir=self.dir, release_dir=self.release_dir,
                           workers=workers, timeout_s=timeout_s,
                           cell_timeout_s=self.cell_timeout_s, progress=progress)
        store = self._results()
        scores = self.scores(labs)
        for sub, res in zip(subs, results):
            flags = list(sub.flags)
            if res.status == "timeout":
                flags.append("timeout")
                shutil.rmtree(self.dir / "autograded" / sub.student / sub.lab, ignore_errors=True)
            elif res.status == "error":
                flags.append("grading-error")
                shutil.rmtree(self.dir / "autograded" / sub.student / sub.lab, ignore_errors=True)
            else:
                flags += self._output_flags(sub.student, sub.lab)
            got = scores.get(sub.student, {}).get(sub.lab, {})
            score = got.get("score", 0.0) if res.status == "ok" else 0.0
            log = self.dir / "logs" / sub.lab / f"{sub.student}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"status: {res.status} after {res.seconds:.1f} s\n{res.error}\n"
                           f"{res.log}", encoding="utf-8")
            store.setdefault(sub.lab, {})[sub.student] = {
                "status": res.status, "seconds": round(res.seconds, 2), "flags": flags,
                "origin": sub.origin, "identity": sub.identity, "error": res.error[-4000:],
                "log": str(log.relative_to(self.dir)),
                "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            summary.rows.append({"student": sub.student, "lab": sub.lab, "status": res.status,
                                 "score": score, "max": self.max_score(sub.lab),
                                 "flags": flags, "seconds": res.seconds, "log": str(log)})
        self._save_results(store)
        summary.seconds = time.monotonic() - t0
        return summary

    def _output_flags(self, student: str, lab: str) -> list[str]:
        """Flags read from the outputs of an autograded notebook."""
        from dynamo_lab.grading import REFERENCE_USED_MARK, TIMEOUT_MARK

        from .trusted import CELL_TIMEOUT_MARK
        flags: list[str] = []
        for path in sorted((self.dir / "autograded" / student / lab).glob("*.ipynb")):
            nb = json.loads(path.read_text(encoding="utf-8"))
            for cell in nb["cells"]:
                nbg = cell.get("metadata", {}).get("nbgrader", {})
                for out in cell.get("outputs", []):
                    if out.get("output_type") != "error":
                        continue
                    text = f"{out.get('ename', '')}: {out.get('evalue', '')}"
                    if REFERENCE_USED_MARK in text:
                        flags.append("uses-reference")
                    if CELL_TIMEOUT_MARK in text:
                        flags.append("cell-timeout")
                    elif TIMEOUT_MARK in text and nbg.get("grade"):
                        flags.append(f"too-slow:{nbg.get('grade_id')}")
        tried = self.dir / "logs" / lab / f"{student}.tried.json"
        if tried.exists():                    # what the sandbox saw the code try
            for kind in sorted(json.loads(tried.read_text(encoding="utf-8"))):
                flags.append(f"tried:{kind}")
        return sorted(set(flags), key=flags.index)

    # -- scores --------------------------------------------------------------------------------

    def max_score(self, lab: str) -> float:
        total = 0.0
        for nb_path in sorted((self.source_dir / lab).glob("*.ipynb")):
            for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
                nbg = cell.get("metadata", {}).get("nbgrader", {})
                if nbg.get("grade"):
                    total += float(nbg.get("points", 0))
        return total

    def test_ids(self, lab: str) -> list[str]:
        """The graded cells of a lab, in notebook order."""
        ids = []
        for nb_path in sorted((self.source_dir / lab).glob("*.ipynb")):
            for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
                nbg = cell.get("metadata", {}).get("nbgrader", {})
                if nbg.get("grade"):
                    ids.append(nbg["grade_id"])
        return ids

    def scores(self, labs: Optional[Iterable[str]] = None) -> dict:
        """``{student: {lab: {"score", "max", "tests": {grade_id: score}, "manual": {grade_id:
        (manual score, automatic score)}}}}`` from the gradebook (submissions that timed out
        count 0). A manual score (given in nbgrader's formgrader) overrides the automatic one
        and is listed in ``manual``, so the export can show it as an override."""
        from nbgrader.api import Gradebook, MissingEntry
        labs = self.labs(labs)
        out: dict = {}
        if not (self.dir / "gradebook.db").exists():
            return out
        status = self._results()
        with Gradebook(self.db_url, COURSE_ID) as gb:
            for lab in labs:
                try:
                    subs = gb.assignment_submissions(lab)
                except MissingEntry:
                    continue
                for sub in subs:
                    student = sub.student.id
                    tests, manual = {}, {}
                    for nb in sub.notebooks:
                        for grade in nb.grades:
                            tests[grade.name] = float(grade.score or 0.0)
                            if grade.manual_score is not None:
                                manual[grade.name] = (float(grade.manual_score),
                                                      float(grade.auto_score or 0.0))
                    run = status.get(lab, {}).get(student, {})
                    if run.get("status") in ("timeout", "error"):
                        tests = {k: 0.0 for k in tests}
                    penalty = float(sub.late_submission_penalty or 0.0)
                    if run.get("status") in ("timeout", "error"):
                        penalty = 0.0
                    out.setdefault(student, {})[lab] = {
                        "score": max(0.0, sum(tests.values()) - penalty),
                        "max": float(sub.max_score or self.max_score(lab)),
                        "tests": tests, "manual": manual, "late_penalty": penalty}
        return out

    # -- feedback ------------------------------------------------------------------------------

    def feedback(self, labs: Optional[Iterable[str]] = None) -> "FeedbackRun":
        """Feedback HTML for every graded submission, in ``feedback/<student>/<lab>/``.

        Each student's page is made on its own, so one student's notebook never stops the
        feedback of the others: a submission that could not be graded, or whose page nbgrader
        could not make, gets a page that says why, and is named in ``problems``. Hidden tests
        are cleared from the test cells. Then, before any page is released, every page is
        searched for hidden test source; a page that holds any is replaced by a notice (and
        named in ``problems``).
        """
        labs = self.labs(labs)
        self.prepare(labs)
        api = self.api()
        status = self._results()
        scores = self.scores(labs)
        run = FeedbackRun()
        for lab in labs:
            graded = {p.parent.name for p in (self.dir / "autograded").glob(f"*/{lab}")}
            failed = {s for s, r in status.get(lab, {}).items()
                      if r.get("status") in ("timeout", "error")}
            for student in sorted(graded | failed):
                if student in failed:
                    run.pages += self._failure_pages(student, lab, status[lab][student])
                    continue
                folder = self.dir / "feedback" / student / lab
                shutil.rmtree(folder, ignore_errors=True)
                try:
                    result = api.generate_feedback(lab, student_id=student, force=True)
                    ok = bool(result.get("success"))
                    why = result.get("error") or result.get("log") or ""
                except Exception as exc:  # nbgrader raising for one notebook: tell, go on
                    ok, why = False, f"{type(exc).__name__}: {exc}"
                pages = sorted(folder.glob("*.html"))
                if ok and pages:
                    run.pages += pages
                    continue
                last = [ln for ln in str(why).strip().splitlines() if ln.strip()][-1:] or ["no page"]
                run.problems.append(f"{student}/{lab}: nbgrader could not make the feedback page "
                                    f"({last[0].strip()[:200]})")
                got = scores.get(student, {}).get(lab, {})
                run.pages += self._notice_pages(
                    student, lab, "feedback not available",
                    f"Your notebook was graded (score {_num(got.get('score', 0))}/"
                    f"{_num(got.get('max', self.max_score(lab)))}), but its feedback page could "
                    f"not be made. Your instructor has been told and will send it to you.")
        run.pages = sorted(set(run.pages))
        self._withhold_leaks(run)
        return run

    def _notice_pages(self, student: str, lab: str, title: str, text: str,
                      advice: str = "") -> list[Path]:
        """A plain page in place of each notebook's feedback of ``student`` in ``lab``."""
        out = []
        for name in lab_notebooks(lab, self.source_dir):
            path = self.dir / "feedback" / student / lab / f"{name}.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
                f"{html.escape(lab)}: {html.escape(title)}</title></head><body>"
                f"<h1>{html.escape(lab)} / {html.escape(name)}</h1>"
                f"<p>{html.escape(text)}</p>" + (f"<p>{advice}</p>" if advice else "")
                + "</body></html>\n", encoding="utf-8")
            out.append(path)
        return out

    def _failure_pages(self, student: str, lab: str, run: dict) -> list[Path]:
        if run["status"] == "timeout":
            why = "it ran longer than the time limit for one notebook and was stopped"
        else:
            why = "the grader could not run it"
        return self._notice_pages(
            student, lab, "not graded", f"Your notebook was not graded: {why}. Score: 0.",
            "Run it yourself with <em>Kernel &rarr; Restart &amp; Run All</em>: every cell "
            "must finish. Look for a loop that never ends, or code that waits for input; "
            "then submit again.")

    def _withhold_leaks(self, run: "FeedbackRun") -> None:
        """Replace every page that holds a line of hidden test source by a notice."""
        secret = [line for line in hidden_test_lines(self.source_dir) if len(line) >= 8]
        for page in list(run.pages):
            text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8", errors="replace")))
            leaked = [line for line in secret if line in text]
            if not leaked:
                continue
            student, lab = page.parent.parent.name, page.parent.name
            run.problems.append(f"{student}/{lab}: the feedback page held hidden test source "
                                f"({leaked[0]!r}); it was withheld. Check "
                                f"GenerateFeedback.preprocessors in grader/config.py")
            page.write_text(
                "<!DOCTYPE html><html><head><meta charset='utf-8'><title>feedback withheld"
                "</title></head><body><p>Your feedback page could not be released. Your "
                "instructor has been told.</p></body></html>\n", encoding="utf-8")

    # -- export --------------------------------------------------------------------------------

    def _who(self, labs: list[str]) -> dict[str, dict]:
        """student -> their LMS identity (``lms``, ``user_id``, ``name``), from the runs."""
        status = self._results()
        out: dict[str, dict] = {}
        for lab in labs:
            for student, run in status.get(lab, {}).items():
                if run.get("identity") and student not in out:
                    out[student] = dict(run["identity"])
        return out

    def _assigned(self, labs: list[str], only: Optional[Iterable[str]]) -> list[str]:
        """The labs that count towards ``max``: those asked for, or else those graded at least
        once in this course (a lab not yet assigned does not lower anyone's percentage)."""
        if only:
            return labs
        status = self._results()
        return [lab for lab in labs if status.get(lab)]

    def _rows(self, labs: list[str]):
        """(student, identity, {lab: (score, state, flags, tests)}) for every student."""
        scores = self.scores(labs)
        status = self._results()
        who = self._who(labs)
        students = sorted(set(scores) | {s for lab in labs for s in status.get(lab, {})})
        from .similarity import load_flags
        similar = {lab: load_flags(self.dir, lab) for lab in labs}
        for student in students:
            per_lab = {}
            for lab in labs:
                got = scores.get(student, {}).get(lab)
                run = status.get(lab, {}).get(student, {})
                state = run.get("status", "ok" if got else "missing")
                ok = bool(got) and state == "ok"
                flags = list(run.get("flags", []))
                for test, (manual, auto) in sorted((got or {}).get("manual", {}).items()):
                    flags.append(f"manual:{test}={_num(manual)} (auto {_num(auto)})")
                if ok and got.get("late_penalty"):
                    flags.append(f"late-penalty:-{_num(round(got['late_penalty'], 4))}")
                flags += similar[lab].get(student, [])       # python -m grader similarity
                per_lab[lab] = (got["score"] if ok else 0.0, state, flags,
                                got["tests"] if ok else {})
            yield student, who.get(student, {}), per_lab

    def export(self, path: Optional[Path | str] = None, labs: Optional[Iterable[str]] = None,
               *, per_test: bool = False) -> Path:
        """Write the grades as CSV (default ``<course>/grades.csv``): one row per student with
        their LMS identity apart from their name, a grand total and the maximum of the labs
        assigned; per lab a total, a status and the flags (a manual score shows as
        ``manual:<test>=<score> (auto <score>)``), and with ``per_test`` one column per test
        (``<lab>/<test>``)."""
        wanted = labs
        labs = self.labs(labs)
        assigned = self._assigned(labs, wanted)
        header = ["student", "name", "lms", "lms_user_id", "total", "max"]
        for lab in labs:
            header += [lab, f"{lab}:status", f"{lab}:flags"]
            if per_test:
                header += [f"{lab}/{t}" for t in self.test_ids(lab)]
        path = Path(path) if path else self.dir / "grades.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for student, who, per_lab in self._rows(labs):
                total = sum(per_lab[lab][0] for lab in labs)
                row: list = [student, who.get("name", student), who.get("lms", ""),
                             who.get("user_id", ""), _num(total),
                             _num(sum(self.max_score(lab) for lab in assigned))]
                for lab in labs:
                    score, state, flags, tests = per_lab[lab]
                    row += [_num(score), state, ";".join(flags)]
                    if per_test:
                        row += [_num(tests.get(t, 0.0)) for t in self.test_ids(lab)]
                writer.writerow(row)
        return path

    #: Canvas' gradebook import: these columns first, then one per assignment; a second row
    #: "Points Possible" gives each assignment's maximum (Canvas creates an assignment for a
    #: column it does not know).
    CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    #: Moodle's assignment grading worksheet (Assignment > Upload grading worksheet):
    #: "Identifier" is "Participant <id>", the id in the folder names of Moodle's download.
    MOODLE_COLUMNS = ["Identifier", "Full name", "Grade", "Maximum Grade", "Feedback comments"]

    def export_lms(self, lms: str, out_dir: Optional[Path | str] = None,
                   labs: Optional[Iterable[str]] = None) -> tuple[list[Path], list[str]]:
        """Grade files an LMS imports without editing: ``canvas`` (one CSV for every lab) or
        ``moodle`` (one grading worksheet per lab). Only students whose notebooks came from
        that LMS's export can be matched; the others are returned as problems."""
        if lms not in ("canvas", "moodle"):
            raise GradingError(f"unknown LMS {lms!r}: use canvas or moodle")
        labs = self.labs(labs)
        out_dir = Path(out_dir) if out_dir else self.dir
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = list(self._rows(labs))
        matched = [(s, who, per) for s, who, per in rows if who.get("lms") == lms]
        problems = [f"{s}: not from a {lms} export, so not in the {lms} file" for s, who, _ in rows
                    if who.get("lms") != lms]
        paths = []
        if lms == "canvas":
            path = out_dir / "grades-canvas.csv"
            with open(path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(self.CANVAS_COLUMNS + labs)
                writer.writerow(["Points Possible", "", "", "", ""]
                                + [_num(self.max_score(lab)) for lab in labs])
                for _, who, per in matched:
                    writer.writerow([who.get("name", ""), who["user_id"], "", "", ""]
                                    + [_num(per[lab][0]) for lab in labs])
            paths.append(path)
        else:
            for lab in labs:
                path = out_dir / f"grades-moodle-{lab}.csv"
                with open(path, "w", newline="", encoding="utf-8") as fh:
                    writer = csv.writer(fh)
                    writer.writerow(self.MOODLE_COLUMNS)
                    for _, who, per in matched:
                        score, state, flags, _ = per[lab]
                        if state == "missing":
                            continue
                        writer.writerow([f"Participant {who['user_id']}", who.get("name", ""),
                                         _num(score), _num(self.max_score(lab)),
                                         "" if state == "ok" else f"not graded: {state}"])
                paths.append(path)
        return paths, problems

    # -- selfcheck -----------------------------------------------------------------------------

    def selfcheck(self, *, workers: int = 2, timeout_s: float = DEFAULT_NOTEBOOK_TIMEOUT_S,
                  labs: Optional[Iterable[str]] = None, progress: bool = True) -> tuple[bool, list[str]]:
        """Grade the solutions (must score full marks) and the unmodified releases (must score
        zero) in a scratch course; also check that ``labs/`` is what nbgrader makes from
        ``solutions/``. Returns (ok, report lines)."""
        labs = self.labs(labs)
        report: list[str] = []
        ok = True
        with tempfile.TemporaryDirectory(prefix="dynamo-lab-selfcheck-") as tmp:
            tmp = Path(tmp)
            scratch = Course(tmp / "course", cell_timeout_s=self.cell_timeout_s,
                             source_dir=self.source_dir)
            scratch.prepare(labs)
            for nb_path in sorted(scratch.release_dir.glob("*/*.ipynb")):
                committed = LABS_DIR / nb_path.parent.name / nb_path.name
                name = committed.relative_to(LABS_DIR.parent)
                if not committed.exists() or committed.read_bytes() != nb_path.read_bytes():
                    ok = False
                    report.append(f"FAIL {name} differs from what nbgrader generates from "
                                  f"solutions/: run python -m grader release")
                else:
                    report.append(f"ok   {name} is what nbgrader generates from solutions/")
            subs = tmp / "submissions"
            for lab in labs:
                for name in lab_notebooks(lab, self.source_dir):
                    for student, src in (("solution", self.source_dir), ("release", LABS_DIR)):
                        dest = subs / student / lab / f"{name}.ipynb"
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy(src / lab / f"{name}.ipynb", dest)
            summary = scratch.autograde(subs, labs=labs, workers=workers, timeout_s=timeout_s,
                                        progress=progress)
            for row in summary.rows:
                want = row["max"] if row["student"] == "solution" else 0.0
                good = row["status"] == "ok" and abs(row["score"] - want) < 1e-9
                ok &= good
                report.append(f"{'ok  ' if good else 'FAIL'} {row['lab']}: {row['student']} scored "
                              f"{_num(row['score'])}/{_num(row['max'])} (want {_num(want)}) "
                              f"in {row['seconds']:.1f} s"
                              + (f" [{row['status']}; {', '.join(row['flags'])}]"
                                 if row["flags"] or row["status"] != "ok" else ""))
            if len(summary.rows) != 2 * len(labs):
                ok = False
                report.append(f"FAIL expected {2 * len(labs)} graded notebooks, got {len(summary.rows)}: "
                              + "; ".join(summary.problems))
        return ok, report


def _num(x: float) -> str:
    return f"{x:g}"
