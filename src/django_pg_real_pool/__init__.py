"""A Django PostgreSQL backend that returns pooled connections as soon as possible.

Use ``ENGINE: "django_pg_real_pool"`` (psycopg_pool) or
``ENGINE: "django_pg_real_pool.dj_db_conn_pool"`` (django-db-connection-pool).
"""

from .pools import close_all_pools
from .stats import Distribution, PoolStats, pool_stats

__all__ = ["Distribution", "PoolStats", "close_all_pools", "pool_stats"]
