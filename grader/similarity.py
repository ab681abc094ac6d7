"""Copied code: ``python -m grader similarity LAB``.

The answer cells of every graded submission of a lab are compared with each other and with the
reference solution, the way MOSS does it (Schleimer, Wilkerson and Aiken, *Winnowing: local
algorithms for document fingerprinting*, SIGMOD 2003):

1. **Normalise.** Each answer cell is parsed (``ast``) and written out as a sequence of tokens,
   one per syntax node, each remembering its source line. What a copier changes for free is
   gone: comments, docstrings and formatting do not survive parsing; literals become their type
   (``str``, ``int``); a function's arguments and local variables become positional
   placeholders (``a1``, ``a2`` ... in order of first use in that function), other names of the
   student's own a single ``G``, attribute names of the student's own a single ``attr``. Names
   the lab or Python hands out (builtins, imported names, the lab's helpers such as
   ``key_hash`` or ``AFTER``, methods of builtin types such as ``items``) stay as they are: they
   are what the code does. A cell that does not parse is split into Python tokens instead.
2. **Fingerprint.** Every run of ``k`` consecutive tokens of a cell (a *k-gram*) is hashed;
   winnowing keeps the smallest hash of every window of ``window`` consecutive hashes. Any code
   two submissions share that is at least ``k + window - 1`` tokens long shares a fingerprint;
   runs shorter than ``k`` tokens never do (the noise threshold).
3. **Subtract the starter code.** Every k-gram of the release notebook's answer cells (the
   docstrings and ``raise NotImplementedError()`` everyone gets) is removed from every set, so
   handing in the release unchanged is similar to nothing. Like MOSS's ``-m``, a fingerprint
   found in more than ``common`` submissions (default :data:`DEFAULT_COMMON`) is taken for
   code everyone writes that way and removed too: the obvious way to write a short part is no
   evidence of copying, and without this a class of fifty would list hundreds of pairs.
4. **Compare** every pair of students, and every student with the reference's answer cells.
   The similarity of two submissions is the number of fingerprints they share divided by the
   size of the *smaller* set (MOSS reports this share from each side; the larger one is this):
   a student who copied a classmate's work and added some of their own is still found. A pair
   is flagged when its similarity is at or above ``threshold`` (default
   :data:`DEFAULT_THRESHOLD`) and both submissions have at least ``min_fingerprints``
   fingerprints (default :data:`DEFAULT_MIN_FINGERPRINTS`; below that there is too little
   code of one's own to tell a copy from the one obvious way to write it). The Jaccard index
   (shared / union) is reported beside it.

Written to the course folder: ``similarity/<lab>.json`` (every flagged pair, the flags per
student, the settings) and ``similarity/<lab>.html`` (each flagged pair's cells side by side,
the lines that share fingerprints highlighted). ``export`` shows ``similar:<student>`` or
``similar:reference`` among a flagged student's flags. A flag is a reason to look, not a
verdict: short parts have few natural ways to be written.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import html
import io
import itertools
import json
import keyword
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from .config import LABS_DIR

#: Tokens per k-gram: shared runs shorter than this never count.
DEFAULT_K = 10
#: Winnowing window: a shared run of K + WINDOW - 1 tokens always shares a fingerprint.
DEFAULT_WINDOW = 4
#: A pair whose shared fingerprints are at least this share of the smaller set is flagged.
DEFAULT_THRESHOLD = 0.7
#: Submissions with fewer fingerprints of their own than this are never flagged.
DEFAULT_MIN_FINGERPRINTS = 8
#: A fingerprint found in more submissions than this is common code and does not count.
DEFAULT_COMMON = 10
#: Characters of answer cells compared per submission, at most (the rest is cut): what one
#: hostile notebook can cost the run.
MAX_CHARS = 200_000
#: Who the reference solution is, in pairs and flags.
REFERENCE = "reference"

_BUILTIN_TYPES = (dict, list, set, frozenset, str, bytes, int, float, tuple)
_KEPT_ATTRS = frozenset(a for t in _BUILTIN_TYPES for a in dir(t) if not a.startswith("__"))
_KEPT_NAMES = frozenset(dir(builtins)) | {"self", "cls"}


# =============================================================================================
# Normalising
# =============================================================================================

Token = tuple[str, int]          # (text, line of the cell, from 1)


def _strip_magics(source: str) -> str:
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines())


def _locals_of(fn: ast.AST) -> set[str]:
    """Names a function (or lambda) binds: its arguments, and every name stored in its body
    outside nested functions and classes (comprehension targets included)."""
    args = fn.args
    out = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    out |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    globals_: set[str] = set()
    todo = list(fn.body) if isinstance(fn.body, list) else [fn.body]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            globals_ |= set(node.names)
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        if isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
        todo.extend(ast.iter_child_nodes(node))
    return out - globals_


def _is_docstring(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


class _Normaliser:
    """Turns one parsed cell into tokens (see the module docstring)."""

    def __init__(self, keep: frozenset[str]):
        self.keep = keep
        self.scopes: list[tuple[set[str], dict[str, str]]] = []   # (locals, placeholders)
        self.tokens: list[Token] = []
        self.line = 1

    def emit(self, text: str) -> None:
        self.tokens.append((text, self.line))

    def name(self, ident: str) -> str:
        for depth, (bound, names) in enumerate(reversed(self.scopes)):
            if ident in bound:
                if ident not in names:
                    names[ident] = f"a{len(names) + 1}"
                return names[ident] if depth == 0 else "outer:" + names[ident]
        return ident if ident in self.keep else "G"

    def visit(self, node: ast.AST) -> None:
        self.line = getattr(node, "lineno", self.line)
        kind = type(node).__name__
        if isinstance(node, (ast.expr_context, ast.Load)):
            return
        if isinstance(node, ast.Name):
            self.emit(self.name(node.id))
        elif isinstance(node, ast.arg):
            self.emit(self.name(node.arg))
            if node.annotation is not None:
                self.visit(node.annotation)
        elif isinstance(node, ast.Constant):
            value = node.value
            self.emit(repr(value) if value is None or isinstance(value, bool) or value is ...
                      else type(value).__name__)
        elif isinstance(node, ast.Attribute):
            self.emit("Attribute")
            self.visit(node.value)
            self.emit("." + node.attr if node.attr in _KEPT_ATTRS or node.attr in self.keep
                      else ".attr")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            self.emit(kind + ":" + (getattr(node, "module", None) or ""))
            for alias in node.names:
                self.emit(alias.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            self.emit(kind)
            if not isinstance(node, ast.Lambda):
                for deco in node.decorator_list:
                    self.visit(deco)
            self.scopes.append((_locals_of(node), {}))
            self.visit(node.args)
            body = node.body if isinstance(node.body, list) else [node.body]
            for stmt in body:
                if not _is_docstring(stmt):
                    self.visit(stmt)
            self.scopes.pop()
            self.emit("end")
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            # targets first: a comprehension's variable is bound before its element is read
            self.emit(kind)
            for gen in node.generators:
                self.visit(gen)
            for part in ([node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]):
                self.visit(part)
        elif isinstance(node, ast.ClassDef):
            self.emit(kind)
            for child in node.bases + node.keywords:
                self.visit(child)
            for stmt in node.body:
                if not _is_docstring(stmt):
                    self.visit(stmt)
            self.emit("end")
        elif isinstance(node, ast.keyword):
            self.emit(f"kw:{node.arg}")
            self.visit(node.value)
        elif isinstance(node, ast.Expr) and _is_docstring(node):
            return                                  # a bare string: a comment in disguise
        else:
            self.emit(kind)
            for child in ast.iter_child_nodes(node):
                self.visit(child)


def normalise(source: str, keep: Iterable[str] = ()) -> list[Token]:
    """The tokens of one cell's code (see the module docstring). ``keep``: names kept as they
    are besides Python's builtins (the lab's helpers). Never raises on bad code."""
    source = _strip_magics(source)
    try:
        tree = ast.parse(source)
        imported = {(a.asname or a.name).split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
        norm = _Normaliser(frozenset(keep) | _KEPT_NAMES | imported)
        for stmt in tree.body:
            if not _is_docstring(stmt):
                norm.visit(stmt)
        return norm.tokens
    except (SyntaxError, ValueError, RecursionError):   # RecursionError: nesting too deep
        return _lexical_tokens(source, frozenset(keep) | _KEPT_NAMES)


def _lexical_tokens(source: str, keep: frozenset[str]) -> list[Token]:
    """Fallback for a cell that does not parse: Python's own tokens, names and literals
    reduced as above (without scopes)."""
    out: list[Token] = []
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER, tokenize.ENCODING}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in skip:
                continue
            if tok.type == tokenize.NAME:
                text = tok.string if keyword.iskeyword(tok.string) or tok.string in keep else "id"
            elif tok.type == tokenize.NUMBER:
                text = "num"
            elif tok.type == tokenize.STRING:
                text = "str"
            else:
                text = tok.string
            out.append((text, tok.start[0]))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


# =============================================================================================
# Fingerprints
# =============================================================================================

def kgram_hashes(tokens: list[Token], k: int) -> list[int]:
    """A stable 64-bit hash of every run of k consecutive tokens (the same on every machine and
    every PYTHONHASHSEED)."""
    texts = [t for t, _ in tokens]
    return [int.from_bytes(hashlib.blake2b("\x1f".join(texts[i:i + k]).encode(),
                                           digest_size=8).digest(), "big")
            for i in range(len(texts) - k + 1)]


def winnow(hashes: list[int], window: int) -> list[tuple[int, int]]:
    """Robust winnowing: ``(hash, position)`` of the smallest hash of every window of
    ``window`` consecutive hashes (the rightmost one on a tie), each position once."""
    if not hashes:
        return []
    if len(hashes) <= window:
        i = min(range(len(hashes)), key=lambda j: (hashes[j], -j))
        return [(hashes[i], i)]
    out: list[tuple[int, int]] = []
    last = -1
    for start in range(len(hashes) - window + 1):
        i = min(range(start, start + window), key=lambda j: (hashes[j], -j))
        if i != last:
            out.append((hashes[i], i))
            last = i
    return out


@dataclass
class Fingerprints:
    """One submission's answer cells and their fingerprints (the starter's removed)."""
    who: str
    cells: dict[str, str]                                   # cell id -> source
    where: dict[int, list[tuple[str, tuple[int, ...]]]] = field(default_factory=dict)
    # fingerprint -> [(cell id, the source lines of its k-gram)]

    @property
    def prints(self) -> set[int]:
        return set(self.where)


def answer_sources(nb: dict) -> dict[str, str]:
    """The answer (nbgrader solution) cells of a notebook: grade id -> source."""
    out: dict[str, str] = {}
    for cell in nb.get("cells", []):
        nbg = (cell.get("metadata") or {}).get("nbgrader") or {}
        if cell.get("cell_type") == "code" and nbg.get("solution"):
            src = cell.get("source", "")
            cid = nbg.get("grade_id") or f"cell{len(out) + 1}"
            out[cid] = src if isinstance(src, str) else "".join(src)
    return out


def starter_kgrams(release_cells: dict[str, str], *, keep: Iterable[str], k: int) -> set[int]:
    """Every k-gram hash of the starter code (the release's answer cells)."""
    return {h for src in release_cells.values() for h in kgram_hashes(normalise(src, keep), k)}


def fingerprint(who: str, cells: dict[str, str], *, keep: Iterable[str], starter: set[int],
                k: int = DEFAULT_K, window: int = DEFAULT_WINDOW) -> Fingerprints:
    """Winnowed fingerprints of ``cells`` minus those of the starter code (of their first
    :data:`MAX_CHARS` characters)."""
    fp = Fingerprints(who, {})
    budget = MAX_CHARS
    for cid, src in cells.items():
        src = fp.cells[cid] = src[:budget]
        budget -= len(src)
        tokens = normalise(src, keep)
        hashes = kgram_hashes(tokens, k)
        for h, pos in winnow(hashes, window):
            if h in starter:
                continue
            lines = tuple(sorted({line for _, line in tokens[pos:pos + k]}))
            fp.where.setdefault(h, []).append((cid, lines))
    return fp


@dataclass
class Pair:
    a: str
    b: str                                   # a student, or REFERENCE
    similarity: float                        # shared / smaller set
    jaccard: float
    shared: int
    sizes: tuple[int, int]
    flagged: bool
    lines: dict[str, dict[str, list[int]]]   # side ("a"/"b") -> cell id -> matching lines

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "similarity": round(self.similarity, 4),
                "jaccard": round(self.jaccard, 4), "shared": self.shared,
                "sizes": list(self.sizes), "flagged": self.flagged, "lines": self.lines}


