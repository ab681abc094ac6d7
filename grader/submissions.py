"""Finding submissions (a folder or an LMS zip export) and repairing damaged notebooks.

Layouts understood, in a folder or inside a zip:

* ``<student>/<lab>/<notebook>.ipynb``: nbgrader's own ``submitted`` layout (and the exchange's);
* ``<student>/<anything>.ipynb``: one folder per student;
* Canvas: ``<name>_[LATE_]<user id>_<submission id>_<original file name>.ipynb``;
* Moodle: ``<Full Name>_<id>_assignsubmission_file_/<file>.ipynb``;
* flat files named ``<student>_<notebook>.ipynb`` or ``<student>-<notebook>.ipynb``.

Which lab a notebook belongs to is read from its nbgrader cell ids (so a renamed file is still
found), then from its file name, then from the signatures of its answer cells.

:func:`repair` prepares a notebook for nbgrader: it puts back deleted test cells, recovers the
nbgrader metadata of cells whose metadata was stripped (nbgrader's own ``add_missing_cells``
crashes on those), and reports what it did as flags.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .config import BEGIN_HIDDEN, END_HIDDEN, LABS_DIR, lab_ids, safe_id

MAX_ZIP_BYTES = 2_000_000_000
MAX_NOTEBOOK_BYTES = 50_000_000


@dataclass
class LabInfo:
    """What the grader knows of one lab from its release notebook."""
    lab: str
    notebook: str                      # notebook name without .ipynb
    release: dict                      # the release notebook (JSON)
    grade_ids: set = field(default_factory=set)
    signatures: dict = field(default_factory=dict)    # answer grade_id -> "def name(" / "class Name"


@dataclass
class Submission:
    student: str
    lab: str
    path: Path                         # the notebook as found
    origin: str                        # where it came from, for reports
    flags: list = field(default_factory=list)
    # Who it is in the LMS the export came from: {"lms": "canvas"|"moodle", "user_id": ...,
    # "name": the display name in the file name}; empty for other layouts.
    identity: dict = field(default_factory=dict)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def _nbg(cell: dict) -> dict:
    meta = cell.get("metadata") or {}
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


_SIGNATURE = re.compile(r"^(def [A-Za-z_][A-Za-z0-9_]*\(|class [A-Za-z_][A-Za-z0-9_]*\b)", re.M)


def load_labs(release_dir: Path = LABS_DIR, only: Optional[list[str]] = None) -> dict[str, LabInfo]:
    """Every lab of ``release_dir`` (one notebook per lab), keyed by lab id."""
    labs: dict[str, LabInfo] = {}
    for lab in lab_ids(release_dir):
        if only and lab not in only:
            continue
        for nb_path in sorted((release_dir / lab).glob("*.ipynb")):
            nb = json.loads(nb_path.read_text(encoding="utf-8"))
            info = LabInfo(lab, nb_path.stem, nb)
            for cell in nb["cells"]:
                nbg = _nbg(cell)
                if nbg.get("grade_id"):
                    info.grade_ids.add(nbg["grade_id"])
                    if nbg.get("solution"):
                        m = _SIGNATURE.search(_source(cell))
                        if m:
                            info.signatures[nbg["grade_id"]] = m.group(1)
            labs[lab] = info
    return labs


# ---------------------------------------------------------------------------------------------
# Finding notebooks
# ---------------------------------------------------------------------------------------------

class SubmissionError(ValueError):
    """A submissions folder or archive that cannot be read."""


def extract_zip(archive: Path, dest: Path) -> Path:
    """Unpack an LMS export safely: no absolute paths, no ``..``, no links, bounded size.
    Nested zips (one per student, as some LMSs make) are unpacked in place."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise SubmissionError(f"{archive} is not a zip file: {exc}") from None
    with zf:
        total = 0
        for info in zf.infolist():
            name = info.filename.replace("\\", "/")
            if name.startswith("/") or ".." in name.split("/") or ":" in name.split("/")[0]:
                raise SubmissionError(f"{archive}: refusing the unsafe path {info.filename!r}")
            if stat.S_ISLNK(info.external_attr >> 16):
                continue
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise SubmissionError(f"{archive} unpacks to more than {MAX_ZIP_BYTES} bytes")
            if name.endswith("/"):
                continue
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    for inner in sorted(dest.rglob("*.zip")):
        sub = inner.with_suffix("")
        sub.mkdir(exist_ok=True)
        extract_zip(inner, sub)
        inner.unlink()
    return dest


