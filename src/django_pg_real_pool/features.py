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

from . import _internals, engines

_HEALTH = "backends.base.test_base.ConnectionHealthChecksTests."
_POSTGRESQL = "backends.postgresql.tests.Tests."

#: Django's own reason, under which it skips these for its native pool (5.1+).
IMPLICIT_HEALTH_CHECKS = "Pool does implicit health checks"
IMPLICIT_HEALTH_CHECK_TESTS = frozenset(
    {_HEALTH + "test_health_checks_enabled", _HEALTH + "test_set_autocommit_health_checks_enabled"}
)

OWN_HEALTH_CHECK = (
    "Reads ConnectionPool._check: ENGINE 'django_pg_real_pool' runs CONN_HEALTH_CHECKS and "
    "OPTIONS['pool']['check'] itself (a dead connection is replaced without psycopg_pool's "
    "1 s doubling backoff), so the pool's own _check is None"
)
#: Tests of psycopg_pool's check attribute, with the first Django version that has each.
OWN_HEALTH_CHECK_TESTS: dict[str, tuple[int, int]] = {
    _POSTGRESQL + "test_pooling_health_checks": (5, 1),
    _POSTGRESQL + "test_pool_check_can_be_overridden": (6, 1),
}

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


def _existing(tests: dict[str, tuple[int, int]]) -> set[str]:
    """The tests that exist in the running Django version."""
    return {test for test, since in tests.items() if since <= django.VERSION}


def _skipped_by_design(features: PostgresFeatures) -> dict[str, set[str]]:
    connection = features.connection
    engine = connection.settings_dict.get("ENGINE")
    skips: dict[str, set[str]] = {}
    if getattr(connection, "_asap", False):
        # The pool checks connections at checkout (check_connection, PRE_PING), so
        # is_usable() is never called between queries.
        skips[IMPLICIT_HEALTH_CHECKS] = set(IMPLICIT_HEALTH_CHECK_TESTS)
        if engine == engines.PSYCOPG_POOL and (own := _existing(OWN_HEALTH_CHECK_TESTS)):
            skips[OWN_HEALTH_CHECK] = own
    if engine == engines.DJ_DB_CONN_POOL and (native := _existing(NATIVE_POOL_API_TESTS)):
        skips[NATIVE_POOL_API] = native
    return skips


class DatabaseFeatures(PostgresFeatures):
    """Both engines' features (one class: the second engine differs by its engine name)."""


_internals.add_django_test_skips(DatabaseFeatures, _skipped_by_design)
