"""One normalised snapshot of a pool, whichever engine built it."""

from __future__ import annotations

from dataclasses import dataclass

from . import pools


@dataclass(frozen=True)
class PoolStats:
    """Connections of one alias's pool in this process."""

    #: Open connections, idle or in use.
    size: int
    #: Connections waiting in the pool.
    idle: int
    #: Connections checked out.
    in_use: int
    #: Requests waiting for a connection (psycopg_pool only; 0 for SQLAlchemy).
    waiting: int


def pool_stats(alias: str) -> PoolStats | None:
    """The stats of ``alias``'s current pool, or None if it has none (yet)."""
    entry = pools.current(alias)
    if entry is None:
        return None
    raw = entry.handle.raw
    if hasattr(raw, "get_stats"):
        stats = raw.get_stats()
        idle = stats.get("pool_available", 0)
        in_use = entry.handle.in_use  # type: ignore[attr-defined]
        return PoolStats(
            size=idle + in_use, idle=idle, in_use=in_use, waiting=stats.get("requests_waiting", 0)
        )
    idle, in_use = raw.checkedin(), raw.checkedout()
    return PoolStats(size=idle + in_use, idle=idle, in_use=in_use, waiting=0)
