"""One normalised snapshot of a pool, whichever engine built it."""

from __future__ import annotations

from dataclasses import dataclass

from . import pools


@dataclass(frozen=True)
class PoolStats:
    """Connections and checkouts of one alias's pool in this process."""

    #: Open connections, idle or in use.
    size: int
    #: Connections waiting in the pool.
    idle: int
    #: Connections checked out.
    in_use: int
    #: Checkouts waiting for a connection right now.
    waiting: int
    #: Checkouts that gave up after the pool's timeout, since the pool was built.
    timeouts: int
    #: Checkouts refused at once because ``max_waiting`` requests were already waiting.
    rejected: int
    #: Checkouts that failed otherwise (the server refused a new connection, ...).
    errors: int


def pool_stats(alias: str) -> PoolStats | None:
    """The stats of ``alias``'s current pool in this process, or None before its first use."""
    entry = pools.current(alias)
    if entry is None:
        return None
    idle = entry.handle.idle()
    counts = entry.handle.counters.read()
    return PoolStats(
        size=idle + counts.in_use,
        idle=idle,
        in_use=counts.in_use,
        waiting=counts.waiting,
        timeouts=counts.timeouts,
        rejected=counts.rejected,
        errors=counts.errors,
    )
