"""PRE_PING_SKIP_WINDOW on the django-db-connection-pool engine: a connection given back
moments ago is not pinged again, unless the server closed it meanwhile.

What the server ran last on a backend (``pg_stat_activity.query``, updated as each statement
starts) tells whether a checkout pinged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from django_pg_real_pool.testing.backends import backend_pid
from django_pg_real_pool.testing.janitor import Database, superuser
from django_pg_real_pool.testing.saturation import wait_until
from server_sessions import sessions

#: What ``backend_pid()`` runs.
MARKER = "SELECT pg_backend_pid()"


def _last_statement(database: Database, pid: int) -> str:
    with superuser(database.server) as conn:
        row = conn.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None, f"backend {pid} is gone"
    return str(row[0])


@pytest.fixture(params=["reuse", "no_reuse"])
def pool_settings(request: pytest.FixtureRequest, pool_settings: Any) -> Any:
    """The plugin's, with REUSE_WINDOW left at its default (a connection given back moments
    ago comes from the gate's shelf) or 0 (from the QueuePool, through PingDialect)."""
    if request.param == "reuse":
        return pool_settings

    def make(*args: Any, **kwargs: Any) -> dict[str, Any]:
        settings: dict[str, Any] = pool_settings(*args, **kwargs)
        settings["POOL_OPTIONS"]["REUSE_WINDOW"] = 0
        return settings

    return make


def _settings(pool_settings: Any, database: Database, **pool_options: Any) -> dict[str, Any]:
    settings = pool_settings(
        "real_pool_dj", database=database, max_size=1, timeout=10, health_checks=True
    )
    settings["POOL_OPTIONS"].update(pool_options)
    if settings["POOL_OPTIONS"].get("REUSE_WINDOW") == 0:
        return settings
    # The reuse window follows a shorter skip window, and may not be longer.
    skip = settings["POOL_OPTIONS"].get("PRE_PING_SKIP_WINDOW", 0.5)
    settings["POOL_OPTIONS"]["REUSE_WINDOW"] = min(skip, 0.5)
    return settings


def test_a_connection_given_back_moments_ago_is_not_pinged(
    pool_settings, pool_alias, pg_test_database
) -> None:
    alias = pool_alias(_settings(pool_settings, pg_test_database))
    assert not _pinged(alias, pg_test_database), "pinged a connection used moments ago"


def test_a_zero_window_pings_at_every_checkout(pool_settings, pool_alias, pg_test_database) -> None:
    alias = pool_alias(_settings(pool_settings, pg_test_database, PRE_PING_SKIP_WINDOW=0))
    assert _pinged(alias, pg_test_database)


def test_a_connection_idle_longer_than_the_window_is_pinged(
    pool_settings, pool_alias, pg_test_database
) -> None:
    window = 0.05
    alias = pool_alias(_settings(pool_settings, pg_test_database, PRE_PING_SKIP_WINDOW=window))

    def let_the_window_pass() -> None:
        returned = time.monotonic()
        # The passing of the window is what is tested, not a synchronisation.
        wait_until(lambda: time.monotonic() - returned > window * 2, what="the window passed")

    assert _pinged(alias, pg_test_database, then=let_the_window_pass)


def test_a_connection_the_server_closed_within_the_window_is_replaced(
    pool_settings, pool_alias, terminate_backends, pg_test_database
) -> None:
    alias = pool_alias(_settings(pool_settings, pg_test_database, PRE_PING_SKIP_WINDOW=60))
    dead = backend_pid(alias)
    assert terminate_backends(pg_test_database) == 1
    wait_until(lambda: not sessions(pg_test_database), what="the terminated backend is gone")
    # Within the window (60 s), but the socket says the server hung up: pinged, replaced.
    assert backend_pid(alias) != dead


def _pinged(alias: str, database: Database, *, then: Callable[[], None] | None = None) -> bool:
    """Run a query (its connection goes back), call ``then``, check a connection out
    without a query, and tell whether the server saw a ping on it: the last statement the
    backend started is either the query or the ping (SQLAlchemy's, ``;`` on psycopg)."""
    pid = backend_pid(alias)
    if then is not None:
        then()
    connection = connections[alias]
    connection.ensure_connection()  # the checkout, with PRE_PING's decision
    try:
        assert connection.connection.dbapi_connection.info.backend_pid == pid
        return _last_statement(database, pid) != MARKER
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"PRE_PING_SKIP_WINDOW": -1},
            "['PRE_PING_SKIP_WINDOW'] must be a number of seconds >= 0 (0: ping at every "
            "checkout), not -1.",
        ),
        (
            {"PRE_PING_SKIP_WINDOW": "500ms"},
            "['PRE_PING_SKIP_WINDOW'] must be a number of seconds >= 0 (0: ping at every "
            "checkout), not '500ms'.",
        ),
        (
            {"PRE_PING": False, "PRE_PING_SKIP_WINDOW": 1},
            "['PRE_PING_SKIP_WINDOW'] only applies with PRE_PING on, and PRE_PING is False: "
            "remove PRE_PING_SKIP_WINDOW, or set PRE_PING to True.",
        ),
    ],
)
def test_bad_windows_are_refused(options: dict[str, Any], expected: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from django_pg_real_pool.queue_options import queue_pool_options

    with pytest.raises(ImproperlyConfigured) as refused:
        queue_pool_options("web", {"POOL_OPTIONS": options, "CONN_MAX_AGE": 0})
    assert str(refused.value) == "DATABASES['web']['POOL_OPTIONS']" + expected
