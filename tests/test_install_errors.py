"""Missing or wrong dependencies are explained with the command that fixes them."""

from __future__ import annotations

import pytest

from django_pg_real_pool import engines
from test_safety import run_scenario


def load(engine: str, blocked: str, *version: str) -> str:
    result = run_scenario("blocked_import.py", engine, blocked, *version)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("engine", engines.ENGINES)
def test_psycopg2_instead_of_psycopg3(engine: str) -> None:
    pytest.importorskip("psycopg2", reason="psycopg2-binary is part of the test extra")
    assert load(engine, "psycopg") == (
        f"django.core.exceptions.ImproperlyConfigured: ENGINE {engine!r} requires psycopg 3, "
        "which is not importable (Django's PostgreSQL backend would fall back to psycopg2). "
        "Install it with \"pip install 'psycopg[binary]'\" (or 'psycopg[c]'); psycopg2 can "
        "stay installed."
    )


def test_psycopg_pool_missing() -> None:
    assert load("django_pg_real_pool", "psycopg_pool") == (
        "django.core.exceptions.ImproperlyConfigured: ENGINE 'django_pg_real_pool' needs "
        "psycopg_pool, which is not installed. Install it with "
        "\"pip install 'psycopg-pool>=3.2.0'\"."
    )


def test_psycopg_pool_too_old() -> None:
    assert load("django_pg_real_pool", "", "3.1.19") == (
        "django.core.exceptions.ImproperlyConfigured: ENGINE 'django_pg_real_pool' needs "
        "psycopg_pool >= 3.2.0 (for its 'check' argument); psycopg_pool 3.1.19 is installed. "
        "Upgrade it with \"pip install -U 'psycopg-pool>=3.2.0'\"."
    )


@pytest.mark.parametrize("blocked", ["dj_db_conn_pool", "sqlalchemy"])
def test_dj_db_conn_pool_engine_without_the_extra(blocked: str) -> None:
    assert load("django_pg_real_pool.dj_db_conn_pool", blocked) == (
        "django.core.exceptions.ImproperlyConfigured: ENGINE "
        "'django_pg_real_pool.dj_db_conn_pool' needs the optional dependencies of "
        f"django-pg-real-pool's 'dj-db-conn-pool' extra ({blocked} missing). Install them "
        "with \"pip install 'django-pg-real-pool[dj-db-conn-pool]'\"."
    )
