"""The class report of one lab: ``python -m grader report LAB``.

What a lecturer reads before the next lecture, from a graded class:

* how many submissions were graded, the mean and the median score (a submission that timed out
  or could not be graded counts 0, as in the export);
* per test (nbgrader ``grade_id``, with its points): how many students got its points, the pass
  rate;
* the score distribution, a histogram saved as ``report/<lab>.png`` in the course folder;
* the invariants the class breaks most: for each, how many students broke it (apart from those
  who left the part unimplemented, counted on their own), and one representative failing input:
  the most common "smallest failing input" of the failure reports (the shortest of those, on a
  tie), with what the reference expected and what the student's code gave.

The failure reports are read from the autograded notebooks (``autograded/<student>/<lab>/``):
each failed test cell holds its report as its error output, whose first line starts with the
invariant's name (:data:`dynamo_lab.grading.INVARIANTS`). A report that names no invariant
(a part missing from the answer cells, a grading error) is counted under its test's id.

Printed as text; also written as ``report/<lab>.html``, beside the PNG, and ``report/<lab>.json``.
"""

from __future__ import annotations

import collections
import html
import json
import statistics
import time
from pathlib import Path

#: The headline of a failure whose part raised NotImplementedError (dynamo_lab.grading).
NOT_IMPLEMENTED = "not implemented yet"


def parse_failure(text: str) -> dict:
    """A failure report (see :class:`dynamo_lab.grading.GradingFailure`) as fields:
    ``invariant`` (None if the text names none), ``headline``, ``input``, ``expected``,
    ``got``."""
    from dynamo_lab.grading import INVARIANTS
    lines = text.strip().splitlines() or [""]
    name, _, headline = lines[0].partition(": ")
    out = {"invariant": name if name in INVARIANTS or name == "own-code" else None,
           "headline": headline if name in INVARIANTS else lines[0],
           "input": None, "expected": None, "got": None}
    for line in lines[1:]:
        stripped = line.strip()
        for key, label in (("input", "smallest failing input:"), ("expected", "expected:"),
                           ("got", "got:")):
            if stripped.startswith(label) and out[key] is None:
                out[key] = _cut(stripped[len(label):].strip())
    out["headline"] = _cut(out["headline"])
    return out


def _cut(text: str, limit: int = 400) -> str:
    """A field short enough for a table (a student's exception message can be any length)."""
    return text if len(text) <= limit else text[:limit] + " ..."


def _failures(course_dir: Path, lab: str) -> dict[str, list[tuple[str, dict]]]:
    """``student -> [(grade_id, parsed failure)]`` from the autograded notebooks."""
    out: dict[str, list[tuple[str, dict]]] = {}
    for folder in sorted((course_dir / "autograded").glob(f"*/{lab}")):
        found: list[tuple[str, dict]] = []
        for path in sorted(folder.glob("*.ipynb")):
            try:
                nb = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for cell in nb.get("cells", []):
                nbg = (cell.get("metadata") or {}).get("nbgrader") or {}
                if not nbg.get("grade"):
                    continue
                for output in cell.get("outputs", []):
                    if output.get("output_type") == "error":
                        text = output.get("evalue") or "\n".join(output.get("traceback", []))
                        found.append((nbg.get("grade_id", "?"), parse_failure(text)))
                        break
        out[folder.parent.name] = found
    return out


def _unimplemented(failure: dict) -> bool:
    """A failure of a part left as the release had it (its ``NotImplementedError``)."""
    return (failure["headline"] == NOT_IMPLEMENTED
            or "NotImplementedError" in (failure["got"] or ""))


def representative(inputs: list[str]) -> str | None:
    """The most common input; the shortest of the most common on a tie (then the first in
    order, so the choice is the same on every run)."""
    if not inputs:
        return None
    counts = collections.Counter(inputs)
    return min(counts, key=lambda x: (-counts[x], len(x), x))


