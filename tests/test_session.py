"""What stock Django configures on a connection keeps working through the pools."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connections
from django.test.utils import override_settings
from psycopg import IsolationLevel

from app.models import Item
from django_pg_real_pool import pools
from django_pg_real_pool.testing.saturation import wait_until
from helpers import released
from suite import superuser_connect


def query(alias: str, sql: str) -> Any:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def terminate(pid: int) -> None:
    """End a server process, as an administrator would, and wait until it has exited:
    pg_terminate_backend() only signals it."""
    with superuser_connect() as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", [pid])
        wait_until(
            lambda: (
                not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
            ),
            what=f"backend {pid} is gone",
        )


def with_options(make_alias, alias: str, **extra: Any) -> str:
    return make_alias(alias, OPTIONS={**connections[alias].settings_dict["OPTIONS"], **extra})


def test_time_zone_is_set_on_each_new_connection(alias: str, make_alias) -> None:
    name = make_alias(alias, TIME_ZONE="Europe/Paris")
    assert query(name, "SHOW TIME ZONE") == "Europe/Paris"
    assert query(name, "SHOW TIME ZONE") == "Europe/Paris"


def test_override_settings_time_zone_gets_a_new_pool(alias: str) -> None:
    assert query(alias, "SHOW TIME ZONE") == "UTC"
    with override_settings(TIME_ZONE="Asia/Tokyo", USE_TZ=False):
        assert query(alias, "SHOW TIME ZONE") == "Asia/Tokyo"
    assert query(alias, "SHOW TIME ZONE") == "UTC"


def test_assume_role(alias: str, make_alias) -> None:
    with superuser_connect() as conn:
        conn.execute("DROP ROLE IF EXISTS pool_reader")
        conn.execute("CREATE ROLE pool_reader")
    try:
        name = with_options(make_alias, alias, assume_role="pool_reader")
        assert query(name, "SELECT current_user") == "pool_reader"
        assert query(name, "SELECT session_user") == "postgres"
        assert query(name, "SELECT current_user") == "pool_reader"
    finally:
        from django_pg_real_pool import pools

        pools.retire(name)
        with superuser_connect() as conn:
            conn.execute("DROP ROLE pool_reader")


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        (IsolationLevel.SERIALIZABLE, "serializable"),
        (IsolationLevel.REPEATABLE_READ, "repeatable read"),
    ],
)
def test_isolation_level(alias: str, make_alias, level: IsolationLevel, shown: str) -> None:
    from django.db import transaction

    name = with_options(make_alias, alias, isolation_level=level)
    with transaction.atomic(using=name):
        assert query(name, "SHOW transaction_isolation") == shown
        assert connections[name].isolation_level == level
    assert released(name)


def test_default_isolation_level_is_read_committed(alias: str) -> None:
    from django.db import transaction

    with transaction.atomic(using=alias):
        assert query(alias, "SHOW transaction_isolation") == "read committed"
    assert connections[alias].isolation_level == IsolationLevel.READ_COMMITTED


def test_server_side_binding(alias: str, make_alias) -> None:
    from django.db.backends.postgresql.base import ServerBindingCursor

    name = with_options(make_alias, alias, server_side_binding=True)
    Item.objects.using(name).create(name="bound", value=7)
    assert Item.objects.using(name).get(value=7).name == "bound"
    with connections[name].cursor() as cursor:
        assert isinstance(cursor.cursor, ServerBindingCursor)


def test_health_checks_replace_a_terminated_connection(make_alias) -> None:
    name = make_alias("default", CONN_HEALTH_CHECKS=True)
    pool = connections[name].pool
    # The handle checks, not the pool: psycopg_pool's check loop backs off 1 s per dead one.
    assert pool._check is None
    first = query(name, "SELECT pg_backend_pid()")
    assert pools.current(name).handle._check is type(pool).check_connection
    # Until the backend has exited (and told its client), a connection given back moments ago
    # is reused unchecked (reuse_window), as one terminated during the next query would fail it.
    terminate(first)
    # The connection is checked before it is handed out, and the dead one is replaced.
    second = query(name, "SELECT pg_backend_pid()")
    assert second != first


def test_user_check_wins_over_conn_health_checks(make_alias) -> None:
    calls: list[object] = []

    def check(conn: object) -> None:
        calls.append(conn)

    name = make_alias(
        "default",
        CONN_HEALTH_CHECKS=True,
        OPTIONS={"pool": {"min_size": 1, "max_size": 2, "check": check}},
    )
    query(name, "SELECT 1")
    assert pools.current(name).handle._check is check
    assert len(calls) == 1


def test_pool_name_defaults_to_the_alias(make_alias) -> None:
    name = make_alias("default")
    assert connections[name].pool.name == name


def test_pool_false_is_a_plain_connection(alias: str, make_alias) -> None:
    from django_pg_real_pool import pool_stats

    name = with_options(make_alias, alias, pool=False)
    assert query(name, "SELECT 1") == 1
    assert connections[name].connection is not None  # held, as stock Django does
    assert connections[name].pool is None
    assert pool_stats(name) is None
    connections[name].close()


@pytest.mark.timing
def test_a_failing_connection_setup_is_reported_at_once(alias: str, make_alias) -> None:
    # psycopg_pool opens connections in its workers and retries until the checkout times
    # out; the engine reports the server's error instead, as Django's backend does.
    from psycopg import errors

    name = with_options(make_alias, alias, assume_role="no_such_role_here")
    if alias == "default":
        settings = connections.settings[name]
        settings["OPTIONS"]["pool"] = {**settings["OPTIONS"]["pool"], "timeout": 10}
    started = time.monotonic()
    with pytest.raises(Exception, match='role "no_such_role_here" does not exist') as info:
        query(name, "SELECT 1")
    took = time.monotonic() - started
    assert isinstance(info.value, errors.InvalidParameterValue) or isinstance(
        info.value.__cause__, errors.InvalidParameterValue
    )
    assert took < 5, f"the error came after {took:.1f} s"


def test_pre_ping_replaces_a_terminated_connection(make_alias) -> None:
    name = make_alias("dj")  # PRE_PING is on by default, as in django-db-connection-pool
    first = query(name, "SELECT pg_backend_pid()")
    # Until the backend has exited, its connection may still answer a ping or a query.
    terminate(first)
    second = query(name, "SELECT pg_backend_pid()")
    assert second != first


@pytest.mark.parametrize(
    ("template", "settings"),
    [
        ("default", {"OPTIONS": {"pool": {"min_size": 1, "max_size": 1, "timeout": 0.2}}}),
        ("dj", {"POOL_OPTIONS": {"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 0.2}}),
    ],
    ids=["psycopg_pool", "dj_db_conn_pool"],
)
def test_checkout_timeout_is_an_operational_error_on_both_engines(
    make_alias, template: str, settings: dict[str, Any]
) -> None:
    from django.db import OperationalError
    from psycopg_pool import PoolTimeout

    from django_pg_real_pool.testing.saturation import HeldConnections

    name = make_alias(template, **settings)
    with HeldConnections(name, 1).start():
        with pytest.raises(OperationalError) as info:
            query(name, "SELECT 1")
        assert isinstance(info.value.__cause__, PoolTimeout)
        assert str(info.value).startswith(
            f"pool {name!r}: couldn't get a connection after 0.20 sec"
        )
    assert query(name, "SELECT 1") == 1