# Canvas: "<lastfirst>_[LATE_]<user id>_<submission id>_<file>"; the name keeps any letters
# (non-ASCII too) and digits. Moodle: "<Full Name>_<participant id>_assignsubmission_file_".
_CANVAS = re.compile(r"^(?P<name>[^\W_]+)_(?P<late>LATE_)?(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+)$")
_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<uid>\d+)_assign(?:submission|feedback)_[a-z]+_?$")
_RESUBMIT = re.compile(r"-(\d+)$")


def _read_notebook(path: Path) -> Optional[dict]:
    """The notebook at ``path`` as nbformat 4 JSON (an nbformat 3 notebook, which Jupyter still
    opens, is upgraded), or None when it cannot be read."""
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(nb, dict) and nb.get("nbformat") == 3 and isinstance(nb.get("worksheets"), list):
        nb = _upgrade_v3(nb)
    return nb if isinstance(nb, dict) and isinstance(nb.get("cells"), list) else None


def _upgrade_v3(nb: dict) -> Optional[dict]:
    import nbformat
    try:
        return json.loads(nbformat.writes(nbformat.reads(json.dumps(nb), as_version=4)))
    except Exception:  # nbformat raises many kinds for a damaged v3 file
        return None


def _nbformat_of(path: Path) -> Optional[int]:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("nbformat")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None


def detect_lab(path: Path, nb: Optional[dict], labs: dict[str, LabInfo]) -> Optional[str]:
    """The lab a notebook belongs to: by nbgrader cell ids, then file name, then the
    signatures of its answer cells. None when nothing matches."""
    if nb is not None:
        ids = {_nbg(c).get("grade_id") for c in nb["cells"]} - {None}
        best = max(labs.values(), key=lambda info: (len(ids & info.grade_ids), info.lab), default=None)
        if best is not None and ids & best.grade_ids:
            return best.lab
    stem = _RESUBMIT.sub("", path.stem).lower()
    for info in sorted(labs.values(), key=lambda i: -len(i.notebook)):
        if stem.endswith(info.notebook.lower()) or stem == info.lab.lower():
            return info.lab
    if nb is not None:
        text = "\n".join(_source(c) for c in nb["cells"])
        scores = {lab: sum(sig in text for sig in info.signatures.values())
                  for lab, info in labs.items()}
        lab = max(sorted(scores), key=lambda k: scores[k], default=None)
        if lab is not None and scores[lab] > 0:
            return lab
    return None


def lms_identity(path: Path, root: Path) -> dict:
    """Who a notebook belongs to in the LMS export it came from (Canvas file name, Moodle
    folder): ``{"lms", "user_id", "name"}`` and ``"late": True`` for Canvas' ``LATE_``;
    ``{}`` for any other layout."""
    m = _CANVAS.match(path.name)
    if m:
        out = {"lms": "canvas", "user_id": m.group("uid"), "name": m.group("name")}
        if m.group("late"):
            out["late"] = True
        return out
    for folder in reversed(path.relative_to(root).parts[:-1]):
        m = _MOODLE.match(folder)
        if m:
            return {"lms": "moodle", "user_id": m.group("uid"), "name": m.group("name")}
    return {}


def _student_from_name(path: Path, root: Path, labs: dict[str, LabInfo]) -> tuple[str, str]:
    """(student id, how it was read) from a notebook's path below ``root``. An LMS student is
    ``<name>_<user id>``, the same in every lab's export, whatever letters the name has."""
    rel = path.relative_to(root)
    parts = rel.parts
    who = lms_identity(path, root)
    if who:
        how = "canvas file name" if who["lms"] == "canvas" else "moodle folder"
        return safe_id(f"{who['name']}_{who['user_id']}"), how
    lab_names = {info.lab for info in labs.values()}
    folders = [p for p in parts[:-1] if p not in lab_names]
    if folders:
        return safe_id(folders[-1]), "folder"
    stem = _RESUBMIT.sub("", path.stem)
    for info in labs.values():
        for suffix in (info.notebook, info.lab):
            for sep in ("_", "-", "__", "."):
                if stem.lower().endswith((sep + suffix).lower()) and len(stem) > len(suffix) + 1:
                    return safe_id(stem[: -len(suffix) - len(sep)]), "file name"
    return "", ""


