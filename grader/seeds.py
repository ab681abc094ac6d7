"""The course seed: where the hidden checks draw their examples from at grading time.

Every ``grading.check_*`` call of a test cell names a seed (``seed=1203``): the examples a
student can replay. Grading with a *course seed* (``python -m grader autograde --course-seed N``,
kept in ``course-seed.txt`` of the course folder, so regrades and feedback agree) replaces each
call's seed by one derived from the course seed, the check and its own seed. A student cannot
tune a part to the examples the feedback showed last term, and every failure report still
prints the seed it ran with and the call that replays it. Without a course seed the cells'
seeds are used: grading stays reproducible from the notebooks alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

SEED_FILE = "course-seed.txt"


def check_seed(course_seed: Optional[int], check: str, seed: Optional[int]) -> Optional[int]:
    """The seed ``check`` runs with: its own ``seed``, or one derived from the course seed."""
    if course_seed is None:
        return seed
    digest = hashlib.sha256(f"{course_seed}/{check}/{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1_000_000


def load_course_seed(course_dir: Path) -> Optional[int]:
    """The course seed kept in ``course_dir`` (None when there is none)."""
    path = Path(course_dir) / SEED_FILE
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8").strip()
    if not text.isdigit():
        raise ValueError(f"{path} must hold one whole number (the course seed), not {text[:40]!r}; "
                         f"set it again with python -m grader autograde --course-seed N")
    return int(text)


def save_course_seed(course_dir: Path, seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"the course seed is a whole number >= 0, not {seed!r}")
    (Path(course_dir) / SEED_FILE).write_text(f"{seed}\n", encoding="utf-8")