def compare(x: Fingerprints, y: Fingerprints, *, threshold: float = DEFAULT_THRESHOLD,
            min_fingerprints: int = DEFAULT_MIN_FINGERPRINTS) -> Pair:
    """How similar two submissions are (see the module docstring for the measure and the
    flag)."""
    px, py = x.prints, y.prints
    shared = px & py
    smaller = min(len(px), len(py))
    sim = len(shared) / smaller if smaller else 0.0
    union = len(px | py)
    lines: dict[str, dict[str, list[int]]] = {"a": {}, "b": {}}
    for side, fp in (("a", x), ("b", y)):
        for h in shared:
            for cid, span in fp.where[h]:
                lines[side].setdefault(cid, set()).update(span)
        lines[side] = {cid: sorted(v) for cid, v in sorted(lines[side].items())}
    flagged = smaller >= min_fingerprints and sim >= threshold
    return Pair(x.who, y.who, sim, len(shared) / union if union else 0.0, len(shared),
                (len(px), len(py)), flagged, lines)


def drop_common(students: list[Fingerprints], common: int) -> set[int]:
    """Remove, from every submission, the fingerprints more than ``common`` of them hold (0:
    keep all); returns the fingerprints removed."""
    if common <= 0:
        return set()
    counts: dict[int, int] = {}
    for fp in students:
        for h in fp.where:
            counts[h] = counts.get(h, 0) + 1
    gone = {h for h, n in counts.items() if n > common}
    for fp in students:
        for h in gone & fp.prints:
            del fp.where[h]
    return gone


