"""nbgrader configuration for running nbgrader's own commands on this course.

``python -m grader`` configures nbgrader itself; this file is for the rest: the formgrader,
``nbgrader release_assignment`` / ``collect`` with the exchange, ``nbgrader db ...``. Run
them from this folder (``cd grader``), where nbgrader finds this file::

    cd grader
    nbgrader generate_assignment lab1_consistent_hashing --force    # writes ../labs/
    nbgrader release_assignment lab1_consistent_hashing             # into the exchange
    nbgrader collect lab1_consistent_hashing
    nbgrader formgrader                                             # or JupyterLab's Formgrader

The course directory is ``grader/course`` unless ``$DYNAMO_LAB_COURSE_DIR`` says otherwise.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from grader.config import configure, default_course_dir  # noqa: E402

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)
configure(c, os.environ.get("DYNAMO_LAB_COURSE_DIR") or default_course_dir())
# With JupyterHub, point the exchange at a folder every user can reach, for example:
# c.Exchange.root = "/srv/nbgrader/exchange"
