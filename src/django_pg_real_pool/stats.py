"""One normalised snapshot of a pool, whichever engine built it.

Checkouts are counted and timed by ``CheckoutCounters``, which both engines' pool handles call
on every checkout and return: the wait (checkout requested -> connection handed out) and the
hold (handed out -> given back) go into fixed buckets, so recording one is a clock read, a
bisect and an increment under the lock the counters already take.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from . import pools

T = TypeVar("T")

#: Upper bounds, in seconds, of the wait and hold time buckets; a last bucket takes the rest.
#: From 100 µs (a connection released after one query) to a minute (a stuck request).
BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


@dataclass(frozen=True)
class Distribution:
    """How many durations fell in each bucket: ``counts[i]`` are those <= ``BUCKETS[i]``
    (and above the previous bound); the last count is those above ``BUCKETS[-1]``."""

    counts: tuple[int, ...]
    #: Sum of all durations, in seconds.
    total: float

    @property
    def count(self) -> int:
        """How many durations were recorded."""
        return sum(self.counts)

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the ``q`` quantile (0 < q <= 1), or None if
        nothing was recorded; ``inf`` when it lies beyond the last bound."""
        if not 0 < q <= 1:
            raise ValueError(f"q must be in (0, 1], not {q!r}")
        n = self.count
        if n == 0:
            return None
        rank = q * n
        seen = 0
        for bound, count in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            seen += count
            if seen >= rank:
                return bound
        return float("inf")  # pragma: no cover - rounding only

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: bucket upper bounds as strings ("+Inf" last), counts, sum."""
        bounds = [*(repr(bound) for bound in BUCKETS), "+Inf"]
        return {"buckets": dict(zip(bounds, self.counts, strict=True)), "sum": self.total}


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
    wait_time: Distribution = Distribution((0,) * (len(BUCKETS) + 1), 0.0)
    #: Connection handed out -> given back, for every connection given back.
    hold_time: Distribution = Distribution((0,) * (len(BUCKETS) + 1), 0.0)


class CheckoutObserver(Protocol):
    """Told about each checkout, outside the counters' lock (warnings, metrics)."""

    #: Whether to remember where each connection was checked out, for ``returned()``.
    wants_origin: bool

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
        "checkouts",
        "errors",
        "in_use",
        "observer",
        "rejected",
        "timeouts",
        "waiting",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_use = self.waiting = self.timeouts = self.rejected = self.errors = 0
        self.checkouts = 0
        self._wait_buckets = [0] * (len(BUCKETS) + 1)
        self._hold_buckets = [0] * (len(BUCKETS) + 1)
        self._wait_total = self._hold_total = 0.0
        self._taken = threading.local()
        #: Set once by the package's app (``observe.py``) when warnings or metrics are on.
        self.observer: CheckoutObserver | None = None

    def checkout(self, get: Callable[[], T]) -> T:
        start = time.perf_counter()
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
            if self.observer is not None:
                _tell(self.observer.failed, exc)
            raise
        now = time.perf_counter()
        wait = now - start
        with self._lock:
            self.waiting -= 1
            self.in_use += 1
            self.checkouts += 1
            self._wait_buckets[bisect_left(BUCKETS, wait)] += 1
            self._wait_total += wait
        observer = self.observer
        stack: list[tuple[float, Any]] | None = getattr(self._taken, "stack", None)
        if stack is None:
            stack = self._taken.stack = []
        stack.append((now, None if observer is None else _origin_if_wanted(observer)))
        if observer is not None:
            # The connection is out: nothing may raise between here and its holder.
            _tell(observer.checked_out, wait)
        return conn

    def returned(self) -> None:
        stack: list[tuple[float, Any]] | None = getattr(self._taken, "stack", None)
        taken = stack.pop() if stack else None
        hold = 0.0 if taken is None else time.perf_counter() - taken[0]
        with self._lock:
            self.in_use -= 1
            if taken is not None:
                self._hold_buckets[bisect_left(BUCKETS, hold)] += 1
                self._hold_total += hold
        if taken is not None and self.observer is not None:
            _tell(self.observer.returned, hold, taken[1])

    def _distributions(self) -> tuple[Distribution, Distribution]:
        return (
            Distribution(tuple(self._wait_buckets), self._wait_total),
            Distribution(tuple(self._hold_buckets), self._hold_total),
        )


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
        wait_time, hold_time = counters._distributions()
        return PoolStats(
            size=idle + counters.in_use,
            idle=idle,
            in_use=counters.in_use,
            waiting=counters.waiting,
            timeouts=counters.timeouts,
            rejected=counters.rejected,
            errors=counters.errors,
            checkouts=counters.checkouts,
            wait_time=wait_time,
            hold_time=hold_time,
        )