def compare_all(students: list[Fingerprints], reference: Optional[Fingerprints], *,
                threshold: float = DEFAULT_THRESHOLD,
                min_fingerprints: int = DEFAULT_MIN_FINGERPRINTS) -> list[Pair]:
    """Every pair of students, and every student against the reference; most similar first."""
    pairs = [compare(x, y, threshold=threshold, min_fingerprints=min_fingerprints)
             for x, y in itertools.combinations(sorted(students, key=lambda f: f.who), 2)]
    if reference is not None:
        pairs += [compare(x, reference, threshold=threshold, min_fingerprints=min_fingerprints)
                  for x in students]
    return sorted(pairs, key=lambda p: (-p.similarity, -p.shared, p.a, p.b))


def flags_of(pairs: Iterable[Pair]) -> dict[str, list[str]]:
    """``student -> ["similar:<other>", ...]`` for every flagged pair, most similar first."""
    out: dict[str, list[str]] = {}
    for p in pairs:
        if p.flagged:
            out.setdefault(p.a, []).append(f"similar:{p.b}")
            if p.b != REFERENCE:
                out.setdefault(p.b, []).append(f"similar:{p.a}")
    return out


# =============================================================================================
# The course
# =============================================================================================

def lab_keep(lab: str) -> frozenset[str]:
    """Names the lab hands the student (its prelude's top-level names), kept by the normaliser."""
    from .preludes import prelude
    try:
        tree = ast.parse(prelude(lab))
    except KeyError:
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(names)


