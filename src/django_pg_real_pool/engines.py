"""The one vocabulary for this package's two engines: the ENGINE strings users put in their
settings, and the short names the pytest plugin, the matrix and the tests use for them."""

from __future__ import annotations

#: ENGINE "django_pg_real_pool": Django's PostgreSQL backend pooling through psycopg_pool.
PSYCOPG_POOL = "django_pg_real_pool"
#: ENGINE "django_pg_real_pool.dj_db_conn_pool": pooling through django-db-connection-pool.
DJ_DB_CONN_POOL = "django_pg_real_pool.dj_db_conn_pool"

#: Short name -> ENGINE string. The short names are public: ``pool_settings("real_pool")``.
SHORT_NAMES: dict[str, str] = {
    "real_pool": PSYCOPG_POOL,
    "real_pool_dj": DJ_DB_CONN_POOL,
}

#: Both ENGINE strings, the psycopg_pool one first.
ENGINES: tuple[str, ...] = tuple(SHORT_NAMES.values())


def short_name(engine: str) -> str:
    """The short name of one of this package's ENGINE strings."""
    for short, path in SHORT_NAMES.items():
        if path == engine:
            return short
    raise ValueError(f"{engine!r} is not an ENGINE of django-pg-real-pool; use one of {ENGINES}")
