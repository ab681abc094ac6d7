"""nbgrader preprocessors of this course."""

from __future__ import annotations

from . import _bootstrap  # noqa: F401

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests


class ClearHiddenTestsOfTestCells(ClearHiddenTests):
    """nbgrader's ``ClearHiddenTests``, applied to test cells only.

    The hidden regions are the instructor's, and only test cells hold them (nbgrader restores
    test cells from the gradebook before grading). A student's own cell that happens to contain
    the marker text (a note quoting ``### BEGIN HIDDEN TESTS``) is the student's text: it is
    shown as written, instead of making nbgrader raise and the feedback of the whole class fail.
    The test cells' outputs never quote their source: the trusted grader writes them
    (:mod:`grader.trusted`), and nothing runs in a kernel.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if not utils.is_grade(cell):
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)
