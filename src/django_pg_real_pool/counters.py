"""What happens to one pool's checkouts, counted and timed the same way for both engines.

psycopg_pool counts connections being opened as in the pool and SQLAlchemy counts nothing of
waits or rejections, so each engine's pool handle counts for itself, here, on every checkout
and return: the wait (checkout requested -> connection handed out) and the hold (handed out ->
given back) go into fixed buckets.

A checkout and a return take no lock: each appends to a list or deque (atomic in CPython, and
per object in free-threaded builds), and the times are sorted into their buckets, under the
lock, in batches (every ``_FOLD_AT`` of them, and at each reading). On every query, the lock
and the bisect cost more than the rest of the counting together.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeVar

from .distribution import BUCKETS, Distribution

T = TypeVar("T")


class Counts(NamedTuple):
    """One consistent reading of a ``CheckoutCounters``."""

    in_use: int
    waiting: int
    timeouts: int
    rejected: int
    errors: int
    checkouts: int
    wait_time: Distribution
    hold_time: Distribution


class CheckoutObserver(Protocol):
    """Told about each checkout, outside the counters' lock (warnings, metrics)."""

    @property
    def wants_origin(self) -> bool:
        """Whether to remember where each connection was checked out, for ``returned()``."""

    def checked_out(self, wait: float) -> None: ...

    def failed(self, exc: BaseException) -> None: ...

    def returned(self, hold: float, origin: Any) -> None: ...


#: Times waiting in a list before they are sorted into buckets, at most (about 4 KiB).
_FOLD_AT = 512


class CheckoutCounters:
    """Counts and times what happens to checkouts; shared by both engines' pool handles.

    A connection is given back on the thread that checked it out (``release.py`` never
    releases from another thread), so the checkout times wait in a per-thread stack.
    """

    __slots__ = (
        "_checkouts",
        "_hold_buckets",
        "_hold_total",
        "_holds",
        "_lock",
        "_out",
        "_taken",
        "_wait_buckets",
        "_wait_total",
        "_waiters",
        "_waits",
        "errors",
        "observer",
        "rejected",
        "timeouts",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.timeouts = self.rejected = self.errors = 0
        #: Checkouts whose wait is in the buckets (the others' waits are in ``_waits``).
        self._checkouts = 0
        self._wait_buckets = [0] * (len(BUCKETS) + 1)
        self._hold_buckets = [0] * (len(BUCKETS) + 1)
        self._wait_total = self._hold_total = 0.0
        #: Waits and holds not sorted into their buckets yet.
        self._waits: list[float] = []
        self._holds: list[float] = []
        self._taken = _Taken()
        #: One item per checkout waiting in ``get()``, and one per connection out.
        self._waiters: deque[None] = deque()
        self._out: deque[None] = deque()
        #: Set once by the package's app (``observe.py``) when warnings or metrics are on.
        self.observer: CheckoutObserver | None = None

    @property
    def waiting(self) -> int:
        """Checkouts waiting for a connection now."""
        return len(self._waiters)

    @property
    def in_use(self) -> int:
        """Connections checked out and not given back now."""
        return len(self._out)

    def checkout(self, get: Callable[[], T]) -> T:
        waiters = self._waiters
        start = time.perf_counter()
        waiters.append(None)
        try:
            conn = get()
        except BaseException as exc:
            from psycopg_pool import PoolTimeout, TooManyRequests

            waiters.pop()
            with self._lock:
                if isinstance(exc, PoolTimeout):
                    self.timeouts += 1
                elif isinstance(exc, TooManyRequests):
                    self.rejected += 1
                elif isinstance(exc, Exception):
                    self.errors += 1
            if self.observer is not None:
                _tell(self.observer.failed, exc)
            raise
        now = time.perf_counter()
        # Counted out before it stops counting as waiting: never out of both.
        self._out.append(None)
        waiters.pop()
        waits = self._waits
        waits.append(now - start)
        if len(waits) >= _FOLD_AT:
            with self._lock:
                self._fold()
        observer = self.observer
        if observer is None:
            self._taken.stack.append((now, None))
            return conn
        self._taken.stack.append((now, _origin_if_wanted(observer)))
        # The connection is out: nothing may raise between here and its holder.
        _tell(observer.checked_out, now - start)
        return conn

    def returned(self) -> None:
        stack = self._taken.stack
        taken = stack.pop() if stack else None
        out = self._out
        if out:  # empty only when given back without a counted checkout
            out.pop()
        if taken is None:
            return
        hold = time.perf_counter() - taken[0]
        holds = self._holds
        holds.append(hold)
        if len(holds) >= _FOLD_AT:
            with self._lock:
                self._fold()
        if self.observer is not None:
            _tell(self.observer.returned, hold, taken[1])

    def _fold(self) -> None:
        """Sort the pending times into their buckets; called with ``_lock`` held."""
        count, total = _drain(self._waits, self._wait_buckets)
        self._checkouts += count
        self._wait_total += total
        self._hold_total += _drain(self._holds, self._hold_buckets)[1]

    def read(self) -> Counts:
        """All the counters and distributions at one instant."""
        with self._lock:
            self._fold()
            return Counts(
                in_use=len(self._out),
                waiting=len(self._waiters),
                timeouts=self.timeouts,
                rejected=self.rejected,
                errors=self.errors,
                checkouts=self._checkouts,
                wait_time=Distribution(tuple(self._wait_buckets), self._wait_total),
                hold_time=Distribution(tuple(self._hold_buckets), self._hold_total),
            )


def _drain(pending: list[float], buckets: list[int]) -> tuple[int, float]:
    """Move ``pending`` into ``buckets``; how many, and their sum. Popped one by one, so that
    a time appended meanwhile by another thread stays for the next time."""
    count, total = 0, 0.0
    while True:
        try:
            seconds = pending.pop()
        except IndexError:
            return count, total
        buckets[bisect_left(BUCKETS, seconds)] += 1
        total += seconds
        count += 1


class _Taken(threading.local):
    """The checkout times of the connections one thread holds, most recent last."""

    def __init__(self) -> None:
        self.stack: list[tuple[float, Any]] = []


def _tell(method: Callable[..., None], *args: Any) -> None:
    """Call an observer; its failure (metrics misconfigured, ...) is logged, never raised
    into a checkout, which would lose a connection or hide the pool's own error."""
    try:
        method(*args)
    except Exception:
        logging.getLogger("django_pg_real_pool").exception("a checkout observer failed")


def _origin_if_wanted(observer: CheckoutObserver) -> Any:
    try:
        wanted = observer.wants_origin
    except Exception:
        logging.getLogger("django_pg_real_pool").exception("a checkout observer failed")
        return None
    return _origin() if wanted else None


def _origin() -> Any:
    import traceback

    # The frames of this package and of django.db are the checkout path, not the caller.
    frames = [
        frame
        for frame in traceback.extract_stack()
        if "/django_pg_real_pool/" not in frame.filename and "/django/db/" not in frame.filename
    ]
    return traceback.StackSummary.from_list(frames[-12:])
