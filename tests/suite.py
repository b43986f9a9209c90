"""The test suite's PostgreSQL server, started by conftest.py, and helpers that reach it.

A module of its own (not conftest.py) so that tests can import these helpers without
clashing with tests/testing/conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg

from django_pg_real_pool.testing.servers import RunningServer

TESTS = Path(__file__).parent
DATABASE = "realpool"
#: Set by conftest.py's pytest_configure.
SERVER: RunningServer | None = None


def server() -> RunningServer:
    assert SERVER is not None, "the PostgreSQL server was not started"
    return SERVER


def superuser_connect(dbname: str = DATABASE) -> psycopg.Connection[Any]:
    return psycopg.connect(**server().connect_kwargs(dbname), autocommit=True)


def scenario_env() -> dict[str, str]:
    """Environment for scenario scripts run in a subprocess."""
    s = server()
    return {
        **os.environ,
        "PGRP_HOST": s.host,
        "PGRP_PORT": str(s.port),
        "PGRP_USER": s.user,
        "PGRP_DATABASE": DATABASE,
        "PYTHONPATH": str(TESTS),
    }
