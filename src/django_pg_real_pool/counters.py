"""What happens to one pool's checkouts, counted the same way for both engines.

psycopg_pool counts connections being opened as in the pool and SQLAlchemy counts nothing of
waits or rejections, so each engine's pool handle counts for itself, here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple, TypeVar

T = TypeVar("T")


class Counts(NamedTuple):
    """One consistent reading of a ``CheckoutCounters``."""

    in_use: int
    waiting: int
    timeouts: int
    rejected: int
    errors: int


class CheckoutCounters:
    """Counts checkouts in use, waiting, timed out, rejected and failed; thread-safe."""

    __slots__ = ("_lock", "errors", "in_use", "rejected", "timeouts", "waiting")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_use = self.waiting = self.timeouts = self.rejected = self.errors = 0

    def checkout(self, get: Callable[[], T]) -> T:
        """Run ``get`` (a checkout) and count what came of it."""
        with self._lock:
            self.waiting += 1
        try:
            conn = get()
        except BaseException as exc:
            # Imported here: with OPTIONS["pool"] False the engine runs without psycopg_pool.
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
        """A connection went back to the pool."""
        with self._lock:
            self.in_use -= 1

    def read(self) -> Counts:
        """All the counters at one instant."""
        with self._lock:
            return Counts(self.in_use, self.waiting, self.timeouts, self.rejected, self.errors)