def class_report(course, lab: str, *, top: int = 10) -> dict:
    """Build the report of ``lab`` in ``course`` (a :class:`grader.course.Course`), write the
    PNG, the HTML page and the JSON into ``<course>/report/``, and return the report as a dict
    (with the paths under ``png``, ``html`` and ``json``). Raises ``GradingError`` for an unknown
    lab or a lab nobody was graded in."""
    from .course import GradingError
    course.labs([lab])
    status = course._results().get(lab, {})
    scores = course.scores([lab])
    students = sorted(set(status) | {s for s, labs in scores.items() if lab in labs})
    if not students:
        raise GradingError(f"no graded submission of {lab} in {course.dir}: grade the class first "
                           f"(python -m grader autograde SUBMISSIONS --lab {lab})")
    max_score = course.max_score(lab)
    points = _points(course, lab)
    totals, per_test = {}, {t: 0 for t in points}
    for s in students:
        got = scores.get(s, {}).get(lab)
        ok = got is not None and status.get(s, {}).get("status", "ok") == "ok"
        tests = got["tests"] if ok else {}
        totals[s] = sum(tests.values()) if ok else 0.0
        for t, p in points.items():
            per_test[t] += tests.get(t, 0.0) >= p - 1e-9 and p > 0
    n = len(students)
    failures = _failures(course.dir, lab)
    broken: dict[str, dict] = {}
    for s in students:
        for grade_id, f in failures.get(s, []):
            key = f["invariant"] or grade_id
            entry = broken.setdefault(key, {"invariant": key, "named": f["invariant"] is not None,
                                            "tests": set(), "students": set(), "unimplemented": set(),
                                            "reports": []})
            entry["tests"].add(grade_id)
            if _unimplemented(f):
                entry["unimplemented"].add(s)
            else:
                entry["students"].add(s)
                entry["reports"].append(f)
    invariants = []
    for e in broken.values():
        inputs = [f["input"] for f in e["reports"] if f["input"]]
        rep_input = representative(inputs)
        rep = next((f for f in e["reports"] if f["input"] == rep_input), None) if rep_input else \
            min(e["reports"], key=lambda f: (len(f["headline"]), f["headline"]), default=None)
        invariants.append({
            "invariant": e["invariant"], "tests": sorted(e["tests"]),
            "broken_by": len(e["students"]), "unimplemented": len(e["unimplemented"]),
            "students": sorted(e["students"]),
            "input": rep_input, "input_count": inputs.count(rep_input) if rep_input else 0,
            "expected": rep and rep["expected"], "got": rep and rep["got"],
            "headline": rep["headline"] if rep else NOT_IMPLEMENTED,
        })
    invariants.sort(key=lambda x: (-x["broken_by"], -x["unimplemented"], x["invariant"]))
    values = [totals[s] for s in students]
    report = {
        "lab": lab, "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "graded": n, "max": max_score,
        "mean": statistics.fmean(values), "median": statistics.median(values),
        "full_marks": sum(v >= max_score - 1e-9 for v in values),
        "not_ok": sorted(s for s in students if status.get(s, {}).get("status", "ok") != "ok"),
        "scores": totals,
        "distribution": [[score, values.count(score)] for score in sorted(set(values))],
        "tests": [{"test": t, "points": p, "passed": per_test[t], "rate": per_test[t] / n}
                  for t, p in points.items()],
        "invariants": invariants[:top],
        "more_invariants": max(0, len(invariants) - top),
    }
    out = course.dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    report["png"] = str(_histogram(values, max_score, lab, out / f"{lab}.png"))
    report["html"] = str(out / f"{lab}.html")
    report["json"] = str(out / f"{lab}.json")
    Path(report["html"]).write_text(render_html(report), encoding="utf-8")
    Path(report["json"]).write_text(json.dumps(report, indent=1, sort_keys=True), encoding="utf-8")
    return report


def _points(course, lab: str) -> dict[str, float]:
    """grade_id -> points of every test cell of the lab, in notebook order."""
    out: dict[str, float] = {}
    for nb_path in sorted((course.source_dir / lab).glob("*.ipynb")):
        for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
            nbg = cell.get("metadata", {}).get("nbgrader", {})
            if nbg.get("grade"):
                out[nbg["grade_id"]] = float(nbg.get("points", 0))
    return out


