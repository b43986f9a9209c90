"""First come, first served checkouts for a pool that is not fair by itself.

SQLAlchemy's ``QueuePool`` lets a thread that just gave a connection back take it again ahead
of the threads already waiting: with one checkout per query, a few threads get everything and
the others time out. A ``FairGate`` in front of the pool admits at most ``capacity`` checkouts
at once and hands each slot given back to the oldest waiter, so the pool underneath never has
to make anyone wait.

psycopg_pool is fair, but a handover there costs more: its waiter sleeps on a
``threading.Condition`` and, once woken, must take the condition's lock again, which the thread
handing over still holds, so it sleeps and wakes a second time. With a checkout per query, a
saturated pool hands a connection over at every query; the gate's waiter sleeps on a bare lock
that the handover releases, once.
"""

from __future__ import annotations

import _thread
import threading
import time
from collections import deque


class GateTimeout(Exception):
    """No slot was given to this checkout within its timeout."""


class GateFull(Exception):
    """``max_waiting`` checkouts wait already."""

    def __init__(self, waiting: int) -> None:
        super().__init__(waiting)
        self.waiting = waiting


class _Waiter:
    __slots__ = ("granted", "lock")

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
        self.lock.acquire()
        self.granted = False


class FairGate:
    """At most ``capacity`` holders at once; the others wait in arrival order."""

    __slots__ = ("_free", "_lock", "_waiters", "capacity", "max_waiting")

    def __init__(self, capacity: int, *, max_waiting: int = 0) -> None:
        self.capacity = capacity
        #: 0: no limit on waiting checkouts.
        self.max_waiting = max_waiting
        self._free = capacity
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Checkouts waiting for a slot now."""
        return len(self._waiters)

    def enter(self, timeout: float) -> float:
        """Take a slot, waiting at most ``timeout`` seconds behind the earlier arrivals;
        return the seconds waited (0.0 when a slot was free).

        Raises ``GateFull`` at once when ``max_waiting`` checkouts wait already, and
        ``GateTimeout`` when no slot came in time.
        """
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return 0.0
            if self.max_waiting and len(self._waiters) >= self.max_waiting:
                raise GateFull(len(self._waiters))
            waiter = _Waiter()
            self._waiters.append(waiter)
        started = time.monotonic()
        deadline = started + timeout
        while not waiter.lock.acquire(timeout=max(deadline - time.monotonic(), 0)):
            with self._lock:
                if waiter.granted:
                    break  # handed over between the timeout and this lock
                if time.monotonic() >= deadline:
                    self._waiters.remove(waiter)
                    raise GateTimeout()
        return time.monotonic() - started

    def leave(self) -> None:
        """Give a slot back: to the oldest waiter if any."""
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True
                waiter.lock.release()
            else:
                self._free += 1
