"""Settings factories: one set of pool options, a ``DATABASES`` entry for each engine.

So one test can be parametrised over engines::

    @pytest.mark.parametrize("engine", POOLED_ENGINES)
    def test_saturation(engine, pool_settings, pool_alias): ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_pg_real_pool import engines

REAL_POOL = engines.short_name(engines.PSYCOPG_POOL)
REAL_POOL_DJ = engines.short_name(engines.DJ_DB_CONN_POOL)
#: This package's two engines, by their short names.
OUR_ENGINES = (REAL_POOL, REAL_POOL_DJ)
#: Every pooled engine the factory knows, the stock ones included.
POOLED_ENGINES = (*OUR_ENGINES, "django_native", "dj_db_conn_pool")
#: Django's stock backend without a pool (a readiness probe).
READINESS = "readiness"

#: Short name -> ENGINE string, for every engine ``pool_settings`` knows.
ENGINE_PATHS = {
    **engines.SHORT_NAMES,
    "django_native": "django.db.backends.postgresql",
    "dj_db_conn_pool": "dj_db_conn_pool.backends.postgresql",
    READINESS: "django.db.backends.postgresql",
}


@dataclass(frozen=True)
class PoolOptions:
    """Pool options in one vocabulary, translated for each engine.

    ``max_size`` connections at most (SQLAlchemy: ``POOL_SIZE`` with no overflow), checkouts
    wait ``timeout`` seconds, at most ``max_waiting`` of them (psycopg_pool only), and a
    connection is replaced after ``max_lifetime`` seconds (SQLAlchemy: ``RECYCLE``).
    """

    max_size: int = 4
    min_size: int | None = None
    timeout: float = 10.0
    max_waiting: int | None = None
    max_lifetime: float | None = None
    health_checks: bool = False

    def psycopg_pool(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "min_size": self.max_size if self.min_size is None else self.min_size,
            "max_size": self.max_size,
            "timeout": self.timeout,
        }
        if self.max_waiting is not None:
            options["max_waiting"] = self.max_waiting
        if self.max_lifetime is not None:
            options["max_lifetime"] = self.max_lifetime
        return options

    def queue_pool(self, engine: str) -> dict[str, Any]:
        if self.max_waiting is not None and engine != REAL_POOL_DJ:
            raise ValueError(
                f"engine {engine!r} pools with SQLAlchemy's QueuePool, which has no limit on "
                "waiting checkouts: max_waiting applies to real_pool, real_pool_dj (which adds "
                "it) and django_native."
            )
        options: dict[str, Any] = {
            "POOL_SIZE": self.max_size,
            "MAX_OVERFLOW": 0,
            "TIMEOUT": self.timeout,
            "PRE_PING": self.health_checks,
        }
        if self.max_lifetime is not None:
            options["RECYCLE"] = self.max_lifetime
        if self.max_waiting is not None:
            options["MAX_WAITING"] = self.max_waiting
        return options


def database_settings(
    engine: str, *, connection: dict[str, Any], options: PoolOptions | None = None, **extra: Any
) -> dict[str, Any]:
    """A ``DATABASES`` entry for ``engine`` (a key of ``ENGINE_PATHS``).

    ``connection`` holds NAME, USER, PASSWORD, HOST, PORT; ``extra`` is merged last.
    """
    if engine not in ENGINE_PATHS:
        raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(ENGINE_PATHS)}")
    options = options or PoolOptions()
    entry: dict[str, Any] = {"ENGINE": ENGINE_PATHS[engine], **connection, "OPTIONS": {}}
    if engine in (REAL_POOL, "django_native"):
        entry["OPTIONS"]["pool"] = options.psycopg_pool()
        entry["CONN_HEALTH_CHECKS"] = options.health_checks
    elif engine in (REAL_POOL_DJ, "dj_db_conn_pool"):
        entry["POOL_OPTIONS"] = options.queue_pool(engine)
    if engine == "django_native":
        import django

        if django.VERSION < (5, 1):
            raise ValueError(f"engine 'django_native' needs Django 5.1+, not {django.__version__}")
    for key, value in extra.items():
        if key == "OPTIONS":
            entry["OPTIONS"] = {**entry["OPTIONS"], **value}
        else:
            entry[key] = value
    return entry
