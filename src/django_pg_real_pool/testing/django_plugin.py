"""Cooperation with pytest-django: its test databases are created on the plugin's server.

Loaded by the plugin only when pytest-django is active, after it, so that this
``django_db_modify_db_settings`` replaces pytest-django's (whose suffixes it keeps).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_pg_real_pool import engines

from .servers.resolve import RunningServer

#: The ENGINEs whose aliases are pointed at the plugin's server: ours and the stock ones.
POSTGRESQL_ENGINES = frozenset(
    {
        *engines.ENGINES,
        "django.db.backends.postgresql",
        "django.db.backends.postgresql_psycopg2",
        "dj_db_conn_pool.backends.postgresql",
        "django.contrib.gis.db.backends.postgis",
    }
)


def _close_this_threads_connections() -> None:
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    """pytest-django's ``django_db_setup``, with this thread's connections closed after the
    test databases are created and before they are dropped.

    Django's ``create_test_db()`` ends with ``connection.ensure_connection()``, which checks a
    connection out of the alias's pool and runs no query: without the first close, the main
    thread kept one connection of every pooled alias until some later ``close()``, and the
    first database test of a session (``-k``, a fresh xdist worker) found ``in_use=1``.
    Without the second, a connection a test left open (an unpooled readiness alias, say)
    makes dropping the test database fail: "database ... is being accessed by other users".
    """
    _close_this_threads_connections()
    yield
    _close_this_threads_connections()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, pg_server: RunningServer
) -> None:
    """Point every PostgreSQL alias of ``settings.DATABASES`` at the test run's server.

    pytest-django then creates ``test_<NAME>`` (``_gw0``... under xdist) there; the pools of
    this package's engines follow the renamed database.
    """
    from django.conf import settings

    kwargs = pg_server.connect_kwargs("postgres")
    for entry in settings.DATABASES.values():
        if entry.get("ENGINE") in POSTGRESQL_ENGINES:
            entry["HOST"] = kwargs.get("host", "")
            entry["PORT"] = str(kwargs.get("port", ""))
            entry["USER"] = kwargs.get("user", "")
            entry["PASSWORD"] = kwargs.get("password") or ""
