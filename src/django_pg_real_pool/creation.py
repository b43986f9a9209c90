"""Test-database creation that closes the pool before a test database is cloned or dropped.

Django 5.1+ does this itself for its native pool; on 4.2 and 5.0 a pooled connection to the
test database would make ``DROP DATABASE`` fail.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql.creation import DatabaseCreation as PostgresCreation

from . import _internals


class DatabaseCreation(PostgresCreation):
    def _clone_test_db(self, suffix: Any, verbosity: Any, keepdb: bool = False) -> None:
        self.connection.close_pool()
        _internals.clone_test_db(self, after=DatabaseCreation, args=(suffix, verbosity, keepdb))

    def _destroy_test_db(self, test_database_name: str, verbosity: Any) -> None:
        self.connection.close_pool()
        _internals.destroy_test_db(
            self, after=DatabaseCreation, args=(test_database_name, verbosity)
        )