def _notebook_cells(folder: Path) -> dict[str, str]:
    cells: dict[str, str] = {}
    for path in sorted(folder.glob("*.ipynb")):
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        cells.update(answer_sources(nb))
    return cells


def similarity(course, lab: str, *, threshold: float = DEFAULT_THRESHOLD,
               min_fingerprints: int = DEFAULT_MIN_FINGERPRINTS, k: int = DEFAULT_K,
               window: int = DEFAULT_WINDOW, common: int = DEFAULT_COMMON) -> dict:
    """Compare the graded submissions of ``lab`` in ``course`` (a :class:`grader.course.Course`);
    write ``similarity/<lab>.json`` and ``.html`` there and return the JSON's content (plus the
    pairs as :class:`Pair` under ``"_pairs"``). Raises ``GradingError`` for an unknown lab or a
    lab with no graded submission."""
    from .course import GradingError
    if not 0 < threshold <= 1:
        raise GradingError(f"--threshold must be in (0, 1], got {threshold:g}")
    if common < 0:
        raise GradingError(f"--common must be 0 (off) or more, got {common}")
    course.labs([lab])                                   # unknown lab: a GradingError
    graded = sorted(course._results().get(lab, {}))
    folders = {s: course.dir / "submitted" / s / lab for s in graded}
    folders = {s: f for s, f in folders.items() if any(f.glob("*.ipynb"))}
    if not folders:
        raise GradingError(f"no graded submission of {lab} in {course.dir}: grade the class first "
                           f"(python -m grader autograde SUBMISSIONS --lab {lab})")
    keep = lab_keep(lab)
    release = course.release_dir / lab
    starter = starter_kgrams(_notebook_cells(release if any(release.glob("*.ipynb"))
                                             else LABS_DIR / lab), keep=keep, k=k)
    opts = dict(keep=keep, starter=starter, k=k, window=window)
    students = [fingerprint(s, _notebook_cells(f), **opts) for s, f in folders.items()]
    common_prints = drop_common(students, common)
    reference = fingerprint(REFERENCE, _notebook_cells(course.source_dir / lab), **opts)
    for h in common_prints & reference.prints:
        del reference.where[h]
    pairs = compare_all(students, reference, threshold=threshold, min_fingerprints=min_fingerprints)
    result = {
        "lab": lab, "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "measure": "shared fingerprints / fingerprints of the smaller submission",
        "threshold": threshold, "min_fingerprints": min_fingerprints, "k": k, "window": window,
        "common": common, "common_fingerprints": len(common_prints),
        "students": {fp.who: len(fp.prints) for fp in students},
        "reference_fingerprints": len(reference.prints),
        "flags": flags_of(pairs),
        "pairs": [p.to_json() for p in pairs if p.flagged],
        "closest": [p.to_json() for p in pairs if not p.flagged][:10],
    }
    out = course.dir / "similarity"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{lab}.json").write_text(json.dumps(result, indent=1, sort_keys=True), encoding="utf-8")
    by_who = {fp.who: fp for fp in students + [reference]}
    (out / f"{lab}.html").write_text(render_html(result, by_who), encoding="utf-8")
    result["_pairs"] = pairs
    result["_sources"] = {w: fp.cells for w, fp in by_who.items()}
    return result


