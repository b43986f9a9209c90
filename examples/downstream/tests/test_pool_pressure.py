"""The project's pool settings under pressure, for both engines, with the plugin's fixtures."""

import pytest

ENGINES = ["real_pool", "real_pool_dj"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.pool_leak_check
def test_saturated_pool_queues_checkouts(
    engine,
    pool_settings,
    pool_alias,
    hold_connections,
    queue_checkouts,
    wait_for_waiting,
    pool_stats,
):
    alias = pool_alias(pool_settings(engine, max_size=2))
    holders = hold_connections(alias, 2)
    queued = queue_checkouts(alias, 3)
    wait_for_waiting(alias, 3)
    stats = pool_stats(alias)
    assert (stats.in_use, stats.waiting) == (2, 3)
    holders.release()
    assert queued.join() == [None, None, None]
    assert pool_stats(alias).in_use == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_checkout_times_out(
    engine, pool_settings, pool_alias, hold_connections, assert_checkout_times_out, pool_stats
):
    alias = pool_alias(pool_settings(engine, max_size=1, timeout=0.5))
    hold_connections(alias, 1)
    assert_checkout_times_out(alias, after=0.5)
    assert pool_stats(alias).timeouts == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_max_waiting_rejects_at_once(
    engine,
    pool_settings,
    pool_alias,
    hold_connections,
    queue_checkouts,
    wait_for_waiting,
    assert_checkout_rejected,
    pool_stats,
):
    alias = pool_alias(pool_settings(engine, max_size=1, max_waiting=2, timeout=5))
    holders = hold_connections(alias, 1)
    queued = queue_checkouts(alias, 2)
    wait_for_waiting(alias, 2)
    assert_checkout_rejected(alias)
    assert pool_stats(alias).rejected == 1
    holders.release()
    assert queued.join() == [None, None]


@pytest.mark.parametrize("engine", ENGINES)
def test_connections_are_recycled(engine, pool_settings, pool_alias):
    from django_pg_real_pool.testing.backends import backend_pid
    from django_pg_real_pool.testing.saturation import wait_until

    alias = pool_alias(pool_settings(engine, max_size=1, max_lifetime=0.5))
    first = backend_pid(alias)
    # A connection is replaced once its lifetime is over, when it is returned (psycopg_pool)
    # or checked out (SQLAlchemy): keep querying until the server process changes.
    wait_until(lambda: backend_pid(alias) != first, timeout=15, what="the connection is recycled")


@pytest.mark.parametrize("engine", ENGINES)
def test_readiness_alias_answers_while_the_pool_is_saturated(
    engine, pool_settings, pool_alias, hold_connections, assert_checkout_times_out
):
    from django.db import connections

    pooled = pool_alias(pool_settings(engine, max_size=1, timeout=0.3))
    readiness = pool_alias(pool_settings("readiness"))
    hold_connections(pooled, 1)
    assert_checkout_times_out(pooled, after=0.3)
    with connections[readiness].cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
