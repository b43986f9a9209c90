"""The settings module runtests.py is given: Django's ``test_sqlite.py`` with our databases, and
the recording test runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .engines import SuiteEngine

MODULE = "django_suite_settings"
RESULTS_VARIABLE = "DJANGO_SUITE_RESULTS"

_TEMPLATE = """\
# Written by python -m django_suite; Django's tests/test_sqlite.py with PostgreSQL databases.
DATABASES = {databases!r}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
TEST_RUNNER = "django_suite.recorder.RecordingRunner"
"""


def databases(engine: SuiteEngine, server: Any) -> dict[str, dict[str, Any]]:
    """``default`` and ``other``, on two databases of ``server``, both on ``engine``."""
    connection = {
        "USER": server.user,
        "PASSWORD": server.password or "",
        "HOST": server.host,
        "PORT": str(server.port),
    }
    return {
        "default": engine.database(NAME="django_suite", **connection),
        "other": engine.database(NAME="django_suite_other", **connection),
    }


def write_settings(directory: Path, engine: SuiteEngine, server: Any) -> Path:
    """Write ``<directory>/django_suite_settings.py``; put ``directory`` on PYTHONPATH."""
    path = directory / f"{MODULE}.py"
    path.write_text(_TEMPLATE.format(databases=databases(engine, server)))
    return path
