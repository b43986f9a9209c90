"""``pool_stats(alias)`` for tests: this package's engines, and Django's native pool."""

from __future__ import annotations

from django_pg_real_pool import PoolStats
from django_pg_real_pool import pool_stats as _own_pool_stats

__all__ = ["PoolStats", "pool_stats"]


def pool_stats(alias: str) -> PoolStats:
    """A snapshot of ``alias``'s pool in this process; fails clearly when there is none."""
    stats = _own_pool_stats(alias)
    if stats is not None:
        return stats
    from django.db import connections

    connection = connections[alias]
    engine = connection.settings_dict["ENGINE"]
    pool = getattr(connection, "pool", None) if engine == "django.db.backends.postgresql" else None
    if pool is not None:
        raw = pool.get_stats()
        idle = raw.get("pool_available", 0)
        size = raw.get("pool_size", 0)
        return PoolStats(
            size=size,
            idle=idle,
            in_use=size - idle,
            waiting=raw.get("requests_waiting", 0),
            timeouts=raw.get("requests_errors", 0),
            rejected=0,
            errors=raw.get("connections_errors", 0),
        )
    raise LookupError(
        f"alias {alias!r} (ENGINE {engine!r}) has no pool this plugin can read in this process: "
        "pool_stats() reads django_pg_real_pool's two engines (after their first query) and "
        "Django's native pool."
    )