def _histogram(values: list[float], max_score: float, lab: str, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.subplots()
    top = int(max_score) if max_score == int(max_score) else max_score
    bins = [x - 0.5 for x in range(int(top) + 2)] if top <= 60 else 20
    ax.hist(values, bins=bins, color="#4477aa", edgecolor="white")
    ax.set_xlim(-0.5, max_score + 0.5)
    ax.set_xlabel(f"score (of {max_score:g})")
    ax.set_ylabel("students")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{lab}: {len(values)} graded, median {statistics.median(values):g}")
    fig.tight_layout()
    fig.savefig(path)
    return path


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def render_text(report: dict) -> str:
    """The report as readable text tables."""
    n = report["graded"]
    lines = [f"{report['lab']}: {n} graded; mean {report['mean']:.1f}, median "
             f"{report['median']:g} of {report['max']:g}; full marks {report['full_marks']}"
             + (f"; not graded (scored 0): {', '.join(report['not_ok'])}" if report["not_ok"] else ""),
             "scores (students): " + "  ".join(f"{score:g} ({count})"
                                               for score, count in report["distribution"]),
             "", "pass rate per test"]
    width = max([len(t["test"]) for t in report["tests"]] + [4])
    lines.append(f"  {'test':<{width}}  points  passed  rate")
    for t in report["tests"]:
        lines.append(f"  {t['test']:<{width}}  {t['points']:>6g}  {t['passed']:>3}/{n:<3} "
                     f"{_pct(t['rate']):>4}")
    lines += ["", "invariants the class breaks most"]
    if not report["invariants"]:
        lines.append("  none: every test passed")
    for i, inv in enumerate(report["invariants"], 1):
        extra = f", {inv['unimplemented']} left it unimplemented" if inv["unimplemented"] else ""
        lines.append(f"  {i}. {inv['invariant']}: broken by {inv['broken_by']} of {n}{extra}")
        if inv["input"]:
            seen = f" (seen {inv['input_count']}x)" if inv["input_count"] > 1 else ""
            lines.append(f"     input{seen}: {inv['input']}")
            if inv["expected"] is not None:
                lines.append(f"     expected: {inv['expected']}")
                lines.append(f"     got:      {inv['got']}")
        elif inv["broken_by"]:
            lines.append(f"     {inv['headline']}")
    if report["more_invariants"]:
        lines.append(f"  ... and {report['more_invariants']} more (--top)")
    return "\n".join(lines)


_CSS = ("body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}"
        "td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}"
        "td.n{text-align:right}code{font-size:90%}")


def render_html(report: dict) -> str:
    """The report as an HTML page, the histogram beside it (same folder)."""
    e = html.escape
    n = report["graded"]
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(report['lab'])}: class "
           f"report</title><style>{_CSS}</style></head><body><h1>{e(report['lab'])}: class report</h1>",
           f"<p>{n} graded; mean {report['mean']:.1f}, median {report['median']:g} of "
           f"{report['max']:g}; {report['full_marks']} with full marks.</p>"]
    if report["not_ok"]:
        out.append(f"<p>Not graded (scored 0): {e(', '.join(report['not_ok']))}.</p>")
    out.append(f"<img src='{e(Path(report['png']).name)}' alt='score distribution'>")
    out.append("<h2>Pass rate per test</h2><table><tr><th>test</th><th>points</th><th>passed</th>"
               "<th>rate</th></tr>")
    for t in report["tests"]:
        out.append(f"<tr><td>{e(t['test'])}</td><td class='n'>{t['points']:g}</td>"
                   f"<td class='n'>{t['passed']}/{n}</td><td class='n'>{_pct(t['rate'])}</td></tr>")
    out.append("</table><h2>Invariants the class breaks most</h2>")
    if not report["invariants"]:
        out.append("<p>None: every test passed.</p>")
    else:
        out.append("<table><tr><th>invariant</th><th>broken by</th><th>unimplemented</th>"
                   "<th>representative failing input</th></tr>")
        for inv in report["invariants"]:
            detail = ""
            if inv["input"]:
                detail = f"<code>{e(inv['input'])}</code>"
                if inv["expected"] is not None:
                    detail += (f"<br>expected <code>{e(inv['expected'])}</code>, got "
                               f"<code>{e(str(inv['got']))}</code>")
            elif inv["broken_by"]:
                detail = e(inv["headline"])
            out.append(f"<tr><td>{e(inv['invariant'])}</td><td class='n'>{inv['broken_by']}/{n}</td>"
                       f"<td class='n'>{inv['unimplemented']}</td><td>{detail}</td></tr>")
        out.append("</table>")
    out.append("</body></html>\n")
    return "".join(out)
