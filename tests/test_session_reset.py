"""Opt-in reset of a connection given back (OPTIONS['reset_on_return'] /
POOL_OPTIONS['RESET_ON_RETURN']): the next borrower finds no SET, SET ROLE, temp table,
advisory lock or LISTEN of the previous one, and the engine's own session setup intact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

from django_pg_real_pool import options, queue_options
from suite import superuser_connect

#: DISCARD ALL without DEALLOCATE ALL (as docs/reliability.md gives it).
KEEP_PREPARED = (
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES"
)
ROLE = "reset_probe"


@pytest.fixture(scope="module", autouse=True)
def _role() -> None:
    with superuser_connect() as conn:
        conn.autocommit = True
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]).fetchone():
            conn.execute(f"CREATE ROLE {ROLE}")
        conn.execute(f"GRANT CREATE, TEMPORARY ON DATABASE {conn.info.dbname} TO {ROLE}")


def _one_connection(make_alias: Callable[..., str], template: str, reset: Any) -> str:
    if template == "dj":
        pool = {"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 10}
        if reset is not None:
            pool["RESET_ON_RETURN"] = reset
        return make_alias("dj", POOL_OPTIONS=pool)
    extra = {} if reset is None else {"reset_on_return": reset}
    return make_alias(
        "default", OPTIONS={"pool": {"min_size": 1, "max_size": 1, "timeout": 10}, **extra}
    )


def _one(alias: str, sql: str) -> Any:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _dirty(alias: str) -> int:
    """One borrow that leaves every kind of session state behind; its backend's pid."""
    with transaction.atomic(using=alias):
        pid = _one(alias, "SELECT pg_backend_pid()")
        for statement in (
            "SET statement_timeout = '123s'",
            "PREPARE probe AS SELECT 1",
            "CREATE TEMP TABLE probe (id int)",
            "SELECT pg_advisory_lock(4242)",
            "LISTEN probe",
            f"SET ROLE {ROLE}",
        ):
            with connections[alias].cursor() as cursor:
                cursor.execute(statement)
    return int(pid)


def _state(alias: str) -> dict[str, Any]:
    """What the next borrower finds, on the same physical connection."""
    with transaction.atomic(using=alias):
        return {
            "pid": _one(alias, "SELECT pg_backend_pid()"),
            "statement_timeout": _one(alias, "SHOW statement_timeout"),
            "role": _one(alias, "SELECT current_user = session_user"),
            "temp table": _one(alias, "SELECT to_regclass('pg_temp.probe') IS NOT NULL"),
            "advisory locks": _one(
                alias,
                "SELECT count(*) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
            ),
            "listening": _one(alias, "SELECT count(*) FROM pg_listening_channels()"),
            "prepared": _one(alias, "SELECT count(*) FROM pg_prepared_statements"),
            "time zone": _one(alias, "SHOW TimeZone"),
        }


CLEAN = {
    "statement_timeout": "0",
    "role": True,
    "temp table": False,
    "advisory locks": 0,
    "listening": 0,
    "time zone": "UTC",
}


@pytest.mark.parametrize("template", ["default", "dj"])
@pytest.mark.parametrize(("reset", "prepared"), [(True, 0), (KEEP_PREPARED, 1)])
def test_reset_on_return_leaves_the_next_borrower_clean(
    make_alias: Callable[..., str], template: str, reset: Any, prepared: int
) -> None:
    alias = _one_connection(make_alias, template, reset)
    pid = _dirty(alias)
    found = _state(alias)
    assert found.pop("pid") == pid, "the pool of one connection handed out another one"
    assert found == {**CLEAN, "prepared": prepared}
    connections[alias].close()


@pytest.mark.parametrize("template", ["default", "dj"])
def test_without_reset_the_state_reaches_the_next_borrower(
    make_alias: Callable[..., str], template: str
) -> None:
    alias = _one_connection(make_alias, template, None)
    pid = _dirty(alias)
    found = _state(alias)
    assert found.pop("pid") == pid
    assert found == {
        "statement_timeout": "123s",
        "role": False,
        "temp table": True,
        "advisory locks": 1,
        "listening": 1,
        "prepared": 1,
        "time zone": "UTC",
    }
    connections[alias].close_pool()  # its session is dirty


@pytest.mark.parametrize(
    ("engine", "settings", "message"),
    [
        (
            "default",
            {"OPTIONS": {"pool": True, "reset_on_return": "  "}},
            "['OPTIONS']['reset_on_return'] must be True",
        ),
        (
            "default",
            {"OPTIONS": {"pool": {"reset": print}, "reset_on_return": True}},
            "sets both 'reset_on_return' and pool['reset']",
        ),
        (
            "dj",
            {"OPTIONS": {"reset_on_return": True}},
            "set DATABASES['x']['POOL_OPTIONS']['RESET_ON_RETURN'] instead",
        ),
        (
            "dj",
            {"POOL_OPTIONS": {"RESET_ON_RETURN": 1}},
            "DATABASES['x']['POOL_OPTIONS']['RESET_ON_RETURN'] must be True",
        ),
    ],
)
def test_bad_reset_settings_are_refused(
    engine: str, settings: dict[str, Any], message: str
) -> None:
    settings_dict = {"CONN_MAX_AGE": 0, **settings}
    with pytest.raises(ImproperlyConfigured) as refused:
        if engine == "dj":
            queue_options.queue_pool_options("x", settings_dict)
        else:
            options.psycopg_pool_options("x", settings_dict, accepted=frozenset({"reset"}))
    assert message in str(refused.value)


@pytest.mark.parametrize("template", ["default", "dj"])
def test_a_raw_isolation_level_change_does_not_reach_the_next_borrower(
    make_alias: Callable[..., str], template: str
) -> None:
    from psycopg import IsolationLevel

    alias = _one_connection(make_alias, template, None)
    with transaction.atomic(using=alias):
        raw = connections[alias]._psycopg_connection(connections[alias].connection)
    # Given back: set on the raw connection, as code that kept it would.
    raw.isolation_level = IsolationLevel.SERIALIZABLE
    with transaction.atomic(using=alias):
        assert _one(alias, "SHOW transaction_isolation") == "read committed"
    connections[alias].close()
