"""Process set-up every grader entry point does first (importing this module is the effect).

* nbgrader runs its ``alembic`` script by name when it creates a gradebook, so the folder of
  this Python's scripts must be on ``PATH`` even when the virtualenv is not activated
  (``.venv/bin/python -m grader ...``).
* ``jsonschema`` (imported by ``nbformat``, so by nbgrader) imports ``rfc3987_syntax`` when it is
  installed, to check the ``iri`` string format; that module builds a parser at import time,
  about 2.5 s on a small machine, in every grading process. Notebook schemas never use that
  format, so grader processes skip it (``import rfc3987_syntax`` then raises ImportError, which
  jsonschema expects and handles).
"""

import os
import sys

_scripts = os.path.dirname(sys.executable)
if _scripts not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _scripts + os.pathsep + os.environ.get("PATH", "")

sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
