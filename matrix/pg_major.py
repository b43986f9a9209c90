"""pytest plugin (``-p matrix.pg_major``): writes the PostgreSQL major the suite's server ran,
so that a cell labelled pg17 cannot pass on another server unnoticed.

Reads ``tests/suite.py``'s ``SERVER`` (the suite's one server) at the end of the session, in the
process that started it, and writes its major to ``$MATRIX_PG_MAJOR_FILE``. Nothing is written
when that server is not there; the cell then reports the major as unknown.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("MATRIX_PG_MAJOR_FILE")
    suite = sys.modules.get("suite")
    server = getattr(suite, "SERVER", None)
    if not target or server is None or hasattr(session.config, "workerinput"):
        return
    Path(target).write_text(f"{server.major}\n")
