"""ENGINE ``django_pg_real_pool``: Django's PostgreSQL backend pooling through psycopg_pool,
with each connection returned to the pool as soon as possible (see ``release.py``)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from . import compat, engines, options

compat.require_psycopg3(engines.PSYCOPG_POOL)

logger = logging.getLogger("django_pg_real_pool")

# Checked before Django's backend is imported, which would otherwise fall back to psycopg2.
from django.db.backends.postgresql.base import (  # noqa: E402
    DatabaseWrapper as PostgresDatabaseWrapper,
)
from psycopg.pq import TransactionStatus  # noqa: E402

from . import pools  # noqa: E402
from .counters import CheckoutCounters  # noqa: E402
from .creation import DatabaseCreation  # noqa: E402
from .features import DatabaseFeatures  # noqa: E402
from .gate import FairGate, GateFull, GateTimeout, has_data_to_read  # noqa: E402
from .options import PoolConfig  # noqa: E402
from .release import AsapReleaseMixin  # noqa: E402
from .session import session_reset  # noqa: E402

_IDLE = TransactionStatus.IDLE


class PsycopgPoolHandle:
    """A ``psycopg_pool.ConnectionPool`` as the registry sees it.

    Checkouts queue in a ``FairGate`` of ``max_size`` slots (resized with the pool's
    ``resize()``) in front of the pool, which
    applies ``timeout`` and ``max_waiting`` as psycopg_pool would, with its messages: a
    saturated pool hands a connection over at every query here, and the gate's handover wakes
    the waiter once where psycopg_pool's wakes it twice (``gate.py``).

    With a ``reuse_window``, a connection given back idle goes to the next checkout through
    the gate (handed over, or from its shelf) instead of through psycopg_pool, as long as it
    left psycopg_pool less than ``reuse_window`` seconds ago: each connection still goes back
    to psycopg_pool at least that often, where ``max_lifetime``, ``max_idle`` and the checks
    apply.

    With a ``check`` (CONN_HEALTH_CHECKS, or OPTIONS["pool"]["check"]) the handle checks each
    connection itself instead of the pool: psycopg_pool sleeps 1 s, doubling, after each
    connection that fails its check, so a pool whose idle backends all died stalled for
    seconds. Here a failed connection is discarded, the other idle ones are checked at once
    (``pool.check()``) and the next good connection is handed out, within ``timeout``. A
    connection reused through the gate is not checked (it was in use moments ago) unless its
    socket has something to read: what the server sends when it closes a connection.
    """

    __slots__ = (
        "_check",
        "_gate",
        "_get",
        "_timeout_error",
        "_too_many_error",
        "counters",
        "isolation_level",
        "raw",
    )

    def __init__(
        self,
        raw: Any,
        *,
        isolation_level: Any,
        check: Callable[[Any], None] | None = None,
        max_waiting: int = 0,
        reuse_window: float = 0.0,
    ) -> None:
        # Imported here: with OPTIONS["pool"] False the engine runs without psycopg_pool.
        from psycopg_pool import PoolTimeout, TooManyRequests

        self._timeout_error = PoolTimeout
        self._too_many_error = TooManyRequests
        self.raw = raw
        #: Django's default is READ COMMITTED; None means "not configured".
        self.isolation_level = isolation_level
        self._check = check
        self._get: Callable[[float], Any] = raw.getconn if check is None else self._getconn_checked
        self._gate = FairGate(
            raw.max_size, max_waiting=max_waiting, window=reuse_window, give_back=raw.putconn
        )
        _follow_resize(raw, self._gate)
        #: psycopg_pool's own stats count connections being opened as in the pool.
        self.counters = CheckoutCounters()

    def getconn(self) -> Any:
        return self.counters.checkout(self._getconn)

    def _getconn(self) -> Any:
        timeout: float = self.raw.timeout
        try:
            conn, waited = self._gate.enter(timeout)
        except GateFull as exc:
            raise self._too_many_error(
                f"the pool {self.raw.name!r} has already {exc.waiting} requests waiting"
            ) from None
        except GateTimeout:
            raise self._timeout_error(
                f"pool {self.raw.name!r}: couldn't get a connection after {timeout:.2f} sec"
            ) from None
        if conn is not None:
            if self._check is None or not has_data_to_read(conn):
                return conn
            # The server may have closed it: through psycopg_pool and the check.
            self._gate.unshelve(conn)
        try:
            conn = self._get(timeout - waited)
        except self._timeout_error as exc:
            self._gate.leave()
            # psycopg_pool says neither which pool timed out nor after the whole wait.
            raise self._timeout_error(
                f"pool {self.raw.name!r}: couldn't get a connection after {timeout:.2f} sec"
            ) from exc
        except BaseException:
            self._gate.leave()
            raise
        self._gate.taken_from_pool(conn)
        return conn

    def _getconn_checked(self, remaining: float) -> Any:
        check = self._check
        assert check is not None
        deadline = time.monotonic() + remaining
        while True:
            conn = self.raw.getconn(timeout=deadline - time.monotonic())
            try:
                check(conn)
            except BaseException as exc:
                # Closed, so that the pool discards it even if the check failed on a
                # connection that still works.
                conn.close()
                self.raw.putconn(conn)
                if not isinstance(exc, Exception):
                    raise
                logger.info("a connection of %r failed its check: %s", self.raw.name, exc)
                # One dead idle connection means others likely died with it (a restart, a
                # failover, an administrator): check the idle ones now, not one per request.
                self.raw.check()
                continue
            return conn

    def putconn(self, conn: Any) -> None:
        self.counters.returned()
        if self._gate.shelve(conn, idle=conn.pgconn.transaction_status == _IDLE):
            return
        try:
            self.raw.putconn(conn)
        finally:
            self._gate.leave()

    def idle(self) -> int:
        available: int = self.raw.get_stats().get("pool_available", 0)
        return available + self._gate.shelved

    def connections_created(self) -> tuple[int, float] | None:
        found = self.raw.get_stats()
        return found.get("connections_num", 0), found.get("connections_ms", 0) / 1000

    def close(self) -> None:
        self._gate.close()
        self.raw.close()
        compat.close_what_a_closed_pool_kept(self.raw)


def _follow_resize(raw: Any, gate: FairGate) -> None:
    """Make ``raw.resize()`` (``connection.pool.resize()``, psycopg_pool's API) resize the gate
    in front of it too: a gate left at the old ``max_size`` would keep admitting the old
    number of checkouts."""
    resize = raw.resize

    @functools.wraps(resize)
    def resized(min_size: int, max_size: int | None = None) -> None:
        resize(min_size, max_size)
        gate.resize(raw.max_size)

    raw.resize = resized


def _probe(connect_kwargs: dict[str, Any], configure: Any, *, timeout: float) -> None:
    """Connect and configure one connection in the caller, then close it.

    psycopg_pool opens connections in its workers and retries a failing one until the
    checkout times out: a wrong password, database or ``assume_role`` would surface as a
    PoolTimeout after ``timeout`` seconds instead of the server's error. One connection per
    pool built (once per process and settings) buys the real error at once; the connect
    waits no longer than a checkout would.
    """
    import psycopg

    kwargs = dict(connect_kwargs)
    kwargs.setdefault("connect_timeout", max(2, math.ceil(timeout)))
    with psycopg.connect(**kwargs) as conn:
        configure(conn)


class DatabaseWrapper(AsapReleaseMixin[dict[str, Any]], PostgresDatabaseWrapper):
    creation_class = DatabaseCreation
    features_class = DatabaseFeatures

    def _validate(self) -> PoolConfig[dict[str, Any]] | None:
        compat.require_psycopg_pool()
        arguments = options.psycopg_pool_options(
            self.alias, self.settings_dict, accepted=compat.connection_pool_parameters()
        )
        if arguments is None:
            return None
        config = options.pool_config(self.alias, self.settings_dict, arguments)
        window = options.psycopg_pool_reuse_window(self.alias, self.settings_dict, arguments)
        return dataclasses.replace(config, reuse_window=window)

    def _build_pool(self, config: PoolConfig[dict[str, Any]]) -> PsycopgPoolHandle:
        pool_class = compat.require_psycopg_pool()
        pool_options = dict(config.arguments)
        connect_kwargs, configure = self._new_connection_setup(config)
        check = pool_options.pop("check", None)
        # The handle's gate enforces it (before the pool would).
        max_waiting = pool_options.pop("max_waiting", 0)
        if check is None and self.settings_dict["CONN_HEALTH_CHECKS"]:
            check = pool_class.check_connection
        pool_options.setdefault("name", self.alias)
        if config.reset_on_return is not None:
            # psycopg_pool runs it in a worker, after rolling back, before the connection
            # is handed out again.
            pool_options["reset"] = session_reset(config.reset_on_return, configure)
        try:
            pool = pool_class(
                kwargs=connect_kwargs, open=False, configure=configure, **pool_options
            )
        except (TypeError, ValueError) as exc:
            raise ImproperlyConfigured(
                f"DATABASES[{self.alias!r}]['OPTIONS']['pool'] was rejected by "
                f"psycopg_pool.ConnectionPool: {exc}"
            ) from exc
        _probe(connect_kwargs, configure, timeout=pool.timeout)
        # Opened once, here, under the registry's lock: psycopg_pool < 3.3.1 races when
        # several threads open the same pool (psycopg issue 1300).
        pool.open(wait=False)
        return PsycopgPoolHandle(
            pool,
            isolation_level=config.isolation_level,
            check=check,
            max_waiting=max_waiting,
            reuse_window=config.reuse_window,
        )

    @property
    def pool(self) -> Any:
        """The ``psycopg_pool.ConnectionPool`` of this alias, or None (Django's API)."""
        entry = self._pool_entry()
        return None if entry is None else entry.handle.raw


__all__ = ["DatabaseWrapper", "pools"]
