"""Test-database creation that closes the pool before a test database is cloned or dropped,
and gives back the connection ``create_test_db()`` leaves checked out.

Django 5.1+ closes its native pool itself; on 4.2 and 5.0 a pooled connection to the test
database would make ``DROP DATABASE`` fail. ``create_test_db()`` ends with
``ensure_connection()``, which checks a connection out without a query, so nothing would give
it back before the first ``close()``: the first test would start with one connection in use.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql.creation import DatabaseCreation as PostgresCreation

from . import _internals


class DatabaseCreation(PostgresCreation):
    def create_test_db(self, *args: Any, **kwargs: Any) -> str:
        name: str = super().create_test_db(*args, **kwargs)
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