def find_submissions(source: Path, labs: dict[str, LabInfo], work_dir: Path) -> tuple[list[Submission], list[str]]:
    """Every (student, lab) notebook in ``source`` (a folder or a zip), and the problems met.

    When a student has several notebooks for one lab, the resubmission with the highest number
    (``name-2.ipynb`` after ``name-1.ipynb`` after ``name.ipynb``) wins, then the newest file.
    """
    source = Path(source)
    problems: list[str] = []
    if source.is_file() and source.suffix.lower() == ".zip":
        root = extract_zip(source, work_dir / "unzipped")
    elif source.is_dir():
        root = source
    else:
        raise SubmissionError(f"{source} is neither a folder nor a .zip file")
    found: dict[tuple[str, str], list[tuple[tuple, Submission]]] = {}
    for path in sorted(root.rglob("*.ipynb")):
        rel = path.relative_to(root)
        if any(p.startswith(".") or p == "__MACOSX" for p in rel.parts):
            continue
        nb = _read_notebook(path)
        lab = detect_lab(path, nb, labs)
        if lab is None:
            problems.append(f"{rel}: not a notebook of any lab ({', '.join(sorted(labs))}); skipped")
            continue
        student, how = _student_from_name(path, root, labs)
        if not student:
            problems.append(f"{rel}: cannot tell whose notebook this is (put it in a folder named "
                            f"after the student, or name it <student>_{labs[lab].notebook}.ipynb)")
            continue
        m = _RESUBMIT.search(path.stem)
        rank = (int(m.group(1)) if m else 0, path.stat().st_mtime, str(rel))
        sub = Submission(student, lab, path, str(rel), identity=lms_identity(path, root))
        if sub.identity.get("late"):
            sub.flags.append("late")
        if nb is None:
            sub.flags.append("unreadable-notebook")
        elif _nbformat_of(path) == 3:
            sub.flags.append("upgraded-from-nbformat-3")
        found.setdefault((student, lab), []).append((rank, sub))
    subs = []
    for key in sorted(found):
        candidates = sorted(found[key], key=lambda x: x[0])
        chosen = candidates[-1][1]
        if len(candidates) > 1:
            others = ", ".join(s.origin for _, s in candidates[:-1])
            problems.append(f"{chosen.student}/{chosen.lab}: several notebooks; grading "
                            f"{chosen.origin}, ignoring {others}")
            chosen.flags.append("several-submissions")
        subs.append(chosen)
    return subs, problems


# ---------------------------------------------------------------------------------------------
# Repairing a notebook before nbgrader sees it
# ---------------------------------------------------------------------------------------------

def repair(nb: Optional[dict], release: dict) -> tuple[dict, list[str]]:
    """A copy of ``nb`` that nbgrader can grade, and flags saying what was wrong.

    * an unreadable notebook is replaced by the release notebook (``unreadable-notebook``);
    * a cell without nbgrader metadata whose source is that of a locked release cell, or that
      holds the ``def``/``class`` line of a release answer cell, gets the release metadata back
      (``metadata-restored``);
    * a test, setup or answer cell that is missing is put back from the release, after the
      cell that precedes it there (``restored-cell:<id>``; a restored answer cell is the
      unanswered stub, so it scores nothing);
    * a locked cell whose source was edited is reported (``edited-cell:<id>``); nbgrader
      restores its source from the gradebook.
    """
    flags: list[str] = []
    if nb is None:
        return copy.deepcopy(release), ["unreadable-notebook"]
    nb = copy.deepcopy(nb)
    rel_cells = [c for c in release["cells"] if _nbg(c).get("grade_id")]
    by_id = {_nbg(c)["grade_id"]: c for c in rel_cells}
    order = [_nbg(c)["grade_id"] for c in rel_cells]
    present: dict[str, int] = {}
    stripped = 0
    cells = nb.get("cells", [])
    for idx, cell in enumerate(cells):
        gid = _nbg(cell).get("grade_id")
        if gid in by_id and gid not in present and cell.get("cell_type") == by_id[gid]["cell_type"]:
            present[gid] = idx
            continue
        if gid in by_id:     # a duplicate or a changed cell type: treat it as the student's own
            cell.get("metadata", {}).pop("nbgrader", None)
        match = _match_stripped(cell, by_id, present)
        if match is not None:
            cell.setdefault("metadata", {})["nbgrader"] = copy.deepcopy(_nbg(by_id[match]))
            present[match] = idx
            stripped += 1
    if stripped:
        flags.append("metadata-restored")
    for gid in order:
        rel = by_id[gid]
        if gid not in present:
            continue
        if _nbg(rel).get("locked") and _without_hidden(_source(cells[present[gid]])) != _without_hidden(_source(rel)):
            flags.append(f"edited-cell:{gid}")
    missing = [gid for gid in order if gid not in present]
    for gid in missing:
        # Insert after the nearest earlier release cell that is present (or first).
        pos = 0
        for prev in reversed(order[: order.index(gid)]):
            if prev in present:
                pos = present[prev] + 1
                break
        restored = copy.deepcopy(by_id[gid])
        restored.pop("id", None)
        cells.insert(pos, restored)
        present = {k: (v + 1 if v >= pos else v) for k, v in present.items()}
        present[gid] = pos
        flags.append(f"restored-cell:{gid}")
    nb["cells"] = cells
    nb.setdefault("metadata", {})["kernelspec"] = copy.deepcopy(release["metadata"]["kernelspec"])
    nb["nbformat"], nb["nbformat_minor"] = release.get("nbformat", 4), release.get("nbformat_minor", 5)
    _fix_cell_ids(nb)
    return nb, flags


