"""The engines the suite runs on: this package's two, and the controls they are judged against.

Each gets ``default`` and ``other`` with pooling on, sized as in issue 7: 1 to 4 connections
(psycopg_pool), 4 with no overflow (SQLAlchemy's QueuePool).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django_pg_real_pool import engines

PSYCOPG_POOL_OPTIONS: Mapping[str, Any] = {"pool": {"min_size": 1, "max_size": 4}}
QUEUE_POOL_OPTIONS: Mapping[str, Any] = {"POOL_SIZE": 4, "MAX_OVERFLOW": 0}


@dataclass(frozen=True)
class SuiteEngine:
    """One choice of ``--engine``: the ENGINE string and the pool settings of both aliases."""

    name: str
    engine: str
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)
    pool_options: Mapping[str, Any] | None = None
    #: The oldest Django (major, minor) that has this engine.
    min_django: tuple[int, int] = (4, 2)

    def database(self, **connection: Any) -> dict[str, Any]:
        """A ``DATABASES`` entry for this engine on the given NAME, USER, HOST, PORT..."""
        entry: dict[str, Any] = {"ENGINE": self.engine, **connection}
        if self.options:
            entry["OPTIONS"] = {key: _copy(value) for key, value in self.options.items()}
        if self.pool_options is not None:
            entry["POOL_OPTIONS"] = dict(self.pool_options)
        return entry


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


SUITE_ENGINES: dict[str, SuiteEngine] = {
    engine.name: engine
    for engine in (
        SuiteEngine(
            "real_pool",
            engines.PSYCOPG_POOL,
            "this package, pooling through psycopg_pool",
            options=PSYCOPG_POOL_OPTIONS,
        ),
        SuiteEngine(
            "real_pool_dj",
            engines.DJ_DB_CONN_POOL,
            "this package, pooling through django-db-connection-pool",
            pool_options=QUEUE_POOL_OPTIONS,
        ),
        SuiteEngine(
            "django_native",
            "django.db.backends.postgresql",
            "control: Django's own pool (OPTIONS['pool'])",
            options=PSYCOPG_POOL_OPTIONS,
            min_django=(5, 1),
        ),
        SuiteEngine(
            "dj_db_conn_pool",
            "dj_db_conn_pool.backends.postgresql",
            "control: django-db-connection-pool alone",
            pool_options=QUEUE_POOL_OPTIONS,
        ),
        SuiteEngine(
            "django_plain",
            "django.db.backends.postgresql",
            "control: Django's PostgreSQL backend without a pool",
        ),
    )
}

assert set(engines.SHORT_NAMES) <= set(SUITE_ENGINES), "every engine of the package is run"
