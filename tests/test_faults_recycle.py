"""Connections replaced by age and by idleness, and connections above the pool's size closed
after use, seen from the server (its sessions), for both engines with the stock pools as controls.

psycopg_pool enforces ``max_lifetime`` when a connection is returned, shortened by up to 5 % at
random; SQLAlchemy enforces ``RECYCLE`` when one is checked out. psycopg_pool closes one idle
connection above ``min_size`` every ``max_idle`` seconds; SQLAlchemy closes an overflow
connection (``MAX_OVERFLOW``) as soon as it is returned to a full pool.
"""

from __future__ import annotations

import time

import pytest
from django.db import connections

from django_pg_real_pool.testing.backends import backend_pid
from django_pg_real_pool.testing.janitor import Database
from django_pg_real_pool.testing.saturation import HeldConnections, wait_until
from helpers import DJANGO_NATIVE
from server_sessions import sessions

LIFETIME = 0.5
#: psycopg_pool shortens max_lifetime by up to 5 %; the clock of a loaded machine adds a little.
EARLIEST = LIFETIME * 0.95 - 0.05
#: A loaded 2-core machine may delay a replacement by this much.
SLACK = 2.0


def _request(alias: str) -> int:
    """One request's query; the connection goes back at its end, as after a Django request
    (this package's engines give it back after the query already)."""
    try:
        return backend_pid(alias)
    finally:
        connections[alias].close()


@pytest.mark.timing
@pytest.mark.parametrize("engine", ["real_pool", "real_pool_dj", DJANGO_NATIVE])
def test_max_lifetime_replaces_the_connection(
    engine, pool_settings, pool_alias, pg_test_database
) -> None:
    """Queried in a loop, the pool's one connection is replaced after ``max_lifetime`` (RECYCLE),
    not before, and the old server session ends."""
    settings = pool_settings(
        engine, database=pg_test_database, max_size=1, min_size=1, max_lifetime=LIFETIME
    )
    alias = pool_alias(settings)
    first, started = _request(alias), time.monotonic()
    while (pid := _request(alias)) == first:
        assert time.monotonic() - started <= LIFETIME + SLACK, "the connection was never replaced"
        time.sleep(0.01)  # the duration under test: requests spread over the lifetime
    elapsed = time.monotonic() - started
    assert elapsed >= EARLIEST, f"replaced after {elapsed:.3f} s, max_lifetime is {LIFETIME} s"
    wait_until(lambda: first not in sessions(pg_test_database), what="the old session ends")
    assert sessions(pg_test_database) == {pid}
    print(f"{engine}: replaced after {elapsed:.3f} s (max_lifetime {LIFETIME} s)")


@pytest.mark.timing
@pytest.mark.parametrize("engine", ["real_pool", DJANGO_NATIVE])
def test_max_idle_closes_connections_above_min_size(
    engine, pool_settings, pool_alias, pg_test_database
) -> None:
    settings = pool_settings(engine, database=pg_test_database, max_size=3, min_size=1)
    settings["OPTIONS"]["pool"]["max_idle"] = LIFETIME
    alias = pool_alias(settings)
    # One connection closed per max_idle period: two of them within about 2 * max_idle.
    closed = _seconds_until_one_left(
        alias,
        pg_test_database,
        timeout=2 * LIFETIME + SLACK + 1,
        what="the idle connections above min_size are closed",
    )
    assert closed >= LIFETIME * 0.9
    print(f"{engine}: 2 idle connections closed {closed:.3f} s after use (max_idle {LIFETIME} s)")
    backend_pid(alias)  # the one left serves
    assert len(sessions(pg_test_database)) == 1


@pytest.mark.parametrize("engine", ["real_pool_dj", "dj_db_conn_pool"])
def test_overflow_connections_are_closed_after_use(
    engine, pool_settings, pool_alias, pg_test_database
) -> None:
    settings = pool_settings(engine, database=pg_test_database, max_size=1)
    settings["POOL_OPTIONS"]["MAX_OVERFLOW"] = 2
    alias = pool_alias(settings)
    closed = _seconds_until_one_left(
        alias, pg_test_database, timeout=5, what="the two overflow connections are closed"
    )
    print(f"{engine}: overflow closed {closed:.3f} s after use")
    backend_pid(alias)
    assert len(sessions(pg_test_database)) == 1


def _seconds_until_one_left(alias: str, database: Database, *, timeout: float, what: str) -> float:
    """Hold 3 connections at once, give them back, and time until one server session is left."""
    with HeldConnections(alias, 3).start():
        assert len(sessions(database)) == 3
    released = time.monotonic()
    wait_until(lambda: len(sessions(database)) == 1, timeout=timeout, what=what)
    return time.monotonic() - released
