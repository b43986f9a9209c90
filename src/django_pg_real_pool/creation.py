"""Test-database creation that closes the pool before a test database is cloned or dropped,
and gives back the connection ``create_test_db()`` leaves checked out.

Django 5.1+ closes its native pool itself; on 4.2 and 5.0 a pooled connection to the test
database would make ``DROP DATABASE`` fail. ``create_test_db()`` ends with
``ensure_connection()``, which checks a connection out without a query, so nothing would give
it back before the first ``close()``: the first test would start with one connection in use.
"""

from __future__ import annotations

import inspect
import warnings
from types import FrameType
from typing import Any

from django.db.backends.postgresql.creation import DatabaseCreation as PostgresCreation

from . import _internals


class DatabaseCreation(PostgresCreation):
    def create_test_db(self, *args: Any, **kwargs: Any) -> str:
        caller = inspect.currentframe()
        caller = caller.f_back if caller is not None else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            name: str = super().create_test_db(*args, **kwargs)
        _reissue(caught, caller)
        connection = self.connection
        if getattr(connection, "_asap", False) and not connection.in_atomic_block:
            connection.close()
        return name

    def _clone_test_db(self, suffix: Any, verbosity: Any, keepdb: bool = False) -> None:
        self.connection.close_pool()
        _internals.clone_test_db(self, after=DatabaseCreation, args=(suffix, verbosity, keepdb))

    def _destroy_test_db(self, test_database_name: str, verbosity: Any) -> None:
        self.connection.close_pool()
        _internals.destroy_test_db(
            self, after=DatabaseCreation, args=(test_database_name, verbosity)
        )


def _reissue(caught: list[warnings.WarningMessage], caller: FrameType | None) -> None:
    """Issue again the warnings caught during ``create_test_db()``, each where it was issued,
    except those aimed at this module (Django's ``stacklevel=2``, the ``serialize``
    deprecation), which are aimed at our caller, as they would be without this override."""
    for found in caught:
        filename, lineno, module_globals = found.filename, found.lineno, None
        if caller is not None and found.filename == __file__:
            filename, lineno = caller.f_code.co_filename, caller.f_lineno
            module_globals = caller.f_globals
        warnings.warn_explicit(
            found.message,
            found.category,
            filename,
            lineno,
            module_globals=module_globals,
            source=found.source,
        )
