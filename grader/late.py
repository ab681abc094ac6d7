"""Late submissions: a due date per lab and a penalty policy, applied by nbgrader.

``python -m grader late LAB --due 2026-12-08T23:59 --per-day 0.1 --max 0.5`` sets the lab's due
date in the gradebook and the course's policy (``late-policy.json`` in the course folder). When
a notebook is graded, nbgrader compares its submission time (``timestamp.txt``, which
``nbgrader collect`` writes) with the due date and asks :class:`PerDayPenalty` for the penalty:
``per_day`` of the notebook's score for each day or part of a day late, at most ``max`` of it.
A Canvas export does not say when a notebook was handed in, only ``LATE_``: such a notebook
counts as ``unknown_days`` late (1 by default).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

POLICY_FILE = "late-policy.json"


@dataclass
class LatePolicy:
    """The course's late policy: fractions of a notebook's score, and each lab's due date."""
    per_day: float = 0.0
    max: float = 1.0
    unknown_days: float = 1.0
    due: dict = field(default_factory=dict)      # lab -> ISO 8601 date and time, UTC

    def check(self) -> "LatePolicy":
        for name in ("per_day", "max"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')} is a fraction of the score between "
                                 f"0 and 1 (0.1 for 10%); got {v}")
        if self.unknown_days < 0:
            raise ValueError("--unknown-days cannot be negative")
        return self

    def due_date(self, lab: str) -> Optional[dt.datetime]:
        return parse_when(self.due[lab]) if lab in self.due else None

    def assumed_timestamp(self, lab: str) -> Optional[str]:
        """The submission time a late notebook of unknown time is given (nbgrader's format)."""
        due = self.due_date(lab)
        if due is None:
            return None
        when = due + dt.timedelta(days=self.unknown_days)
        return when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def parse_when(text: str) -> dt.datetime:
    """A date and time (ISO 8601; UTC unless it says otherwise) as an aware datetime. Raises
    ``ValueError`` saying what to write."""
    try:
        when = dt.datetime.fromisoformat(str(text).strip().replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time: write it as 2026-12-08T23:59 "
                         f"(UTC) or 2026-12-08T23:59+01:00") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def load_policy(course_dir: Path) -> LatePolicy:
    path = Path(course_dir) / POLICY_FILE
    if not path.exists():
        return LatePolicy()
    return LatePolicy(**json.loads(path.read_text(encoding="utf-8"))).check()


def save_policy(course_dir: Path, policy: LatePolicy) -> Path:
    path = Path(course_dir) / POLICY_FILE
    path.write_text(json.dumps(asdict(policy.check()), indent=1, sort_keys=True) + "\n",
                    encoding="utf-8")
    return path


class PerDayPenalty(LateSubmissionPlugin):
    """nbgrader's late-submission plugin for this course's policy (see the module)."""

    per_day = Float(0.0, help="fraction of the score lost per day, or part of one, late").tag(config=True)
    max_fraction = Float(1.0, help="the most of the score a late notebook loses").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float,
                                total_seconds_late: float) -> Optional[float]:
        if total_seconds_late <= 0 or self.per_day <= 0:
            return None
        days = math.ceil(total_seconds_late / 86400.0)
        penalty = score * min(self.max_fraction, self.per_day * days)
        self.log.info("late by %d day(s): %s loses %.2f of %.2f", days, student_id, penalty, score)
        return penalty
