"""One normalised snapshot of a pool, whichever engine built it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from . import pools

T = TypeVar("T")


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


class CheckoutCounters:
    """Counts what happens to checkouts; shared by both engines' pool handles."""

    __slots__ = ("_lock", "errors", "in_use", "rejected", "timeouts", "waiting")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_use = self.waiting = self.timeouts = self.rejected = self.errors = 0

    def checkout(self, get: Callable[[], T]) -> T:
        with self._lock:
            self.waiting += 1
        try:
            conn = get()
        except BaseException as exc:
            from psycopg_pool import PoolTimeout, TooManyRequests

            with self._lock:
                self.waiting -= 1
                if isinstance(exc, PoolTimeout):
                    self.timeouts += 1
                elif isinstance(exc, TooManyRequests):
                    self.rejected += 1
                elif isinstance(exc, Exception):
                    self.errors += 1
            raise
        with self._lock:
            self.waiting -= 1
            self.in_use += 1
        return conn

    def returned(self) -> None:
        with self._lock:
            self.in_use -= 1


def pool_stats(alias: str) -> PoolStats | None:
    """The stats of ``alias``'s current pool in this process, or None before its first use."""
    entry = pools.current(alias)
    if entry is None:
        return None
    counters: CheckoutCounters = entry.handle.counters  # type: ignore[attr-defined]
    raw = entry.handle.raw
    idle = (
        raw.get_stats().get("pool_available", 0) if hasattr(raw, "get_stats") else raw.checkedin()
    )
    with counters._lock:
        return PoolStats(
            size=idle + counters.in_use,
            idle=idle,
            in_use=counters.in_use,
            waiting=counters.waiting,
            timeouts=counters.timeouts,
            rejected=counters.rejected,
            errors=counters.errors,
        )
