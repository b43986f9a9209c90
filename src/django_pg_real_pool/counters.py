"""What happens to one pool's checkouts, counted and timed the same way for both engines.

psycopg_pool counts connections being opened as in the pool and SQLAlchemy counts nothing of
waits or rejections, so each engine's pool handle counts for itself, here, on every checkout
and return: the wait (checkout requested -> connection handed out) and the hold (handed out ->
given back) go into fixed buckets, so recording one is a clock read, a bisect and an increment
under the lock the counters already take.
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


class CheckoutCounters:
    """Counts and times what happens to checkouts; shared by both engines' pool handles.

    A connection is given back on the thread that checked it out (``release.py`` never
    releases from another thread), so the checkout times wait in a per-thread stack.
    """

    __slots__ = (
        "_hold_buckets",
        "_hold_total",
        "_lock",
        "_taken",
        "_wait_buckets",
        "_wait_total",
        "_waiters",
        "checkouts",
        "errors",
        "in_use",
        "observer",
        "rejected",
        "timeouts",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_use = self.timeouts = self.rejected = self.errors = 0
        self.checkouts = 0
        self._wait_buckets = [0] * (len(BUCKETS) + 1)
        self._hold_buckets = [0] * (len(BUCKETS) + 1)
        self._wait_total = self._hold_total = 0.0
        self._taken = _Taken()
        #: One item per checkout waiting in ``get()``: appending to and popping from a deque
        #: are atomic, so a checkout takes the lock once, when it has its connection.
        self._waiters: deque[None] = deque()
        #: Set once by the package's app (``observe.py``) when warnings or metrics are on.
        self.observer: CheckoutObserver | None = None

    @property
    def waiting(self) -> int:
        """Checkouts waiting for a connection now."""
        return len(self._waiters)

    def checkout(self, get: Callable[[], T]) -> T:
        waiters = self._waiters
        start = time.perf_counter()
        waiters.append(None)
        try:
            conn = get()
        except BaseException as exc:
            from psycopg_pool import PoolTimeout, TooManyRequests

            with self._lock:
                waiters.pop()
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
        wait = now - start
        with self._lock:
            waiters.pop()
            self.in_use += 1
            self.checkouts += 1
            self._wait_buckets[bisect_left(BUCKETS, wait)] += 1
            self._wait_total += wait
        observer = self.observer
        if observer is None:
            self._taken.stack.append((now, None))
            return conn
        self._taken.stack.append((now, _origin_if_wanted(observer)))
        # The connection is out: nothing may raise between here and its holder.
        _tell(observer.checked_out, wait)
        return conn

    def returned(self) -> None:
        stack = self._taken.stack
        taken = stack.pop() if stack else None
        hold = 0.0 if taken is None else time.perf_counter() - taken[0]
        with self._lock:
            self.in_use -= 1
            if taken is not None:
                self._hold_buckets[bisect_left(BUCKETS, hold)] += 1
                self._hold_total += hold
        if taken is not None and self.observer is not None:
            _tell(self.observer.returned, hold, taken[1])

    def read(self) -> Counts:
        """All the counters and distributions at one instant."""
        with self._lock:
            return Counts(
                in_use=self.in_use,
                waiting=len(self._waiters),
                timeouts=self.timeouts,
                rejected=self.rejected,
                errors=self.errors,
                checkouts=self.checkouts,
                wait_time=Distribution(tuple(self._wait_buckets), self._wait_total),
                hold_time=Distribution(tuple(self._hold_buckets), self._hold_total),
            )


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
