"""Hazards of the stock pools, reproduced, and the engine's answer to each."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import django
import pytest
from django.db import connections

from app.models import Item
from django_pg_real_pool import close_all_pools, engines, pool_stats
from helpers import held, released
from suite import scenario_env, superuser_connect

SCENARIOS = Path(__file__).parent / "scenarios"
NATIVE_POOL = pytest.mark.skipif(
    django.VERSION < (5, 1), reason="Django < 5.1 has no native pool to compare with"
)
STOCK_POOLS = [
    pytest.param("django.db.backends.postgresql", id="django-native", marks=NATIVE_POOL),
    pytest.param("dj_db_conn_pool.backends.postgresql", id="dj_db_conn_pool"),
]


def run_scenario(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", str(SCENARIOS / script), *args],
        env=scenario_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- the test database ------------------------------------------------------------------


def database_used_after_create_test_db(make_alias, engine: str) -> tuple[str, str]:
    """Open the pool on the real database (a query at import time), then let Django's test
    runner create the test database; return (NAME after the rename, database queried)."""
    real = f"hazard_{abs(hash(engine)) % 10**6}"
    with superuser_connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {real}")
        conn.execute(f"DROP DATABASE IF EXISTS test_{real}")
        conn.execute(f"CREATE DATABASE {real}")
    settings: dict[str, object] = {"ENGINE": engine, "NAME": real}
    if engine.startswith("dj_db_conn_pool") or engine.endswith("dj_db_conn_pool"):
        settings |= {"OPTIONS": {}, "POOL_OPTIONS": {"POOL_SIZE": 2, "MAX_OVERFLOW": 0}}
    else:
        settings |= {"OPTIONS": {"pool": {"min_size": 1, "max_size": 2}}}
    name = make_alias("default", **settings)
    connection = connections[name]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()
    # Django 6.0 deprecates the serialize argument (and no longer serializes by default).
    serialize = {} if django.VERSION >= (6, 0) else {"serialize": False}
    connection.creation.create_test_db(verbosity=0, autoclobber=True, **serialize)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database()")
            used = cursor.fetchone()[0]
        renamed = connection.settings_dict["NAME"]
        connection.close()
    finally:
        connection.creation.destroy_test_db(real, verbosity=0)
    with superuser_connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {real} WITH (FORCE)")
    return renamed, used


@pytest.mark.parametrize("engine", STOCK_POOLS)
def test_stock_pools_run_tests_against_the_real_database(make_alias, engine: str) -> None:
    renamed, used = database_used_after_create_test_db(make_alias, engine)
    assert renamed.startswith("test_")
    assert used == renamed.removeprefix("test_"), "the stock pool hazard is not reproduced"


@pytest.mark.parametrize("engine", engines.ENGINES)
def test_pool_follows_the_test_database(make_alias, engine: str) -> None:
    renamed, used = database_used_after_create_test_db(make_alias, engine)
    assert renamed.startswith("test_")
    assert used == renamed


def test_settings_change_replaces_the_pool(alias: str, make_alias) -> None:
    name = make_alias(alias)
    with connections[name].cursor() as cursor:
        cursor.execute("SELECT current_setting('application_name')")
        assert cursor.fetchone() == ("",)
    connections[name].settings_dict["OPTIONS"]["application_name"] = "renamed"
    with connections[name].cursor() as cursor:
        cursor.execute("SELECT current_setting('application_name')")
        assert cursor.fetchone() == ("renamed",)


# -- fork -------------------------------------------------------------------------------


def fork_report(alias: str) -> dict[str, object]:
    result = run_scenario("fork_child.py", alias)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report: dict[str, object] = json.loads(result.stdout)
    assert report["status"] == 0
    return report


@pytest.mark.parametrize(
    "alias",
    [
        pytest.param("stock_django", marks=NATIVE_POOL),
        "stock_dj_db_conn_pool",
    ],
)
def test_stock_pools_hand_the_parents_connection_to_a_forked_child(alias: str) -> None:
    report = fork_report(alias)
    assert report["child"] == str(report["parent"]), "the stock fork hazard is not reproduced"


@pytest.mark.parametrize("alias", ["real_pool", "real_pool_dj"])
def test_forked_child_never_uses_the_parents_pool(alias: str) -> None:
    report = fork_report(alias)
    assert report["child"].isdigit(), report  # type: ignore[union-attr]
    assert report["child"] != str(report["parent"])
    # The child's exit did not touch the parent's connection: still there, still working.
    assert report["parent_after"] == report["parent"]


# -- exit -------------------------------------------------------------------------------


@pytest.mark.timing
def test_pools_close_at_exit_without_warnings_or_delay() -> None:
    started = time.time()
    result = run_scenario("exit_clean.py")
    ended = time.time()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    finished_work = float(result.stdout.strip())
    assert started < finished_work < ended
    # Interpreter shutdown (closing 2 pools of 4 connections) is quick; a hang in a pool
    # worker's join would take psycopg_pool's 5 s close timeout.
    assert ended - finished_work < 2.0, f"exit took {ended - finished_work:.2f} s"


def test_close_all_pools_closes_and_a_new_pool_is_built_on_next_use(alias: str) -> None:
    assert Item.objects.using(alias).count() == 0
    assert pool_stats(alias) is not None
    close_all_pools()
    assert pool_stats(alias) is None
    assert Item.objects.using(alias).count() == 0
    assert pool_stats(alias) is not None


# -- a pooled alias beside a plain one --------------------------------------------------


def test_pooled_alias_and_plain_alias_side_by_side(alias: str) -> None:
    from django.db.backends.postgresql.base import DatabaseWrapper as Stock

    assert type(connections["plain"]) is Stock
    with connections["plain"].cursor() as cursor:
        cursor.execute("SELECT 1")
    Item.objects.using(alias).create(name="x")
    assert released(alias)
    # The plain alias keeps its connection like stock Django, until close().
    assert held("plain")
    assert Item.objects.using("plain").count() == 1
    connections["plain"].close()
    assert not held("plain")


# -- sharing ----------------------------------------------------------------------------


def test_sixteen_threads_share_four_connections(alias: str, make_alias) -> None:
    """The configured pool has 4 connections; 16 threads each run 25 queries."""
    options = {**connections[alias].settings_dict["OPTIONS"], "application_name": "sixteen"}
    alias = make_alias(alias, OPTIONS=options)
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def request() -> None:
        try:
            start.wait(10)
            for _ in range(25):
                Item.objects.using(alias).exists()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=request) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    stats = pool_stats(alias)
    assert stats is not None
    assert stats.size <= 4
    assert stats.in_use == 0
    with superuser_connect() as conn:
        total = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sixteen'"
        ).fetchone()
    assert total is not None
    assert total[0] <= 4
