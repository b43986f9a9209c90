"""Warnings and metrics fed by every checkout, installed by the app's ``ready()``.

One ``PoolObserver`` per pool: ``CheckoutCounters`` calls it outside its lock after each
checkout, failed checkout and return. It reads ``DJANGO_PG_REAL_POOL`` (cached) each time, so
thresholds changed by ``override_settings`` apply at once.
"""

from __future__ import annotations

import logging
from typing import Any

from . import conf, engines, pools

logger = logging.getLogger("django_pg_real_pool")


class PoolObserver:
    """Logs slow checkouts and long holds of one pool; feeds the Prometheus metrics."""

    __slots__ = ("alias", "engine", "handle", "metrics_state")

    def __init__(self, alias: str, engine: str, handle: Any) -> None:
        self.alias = alias
        #: The engine's short name (``real_pool``, ``real_pool_dj``).
        self.engine = engine
        self.handle = handle
        #: Owned by ``metrics.py``: what it last exported for this pool.
        self.metrics_state: Any = None

    @property
    def wants_origin(self) -> bool:
        settings = conf.get()
        return settings.RECORD_CHECKOUT_ORIGIN and settings.LONG_HOLD_WARNING is not None

    def checked_out(self, wait: float) -> None:
        settings = conf.get()
        threshold = settings.SLOW_CHECKOUT_WARNING
        if threshold is not None and wait > threshold:
            logger.warning(
                "checkout from the pool %r waited %.3f s (SLOW_CHECKOUT_WARNING is %.3f s); "
                "the pool may be too small for its traffic",
                self.alias,
                wait,
                threshold,
            )
        if settings.METRICS:
            from . import metrics

            metrics.checked_out(self, wait)

    def failed(self, exc: BaseException) -> None:
        if conf.get().METRICS:
            from . import metrics

            metrics.failed(self, exc)

    def returned(self, hold: float, origin: Any) -> None:
        settings = conf.get()
        threshold = settings.LONG_HOLD_WARNING
        if threshold is not None and hold > threshold:
            where = (
                "; checked out at:\n" + "".join(origin.format()).rstrip()
                if origin is not None
                else " (set RECORD_CHECKOUT_ORIGIN to see where it was checked out)"
            )
            logger.warning(
                "a connection of the pool %r was held %.3f s (LONG_HOLD_WARNING is %.3f s)%s",
                self.alias,
                hold,
                threshold,
                where,
            )
        if settings.METRICS:
            from . import metrics

            metrics.returned(self, hold)


def attach(entry: pools.Entry) -> None:
    """Give a new pool its observer; never stands in the way of building the pool."""
    from django.db import connections

    try:
        engine = connections.settings.get(entry.alias, {}).get("ENGINE", "")
        short = engines.short_name(engine) if engine in engines.ENGINES else "unknown"
        counters = entry.handle.counters
        counters.observer = PoolObserver(entry.alias, short, entry.handle)
    except Exception:
        logger.exception("the pool of %r is not observed: no warnings or metrics", entry.alias)


def install() -> None:
    """Observe every pool built from now on, and those already built."""
    pools.on_new_pool(attach)
    for entry in pools.snapshot().values():
        if entry.handle.counters.observer is None:
            attach(entry)
