"""Both engines' ``DatabaseFeatures``: Django's PostgreSQL features, with the tests of Django's
own suite that cannot pass on a pool that gives connections back, skipped with the reason.

Django reads ``django_test_skips`` only when it runs its own test suite
(``tests/runtests.py``); it must name only tests that exist in the running Django version
(Django raises AttributeError otherwise), and be a ``cached_property`` (Django's
``TestMarkTests`` assigns it).
"""

from __future__ import annotations

import django
from django.db.backends.postgresql.features import DatabaseFeatures as PostgresFeatures
from django.utils.functional import cached_property

from . import engines

_HEALTH = "backends.base.test_base.ConnectionHealthChecksTests."
_POSTGRESQL = "backends.postgresql.tests.Tests."

#: Django's own reason, under which it skips these for its native pool (5.1+).
IMPLICIT_HEALTH_CHECKS = "Pool does implicit health checks"
IMPLICIT_HEALTH_CHECK_TESTS = frozenset(
    {_HEALTH + "test_health_checks_enabled", _HEALTH + "test_set_autocommit_health_checks_enabled"}
)

NATIVE_POOL_API = (
    "Tests Django's psycopg_pool API (OPTIONS['pool']); ENGINE "
    "'django_pg_real_pool.dj_db_conn_pool' pools through SQLAlchemy (POOL_OPTIONS) and "
    "accepts OPTIONS['pool'] only as False"
)
#: Tests of Django's native pool, with the first Django version that has each.
NATIVE_POOL_API_TESTS: dict[str, tuple[int, int]] = {
    _POSTGRESQL + "test_connect_pool": (5, 1),
    _POSTGRESQL + "test_connect_pool_set_to_true": (5, 1),
    _POSTGRESQL + "test_connect_pool_with_timezone": (5, 1),
    _POSTGRESQL + "test_pooling_health_checks": (5, 1),
    _POSTGRESQL + "test_pooling_not_support_persistent_connections": (5, 1),
    _POSTGRESQL + "test_pool_check_can_be_overridden": (6, 1),
    _POSTGRESQL + "test_pool_options_not_mutated": (6, 1),
}


class DatabaseFeatures(PostgresFeatures):
    """Both engines' features (one class: the second engine differs by its engine name)."""

    @cached_property
    def django_test_skips(self) -> dict[str, set[str]]:  # type: ignore[override]
        skips: dict[str, set[str]] = {
            reason: set(tests) for reason, tests in super().django_test_skips.items()
        }
        if getattr(self.connection, "_asap", False):
            # The pool checks connections at checkout (check_connection, PRE_PING), so
            # is_usable() is never called between queries.
            skips.setdefault(IMPLICIT_HEALTH_CHECKS, set()).update(IMPLICIT_HEALTH_CHECK_TESTS)
        if self.connection.settings_dict.get("ENGINE") == engines.DJ_DB_CONN_POOL:
            native = {
                test for test, since in NATIVE_POOL_API_TESTS.items() if since <= django.VERSION
            }
            if native:
                skips[NATIVE_POOL_API] = native
        return skips
