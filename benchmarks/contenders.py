"""The contenders, as data: a name, the virtual environment that runs it, its DATABASES entry.

Every pool is given the same size, opened in full before anything is timed (``min_size`` =
``max_size``, or ``POOL_SIZE`` with no overflow), and a checkout timeout long enough that
nothing times out at 64 threads. Everything else is each package's default, ``PRE_PING``
included. The stock pool (Django's native pool, held for the whole request) is the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BY_NAME",
    "CONTENDERS",
    "OURS",
    "PROJECT",
    "REFERENCE",
    "V110",
    "Contender",
    "reference_entry",
]

#: The virtual environments: the one running the benchmark, and django-pg-real-pool 1.1.0's.
PROJECT = "project"
V110 = "1.1.0"
#: Seconds a checkout may wait: far beyond the longest wait at 64 threads on 4 connections.
CHECKOUT_TIMEOUT = 120
#: Scenarios.
PER_QUERY = "per_query"
THROUGHPUT = "throughput"


@dataclass(frozen=True)
class Contender:
    """One way of reaching the database; ``entry(size)`` is its DATABASES entry, without the
    server's NAME, USER, HOST and PORT, for a pool of ``size`` connections."""

    name: str
    description: str
    venv: str
    entry: Callable[[int], dict[str, Any]]
    pooled: bool = True
    scenarios: frozenset[str] = frozenset({PER_QUERY, THROUGHPUT})


def _psycopg_pool(engine: str, **options: Any) -> Callable[[int], dict[str, Any]]:
    def entry(size: int) -> dict[str, Any]:
        pool = {"min_size": size, "max_size": size, "timeout": CHECKOUT_TIMEOUT}
        return {"ENGINE": engine, "CONN_MAX_AGE": 0, "OPTIONS": {"pool": pool, **options}}

    return entry


def _queue_pool(engine: str, **pool_options: Any) -> Callable[[int], dict[str, Any]]:
    def entry(size: int) -> dict[str, Any]:
        queue = {"POOL_SIZE": size, "MAX_OVERFLOW": 0, "TIMEOUT": CHECKOUT_TIMEOUT}
        return {"ENGINE": engine, "CONN_MAX_AGE": 0, "POOL_OPTIONS": queue | pool_options}

    return entry


def _stock(conn_max_age: int | None) -> Callable[[int], dict[str, Any]]:
    def entry(size: int) -> dict[str, Any]:
        return {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": conn_max_age}

    return entry


_DJANGO = "django.db.backends.postgresql"
_DBCP = "dj_db_conn_pool.backends.postgresql"
_OURS, _OURS_DJ = "django_pg_real_pool", "django_pg_real_pool.dj_db_conn_pool"

CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "persistent",
        "Django, a persistent connection per thread (CONN_MAX_AGE=None), no pool",
        PROJECT,
        _stock(None),
        pooled=False,
    ),
    Contender(
        "no_pool",
        "Django, a new connection per request (CONN_MAX_AGE=0), no pool",
        PROJECT,
        _stock(0),
        pooled=False,
    ),
    Contender(
        "stock_pool",
        "Django's native pool (psycopg_pool), held for the whole request: the reference",
        PROJECT,
        _psycopg_pool(_DJANGO),
    ),
    Contender(
        "dbcp",
        "django-db-connection-pool (SQLAlchemy QueuePool), held for the whole request",
        PROJECT,
        _queue_pool(_DBCP),
    ),
    Contender("real_pool", "ours: ENGINE django_pg_real_pool", PROJECT, _psycopg_pool(_OURS)),
    Contender(
        "real_pool_dj",
        "ours: ENGINE django_pg_real_pool.dj_db_conn_pool (PRE_PING on, its default)",
        PROJECT,
        _queue_pool(_OURS_DJ),
    ),
    Contender(
        "1.1.0",
        "django-pg-real-pool 1.1.0 from PyPI, ENGINE django_pg_real_pool (Django's pool)",
        V110,
        _psycopg_pool(_OURS),
    ),
    Contender(
        "1.1.0_dj",
        "django-pg-real-pool 1.1.0 from PyPI, ENGINE django_pg_real_pool.dj_db_conn_pool",
        V110,
        _queue_pool(_OURS_DJ),
    ),
    Contender(
        "real_pool+reset",
        "ours: ENGINE django_pg_real_pool with OPTIONS reset_on_return (DISCARD ALL)",
        PROJECT,
        _psycopg_pool(_OURS, reset_on_return=True),
        scenarios=frozenset({PER_QUERY}),
    ),
    Contender(
        "real_pool_dj-ping",
        "ours: ENGINE django_pg_real_pool.dj_db_conn_pool with PRE_PING off",
        PROJECT,
        _queue_pool(_OURS_DJ, PRE_PING=False),
        scenarios=frozenset({PER_QUERY}),
    ),
    Contender(
        "real_pool_dj+reset",
        "ours: ENGINE django_pg_real_pool.dj_db_conn_pool with RESET_ON_RETURN (DISCARD ALL)",
        PROJECT,
        _queue_pool(_OURS_DJ, RESET_ON_RETURN=True),
        scenarios=frozenset({PER_QUERY}),
    ),
)
BY_NAME = {contender.name: contender for contender in CONTENDERS}
REFERENCE = BY_NAME["stock_pool"]
#: Our two engines, the ones the goals and the "slower than" list are about.
OURS = ("real_pool", "real_pool_dj")


def reference_entry(size: int) -> dict[str, Any]:
    """The reference's DATABASES entry: every per-query process runs it beside its contender."""
    return REFERENCE.entry(size)