def load_flags(course_dir: Path, lab: str) -> dict[str, list[str]]:
    """The ``similar:`` flags of the last similarity run of ``lab`` (none if it never ran)."""
    path = Path(course_dir) / "similarity" / f"{lab}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("flags", {})
    except (OSError, ValueError):
        return {}


# =============================================================================================
# Reports
# =============================================================================================

def align(left: str, right: str, keep: Iterable[str] = ()) -> list[tuple[Optional[int], Optional[int]]]:
    """Rows of a side-by-side view: pairs of line numbers (from 1; None for a gap), lines whose
    normalised code is the same put on one row (difflib over the lines' tokens), so a renamed
    and reflowed copy lines up with its original."""
    import difflib

    def signatures(source: str) -> list[str]:
        by_line: dict[int, list[str]] = {}
        for text, line in normalise(source, keep):
            by_line.setdefault(line, []).append(text)
        n = len(source.splitlines())
        # a line with no code of its own (blank, comment, docstring) never anchors a match
        return [" ".join(by_line[i]) if i in by_line else f"\0{i}" for i in range(1, n + 1)]

    a, b = signatures(left), signatures(right)
    rows: list[tuple[Optional[int], Optional[int]]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        left_lines, right_lines = list(range(i1 + 1, i2 + 1)), list(range(j1 + 1, j2 + 1))
        for x, y in itertools.zip_longest(left_lines, right_lines):
            rows.append((x, y))
    return rows


def _side_by_side(left: str, right: str, marks_l: set[int], marks_r: set[int],
                  keep: Iterable[str] = (), width: int = 58) -> list[str]:
    ll, rl = left.splitlines(), right.splitlines()
    out = []
    for x, y in align(left, right, keep):
        a = ll[x - 1] if x else ""
        b = rl[y - 1] if y else ""
        ma = "*" if x in marks_l else " "
        mb = "*" if y in marks_r else " "
        a = a if len(a) <= width else a[:width - 1] + "~"
        b = b if len(b) <= width else b[:width - 1] + "~"
        out.append(f"    {ma} {a:<{width}} | {mb} {b}".rstrip())
    return out


def render_text(result: dict, *, show_code: bool = True) -> str:
    """The plain-text report: settings, flagged pairs most similar first, their matching cells
    side by side (``*`` marks the lines that share fingerprints)."""
    lab, pairs = result["lab"], result["pairs"]
    sources = result.get("_sources", {})
    keep = lab_keep(lab)
    common = (f"; code found in more than {result['common']} submissions ignored"
              if result["common"] else "")
    head = (f"{lab}: {len(result['students'])} submission(s) and the reference compared; "
            f"flagged at similarity >= {result['threshold']:.0%} ({result['measure']}; "
            f"at least {result['min_fingerprints']} fingerprints each{common})")
    lines = [head, ""]
    if not pairs:
        lines.append("no pair is flagged.")
        closest = result.get("closest") or []
        if closest:
            c = closest[0]
            lines.append(f"closest pair: {c['a']} ~ {c['b']} at {c['similarity']:.0%}")
        return "\n".join(lines)
    width = max(len(p["a"]) for p in pairs)
    for p in pairs:
        lines.append(f"{p['similarity']:6.0%}  {p['a']:<{width}} ~ {p['b']:<{width}}  "
                     f"{p['shared']} shared of {p['sizes'][0]} / {p['sizes'][1]} fingerprints, "
                     f"jaccard {p['jaccard']:.0%}")
    if show_code:
        for p in pairs:
            lines += ["", f"== {p['a']} ~ {p['b']}: {p['similarity']:.0%}"]
            for cid in sorted(set(p["lines"]["a"]) | set(p["lines"]["b"])):
                left = sources.get(p["a"], {}).get(cid, "")
                right = sources.get(p["b"], {}).get(cid, "")
                lines.append(f"  cell {cid}:  {p['a']}  |  {p['b']}")
                lines += _side_by_side(left, right, set(p["lines"]["a"].get(cid, [])),
                                       set(p["lines"]["b"].get(cid, [])), keep)
    return "\n".join(lines)


_CSS = """body{font-family:sans-serif;margin:2em}table.code{border-collapse:collapse;width:100%}
table.code td{vertical-align:top;width:50%;padding:0 .5em;font-family:monospace;font-size:12px;
white-space:pre}td.match{background:#ffe08a}th{text-align:left}td.gap{background:#f4f4f4}"""


def _row(source_lines: list[str], line: Optional[int], marks: set[int]) -> str:
    if line is None:
        return "<td class='gap'></td>"
    cls = " class='match'" if line in marks else ""
    return f"<td{cls}>{html.escape(source_lines[line - 1]) or ' '}</td>"


def render_html(result: dict, by_who: dict[str, Fingerprints]) -> str:
    """The HTML page: a table of the flagged pairs, then each pair's cells side by side (lines
    of the same normalised code on one row) with the lines that share fingerprints
    highlighted."""
    lab = html.escape(result["lab"])
    keep = lab_keep(result["lab"])
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{lab}: similar code</title>"
           f"<style>{_CSS}</style></head><body><h1>{lab}: similar code</h1>",
           f"<p>{len(result['students'])} submission(s) and the reference compared. A pair is "
           f"flagged at similarity &ge; {result['threshold']:.0%} ({html.escape(result['measure'])}), "
           f"with at least {result['min_fingerprints']} fingerprints on each side; the starter code "
           f"of the release does not count. Highlighted lines share fingerprints.</p>"]
    if not result["pairs"]:
        out.append("<p>No pair is flagged.</p>")
    else:
        out.append("<table><tr><th>similarity</th><th>pair</th><th>shared</th>"
                   "<th>jaccard</th></tr>")
        for n, p in enumerate(result["pairs"]):
            out.append(f"<tr><td>{p['similarity']:.0%}</td><td><a href='#pair{n}'>"
                       f"{html.escape(p['a'])} ~ {html.escape(p['b'])}</a></td>"
                       f"<td>{p['shared']} of {p['sizes'][0]} / {p['sizes'][1]}</td>"
                       f"<td>{p['jaccard']:.0%}</td></tr>")
        out.append("</table>")
    for n, p in enumerate(result["pairs"]):
        a, b = by_who[p["a"]], by_who[p["b"]]
        out.append(f"<h2 id='pair{n}'>{html.escape(p['a'])} ~ {html.escape(p['b'])}: "
                   f"{p['similarity']:.0%}</h2>")
        for cid in list(dict.fromkeys(list(a.cells) + list(b.cells))):
            la, lb = set(p["lines"]["a"].get(cid, [])), set(p["lines"]["b"].get(cid, []))
            src_a, src_b = a.cells.get(cid, ""), b.cells.get(cid, "")
            rows = "".join(f"<tr>{_row(src_a.splitlines(), x, la)}{_row(src_b.splitlines(), y, lb)}</tr>"
                           for x, y in align(src_a, src_b, keep))
            out.append(f"<h3>{html.escape(cid)}{'' if la or lb else ' (nothing shared)'}</h3>"
                       f"<table class='code'><tr><th>{html.escape(p['a'])}</th>"
                       f"<th>{html.escape(p['b'])}</th></tr>{rows}</table>")
    out.append("</body></html>\n")
    return "".join(out)
