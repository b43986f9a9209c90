"""Prometheus metrics under the OpenTelemetry database-client names (the ``prometheus`` extra).

Fed by ``observe.PoolObserver`` on every checkout and return when ``DJANGO_PG_REAL_POOL
["METRICS"]`` is True. Labels: ``db_client_connection_pool_name`` (the alias) and ``engine``
(the engine's short name): never a host, a user or a password.

Under gunicorn with several workers, set ``PROMETHEUS_MULTIPROC_DIR`` before the workers start:
prometheus-client then writes each process's values to its own files (a forked child opens
its own as soon as it records anything) and ``exposition()`` adds up the live processes.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured

try:
    from prometheus_client import (
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )
    from prometheus_client import multiprocess as _multiprocess
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImproperlyConfigured(
        "DJANGO_PG_REAL_POOL['METRICS'] is True but prometheus-client is not installed. "
        "Install it with \"pip install 'django-pg-real-pool[prometheus]'\", or set METRICS "
        "to False."
    ) from exc

from . import in_force, stats

LABELS = ("db_client_connection_pool_name", "engine")
#: prometheus-client chose its mode when first imported, from the same variable. In one
#: process the gauges are read at scrape time; with several, each must write its own.
_MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
#: Checkouts never wait less than a connection takes to hand over; creations take longer.
_CREATE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CONNECTION_COUNT = Gauge(
    "db_client_connection_count",
    "Open connections, by state (idle or used).",
    [*LABELS, "state"],
    multiprocess_mode="livesum",
)
IDLE_MAX = Gauge(
    "db_client_connection_idle_max",
    "Idle connections the pool keeps at most.",
    LABELS,
    multiprocess_mode="livesum",
)
IDLE_MIN = Gauge(
    "db_client_connection_idle_min",
    "Idle connections the pool keeps at least.",
    LABELS,
    multiprocess_mode="livesum",
)
MAX = Gauge(
    "db_client_connection_max",
    "Open connections the pool allows.",
    LABELS,
    multiprocess_mode="livesum",
)
PENDING = Gauge(
    "db_client_connection_pending_requests",
    "Checkouts waiting for a connection.",
    LABELS,
    multiprocess_mode="livesum",
)
TIMEOUTS = Counter(
    "db_client_connection_timeouts",
    "Checkouts that gave up after the pool's timeout.",
    LABELS,
)
CREATE_TIME = Histogram(
    "db_client_connection_create_time_seconds",
    "Time to open a new connection (psycopg_pool engine).",
    LABELS,
    buckets=_CREATE_BUCKETS,
)
WAIT_TIME = Histogram(
    "db_client_connection_wait_time_seconds",
    "Time from a checkout request to the connection being handed out.",
    LABELS,
    buckets=stats.BUCKETS,
)
USE_TIME = Histogram(
    "db_client_connection_use_time_seconds",
    "Time from a connection being handed out to its return to the pool.",
    LABELS,
    buckets=stats.BUCKETS,
)


class _State:
    """One pool's labelled metrics (looked up once: ``labels()`` is the costly part) and the
    connection attempts exported so far."""

    __slots__ = (
        "connections_num",
        "connections_seconds",
        "create_time",
        "idle",
        "last",
        "lock",
        "pending",
        "timeouts",
        "use_time",
        "used",
        "wait_time",
    )

    def __init__(self, labels: tuple[str, str]) -> None:
        self.lock = threading.Lock()
        self.connections_num = 0
        self.connections_seconds = 0.0
        self.idle = CONNECTION_COUNT.labels(*labels, "idle")
        self.used = CONNECTION_COUNT.labels(*labels, "used")
        self.pending = PENDING.labels(*labels)
        self.timeouts = TIMEOUTS.labels(*labels)
        self.create_time = CREATE_TIME.labels(*labels)
        self.wait_time = WAIT_TIME.labels(*labels)
        self.use_time = USE_TIME.labels(*labels)
        #: (idle, used, pending) last exported: a multiprocess gauge write costs microseconds.
        self.last: tuple[int, int, int] | None = None


def _state(observer: Any) -> _State:
    state: _State | None = observer.metrics_state
    if state is None:
        from django.db import connections

        labels = (observer.alias, observer.engine)
        state = _State(labels)
        settings_dict = connections.settings.get(observer.alias)
        found = in_force.limits(observer.alias, settings_dict) if settings_dict else None
        if found is not None and found.max is not None:
            MAX.labels(*labels).set(found.max)
        if found is not None:
            IDLE_MAX.labels(*labels).set(found.idle_max)
            IDLE_MIN.labels(*labels).set(found.idle_min)
        observer.metrics_state = state
    return state


def _refresh(observer: Any, state: _State, *, returning: int = 0) -> None:
    """Export the pool's current connection counts (and new connections' create times).

    ``returning``: connections about to go back to the pool (the handle gives a connection
    back just after telling its counters).
    """
    handle = observer.handle
    counters = handle.counters
    idle = handle.idle()
    created = handle.connections_created()
    if created is not None:
        with state.lock:
            new = created[0] - state.connections_num
            spent = created[1] - state.connections_seconds
            state.connections_num += new
            state.connections_seconds += spent
        # psycopg_pool keeps a total only: each new connection is given the average.
        for _ in range(max(new, 0)):
            state.create_time.observe(spent / new)
    now = (idle + returning, counters.in_use, counters.waiting)
    gauges = (state.idle, state.used, state.pending)
    with state.lock:  # so that what ``last`` says was exported is what the gauges hold
        last = state.last or (-1, -1, -1)
        state.last = now
        for gauge, value, before in zip(gauges, now, last, strict=True):
            if value != before:
                gauge.set(value)


def checked_out(observer: Any, wait: float) -> None:
    state = _state(observer)
    state.wait_time.observe(wait)
    if _MULTIPROCESS:
        _refresh(observer, state)


def failed(observer: Any, exc: BaseException) -> None:
    from psycopg_pool import PoolTimeout

    state = _state(observer)
    if isinstance(exc, PoolTimeout):
        state.timeouts.inc()
    if _MULTIPROCESS:
        _refresh(observer, state)


def returned(observer: Any, hold: float) -> None:
    state = _state(observer)
    state.use_time.observe(hold)
    if _MULTIPROCESS:
        _refresh(observer, state, returning=1)


def _refresh_this_process() -> None:
    from . import pools

    for entry in pools.snapshot().values():
        state = getattr(entry.handle.counters.observer, "metrics_state", None)
        if state is not None:
            _refresh(entry.handle.counters.observer, state)


def exposition() -> tuple[bytes, str]:
    """The metrics of this process, or of every live process in multiprocess mode, in the
    Prometheus text format, and its content type.

    The connection gauges of this process are read now; those of other processes are as of
    their last checkout or return."""
    _refresh_this_process()
    if _MULTIPROCESS:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """For gunicorn's ``child_exit`` hook: drop a dead worker's live gauges."""
    if _MULTIPROCESS:
        _multiprocess.mark_process_dead(pid)
