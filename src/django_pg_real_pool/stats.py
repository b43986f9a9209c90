"""One normalised snapshot of a pool, whichever engine built it."""

from __future__ import annotations

from dataclasses import dataclass

from . import pools
from .distribution import BUCKETS, Distribution

__all__ = ["BUCKETS", "Distribution", "PoolStats", "pool_stats"]

#: Nothing recorded yet.
EMPTY = Distribution((0,) * (len(BUCKETS) + 1), 0.0)


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
    #: Connections handed out since the pool was built.
    checkouts: int = 0
    #: Checkout requested -> connection handed out, for every successful checkout.
    wait_time: Distribution = EMPTY
    #: Connection handed out -> given back, for every connection given back.
    hold_time: Distribution = EMPTY


def pool_stats(alias: str) -> PoolStats | None:
    """The stats of ``alias``'s current pool in this process, or None before its first use."""
    entry = pools.current(alias)
    if entry is None:
        return None
    idle = entry.handle.idle()
    counts = entry.handle.counters.read()
    return PoolStats(size=idle + counts.in_use, idle=idle, **counts._asdict())