def _without_hidden(source: str) -> str:
    """The source without its hidden-test region (a solution notebook's test cell is then the
    release's), trimmed."""
    out, inside = [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        elif not inside:
            out.append(line.rstrip())
    return "\n".join(out).strip()


def _match_stripped(cell: dict, by_id: dict, present: dict) -> Optional[str]:
    src = _source(cell).strip()
    if not src:
        return None
    for gid, rel in by_id.items():
        if gid in present or rel["cell_type"] != cell.get("cell_type"):
            continue
        nbg = _nbg(rel)
        if nbg.get("locked") and _without_hidden(_source(rel)) == _without_hidden(src):
            return gid
    for gid, rel in by_id.items():
        if gid in present or rel["cell_type"] != cell.get("cell_type"):
            continue
        if _nbg(rel).get("solution"):
            m = _SIGNATURE.search(_source(rel))
            if m and re.search(r"^" + re.escape(m.group(1)), src, re.M):
                return gid
    return None


def _fix_cell_ids(nb: dict) -> None:
    """nbformat 4.5 wants a unique id on every cell: keep valid ones, number the rest."""
    seen: set[str] = set()
    for i, cell in enumerate(nb["cells"]):
        cid = cell.get("id")
        if not isinstance(cid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cid) or cid in seen:
            cid = f"cell-{i}"
            while cid in seen:
                cid += "x"
            cell["id"] = cid
        seen.add(cid)


#: The files nbgrader's collect puts beside a submitted notebook, kept through staging.
NBGRADER_FILES = ("timestamp.txt", "submission_secret.txt")


def stage(sub: Submission, info: LabInfo, submitted_dir: Path,
          assumed_timestamp: Optional[str] = None) -> Path:
    """Repair ``sub``'s notebook and write it where nbgrader expects it:
    ``<submitted>/<student>/<lab>/<notebook>.ipynb``. Adds the repair flags to ``sub``.
    ``assumed_timestamp``: the submission time to record when none came with it (a notebook
    the LMS only marked late)."""
    nb = _read_notebook(sub.path)
    # nbgrader collect leaves timestamp.txt (lateness) and submission_secret.txt (what
    # release_feedback needs to hand the feedback back) beside the notebook: keep them.
    kept = {name: (sub.path.parent / name).read_bytes() for name in NBGRADER_FILES
            if (sub.path.parent / name).is_file()}
    fixed, flags = repair(nb, info.release)
    for flag in flags:
        if flag not in sub.flags:
            sub.flags.append(flag)
    dest_dir = submitted_dir / sub.student / sub.lab
    if dest_dir.exists():
        shutil.rmtree(dest_dir)
    dest_dir.mkdir(parents=True)
    dest = dest_dir / f"{info.notebook}.ipynb"
    dest.write_text(json.dumps(fixed, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if assumed_timestamp and "timestamp.txt" not in kept:
        kept["timestamp.txt"] = assumed_timestamp.encode("utf-8")
    for name, data in kept.items():
        (dest_dir / name).write_bytes(data)
    return dest
