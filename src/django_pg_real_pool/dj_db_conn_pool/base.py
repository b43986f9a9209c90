"""ENGINE ``django_pg_real_pool.dj_db_conn_pool``: Django's PostgreSQL backend pooling through a
SQLAlchemy ``QueuePool`` per alias, configured with django-db-connection-pool's
``POOL_OPTIONS``, with each connection returned to the pool as soon as possible (see
``release.py``).

The pools live in this package's registry instead of django-db-connection-pool's container,
which is keyed by alias only, survives ``fork()`` and ignores settings changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django_pg_real_pool import compat, engines

compat.require_psycopg3(engines.DJ_DB_CONN_POOL)
compat.require_dj_db_conn_pool()

# Checked before import: without the extra these raise a bare ImportError.
import psycopg  # noqa: E402
from django.db.backends.postgresql.base import (  # noqa: E402
    DatabaseWrapper as PostgresDatabaseWrapper,
)
from psycopg_pool import PoolTimeout, TooManyRequests  # noqa: E402
from sqlalchemy import exc as sqlalchemy_exc  # noqa: E402
from sqlalchemy import pool as sqlalchemy_pool  # noqa: E402
from sqlalchemy.dialects.postgresql import psycopg as sqlalchemy_psycopg  # noqa: E402

from django_pg_real_pool import _internals, options, pools  # noqa: E402
from django_pg_real_pool.counters import CheckoutCounters  # noqa: E402
from django_pg_real_pool.creation import DatabaseCreation  # noqa: E402
from django_pg_real_pool.features import DatabaseFeatures  # noqa: E402
from django_pg_real_pool.gate import (  # noqa: E402
    FairGate,
    GateFull,
    GateTimeout,
    has_data_to_read,
)
from django_pg_real_pool.options import PoolConfig  # noqa: E402
from django_pg_real_pool.queue_options import QueuePoolOptions, queue_pool_options  # noqa: E402
from django_pg_real_pool.release import AsapReleaseMixin  # noqa: E402
from django_pg_real_pool.session import session_reset  # noqa: E402

logger = logging.getLogger("django_pg_real_pool")


_IDLE = psycopg.pq.TransactionStatus.IDLE

#: Set on a psycopg connection when it goes back to the pool: ``time.monotonic()`` then.
_RETURNED_AT = "_django_pg_real_pool_returned_at"


class PingDialect(sqlalchemy_psycopg.dialect):
    """SQLAlchemy's psycopg dialect, which PRE_PING pings with, skipping the ping of a
    connection that was given back less than ``skip_window`` seconds ago and has nothing to
    read on its socket.

    A ping finds a connection the server closed (a restart, ``pg_terminate_backend``, an idle
    timeout): the server then sends an error and closes the socket, which is readable from
    that moment on, so such a connection is still pinged, and replaced. What the skip gives
    up is finding, within the window, a peer that vanished without a word, which a ping
    would only find after the network's timeout anyway (HikariCP skips its check for the same
    reason, for 500 ms).
    """

    def __init__(self, *, skip_window: float) -> None:
        super().__init__(dbapi=psycopg)  # type: ignore[no-untyped-call]
        self.skip_window = skip_window

    def do_ping(self, dbapi_connection: Any) -> bool:
        if self.skip_window and _used_moments_ago(dbapi_connection, self.skip_window):
            return True
        pinged: bool = super().do_ping(dbapi_connection)  # type: ignore[no-untyped-call]
        return pinged


def _used_moments_ago(conn: Any, window: float) -> bool:
    returned = getattr(conn, _RETURNED_AT, None)
    if returned is None or time.monotonic() - returned > window or conn.closed:
        return False
    return not _server_may_have_closed(conn)


#: A connection given back less than this long ago is handed out without a look at its
#: socket (a system call, which also lets every other thread take the GIL): a server that
#: closed it within that millisecond is no different from one that closes it during the next
#: query, which fails either way. Back-to-back queries are within it; a connection handed
#: over to a waiting checkout is not looked at either, however long the waiter took to wake
#: (under 64 threads, often more than a millisecond).
_SOCKET_LOOK_AFTER = 0.001


def _server_may_have_closed(conn: Any) -> bool:
    returned = getattr(conn, _RETURNED_AT, None)
    if returned is not None and time.monotonic() - returned < _SOCKET_LOOK_AFTER:
        return False
    return has_data_to_read(conn)


class QueuePoolHandle:
    """A SQLAlchemy ``QueuePool`` as the registry sees it, served first come, first served.

    A ``FairGate`` of POOL_SIZE + MAX_OVERFLOW slots orders the checkouts, enforces TIMEOUT
    and MAX_WAITING, so the pool underneath always has a connection (or room for one) for a
    checkout that passed the gate. With unlimited overflow (-1) nobody waits: no gate.

    With a reuse window (REUSE_WINDOW, ``gate.py``), a connection given back idle goes to the
    next checkout through the gate, still checked out of the QueuePool, as long as it left the
    QueuePool less than the window ago: each connection still goes back to the QueuePool at
    least that often, where RECYCLE and PRE_PING apply. One reused with PRE_PING on is not
    pinged (the window is at most PRE_PING_SKIP_WINDOW) unless its socket has something to
    read, as ``PingDialect`` skips pings.
    """

    __slots__ = (
        "_gate",
        "_out",
        "_pre_ping",
        "_reset",
        "_stamp_returns",
        "_timeout",
        "alias",
        "counters",
        "isolation_level",
        "raw",
    )

    def __init__(
        self,
        raw: Any,
        *,
        alias: str,
        isolation_level: Any,
        arguments: QueuePoolOptions,
        reset: Callable[[Any], None] | None = None,
        reuse_window: float = 0.0,
    ) -> None:
        self.raw = raw
        #: RESET_ON_RETURN, run on the psycopg connection before it goes back.
        self._reset = reset
        #: Remember when each connection came back, for PingDialect.
        self._stamp_returns = arguments.pre_ping and arguments.pre_ping_skip_window > 0
        self.alias = alias
        self.isolation_level = isolation_level
        self._timeout = arguments.timeout
        self._pre_ping = arguments.pre_ping
        # No gate (unlimited overflow), no reuse through it.
        self._gate = (
            FairGate(
                arguments.pool_size + arguments.max_overflow,
                max_waiting=arguments.max_waiting,
                window=reuse_window,
                give_back=self._to_pool,
            )
            if arguments.max_overflow >= 0
            else None
        )
        self.counters = CheckoutCounters()
        #: The connections checked out, by id. A forked child keeps the parent's entries (and
        #: so these) referenced, so that none is garbage-collected there: psycopg would warn
        #: of each one "deleted while still open" (it stays quiet only for psycopg_pool's).
        self._out: dict[int, Any] = {}

    def getconn(self) -> Any:
        return self.counters.checkout(self._getconn)

    def _getconn(self) -> Any:
        gate = self._gate
        if gate is not None:
            try:
                fairy, waited = gate.enter(self._timeout)
            except GateFull as exc:
                # Refused at once, as psycopg_pool does; CheckoutCounters counts it.
                raise TooManyRequests(
                    f"the pool {self.alias!r} has already {exc.waiting} requests waiting"
                ) from None
            except GateTimeout:
                raise PoolTimeout(
                    f"pool {self.alias!r}: couldn't get a connection after "
                    f"{self._timeout:.2f} sec (all {gate.capacity} connections in use, "
                    f"POOL_SIZE + MAX_OVERFLOW)"
                ) from None
            if fairy is not None:
                # Handed over while this checkout waited (``waited``), it comes straight from
                # a query that just ran on it, however long this thread took to wake up:
                # not looked at, as within _SOCKET_LOOK_AFTER of a return. From the shelf,
                # it may have rested there.
                if not (
                    self._pre_ping
                    and not waited
                    and _server_may_have_closed(fairy.dbapi_connection)
                ):
                    return fairy
                # The server may have closed it: through the QueuePool and its ping.
                gate.unshelve(fairy)
        try:
            fairy = self.raw.connect()
        except BaseException as exc:
            if gate is not None:
                gate.leave()
            if isinstance(exc, sqlalchemy_exc.TimeoutError):
                # The same error as the other engine's, so that Django raises
                # OperationalError and one except clause serves both engines.
                raise PoolTimeout(
                    f"pool {self.alias!r}: couldn't get a connection after "
                    f"{self.raw.timeout():.2f} sec ({exc})"
                ) from exc
            raise
        self._out[id(fairy)] = fairy
        if gate is not None:
            gate.taken_from_pool(fairy)
        return _internals.expose_driver_info(fairy)

    def putconn(self, conn: Any) -> None:
        self.counters.returned()
        raw = conn.dbapi_connection
        if self._stamp_returns and raw is not None:
            # Its last use, for PingDialect: also when it goes back to the pool from the gate.
            setattr(raw, _RETURNED_AT, time.monotonic())
        gate = self._gate
        if gate is not None and gate.shelve(
            conn, idle=raw is not None and raw.pgconn.transaction_status == _IDLE
        ):
            return
        try:
            self._to_pool(conn)
        finally:
            if gate is not None:
                gate.leave()

    def _to_pool(self, conn: Any) -> None:
        self._out.pop(id(conn), None)
        raw = conn.dbapi_connection
        if raw is not None:
            self._clean(conn, raw)
        conn.close()

    def _clean(self, fairy: Any, raw: Any) -> None:
        """Roll back what a connection given back left open, then RESET_ON_RETURN; when that
        fails, invalidate the connection (the pool replaces it).

        The pool's own reset (SQLAlchemy's ``reset_on_return``) is off: it called
        ``rollback()`` on every return, and psycopg's rollback of an idle connection, a no-op,
        still took the connection's lock and ran its generator, a fifth of a checkout."""
        try:
            if raw.pgconn.transaction_status != _IDLE:
                raw.rollback()
            if self._reset is not None:
                self._reset(raw)
        except Exception as exc:
            if self._reset is not None:
                logger.warning("RESET_ON_RETURN failed on a connection of %r: %s", self.alias, exc)
            # Broken, or not clean: the pool must not hand it out again.
            fairy.invalidate()

    def idle(self) -> int:
        checked_in: int = self.raw.checkedin()
        return checked_in + (0 if self._gate is None else self._gate.shelved)

    def connections_created(self) -> None:
        return None  # SQLAlchemy's QueuePool does not count or time new connections

    def close(self) -> None:
        _internals.unlist_from_dj_db_conn_pool(self.alias, self.raw)
        if self._gate is not None:
            self._gate.close()
        self.raw.dispose()


def _list_new_pool(entry: pools.Entry) -> None:
    if isinstance(entry.handle, QueuePoolHandle):
        _internals.list_in_dj_db_conn_pool(entry.alias, entry.handle.raw)
        _listed.add(entry.alias)


def _unlist_inherited_pools() -> None:
    # The parent's pools: never to be found, let alone used, in a forked child.
    _internals.forget_in_dj_db_conn_pool(_listed)
    _listed.clear()


#: Aliases this process listed in django-db-connection-pool's container.
_listed: set[str] = set()
pools.on_new_pool(_list_new_pool)
pools.on_fork_in_child(_unlist_inherited_pools)


class DatabaseWrapper(AsapReleaseMixin[QueuePoolOptions], PostgresDatabaseWrapper):
    creation_class = DatabaseCreation
    features_class = DatabaseFeatures

    def _validate(self) -> PoolConfig[QueuePoolOptions] | None:
        arguments = queue_pool_options(self.alias, self.settings_dict)
        if arguments is None:
            return None
        return options.pool_config(self.alias, self.settings_dict, arguments)

    def _build_pool(self, config: PoolConfig[QueuePoolOptions]) -> QueuePoolHandle:
        connect_kwargs, configure = self._new_connection_setup(config)

        def create() -> Any:
            conn = psycopg.connect(**connect_kwargs)
            try:
                configure(conn)
            except BaseException:
                conn.close()
                raise
            return conn

        # What PRE_PING pings with: django-db-connection-pool's dialect, with the skip.
        pool = sqlalchemy_pool.QueuePool(
            create,
            dialect=PingDialect(skip_window=config.arguments.pre_ping_skip_window),
            reset_on_return=None,  # QueuePoolHandle._clean() rolls back what needs it
            **config.arguments.as_kwargs(),
        )
        reset = config.arguments.reset_on_return
        return QueuePoolHandle(
            pool,
            alias=self.alias,
            isolation_level=config.isolation_level,
            arguments=config.arguments,
            reset=None if reset is None else session_reset(reset, configure),
            reuse_window=config.arguments.reuse_window,
        )

    @property
    def pool(self) -> Any:
        """This alias's SQLAlchemy ``QueuePool``, or None when not pooling, as the other
        engine's ``pool`` is its ``ConnectionPool`` (Django's own property would build a
        second, native pool from ``OPTIONS['pool']``)."""
        entry = self._pool_entry()
        return None if entry is None else entry.handle.raw

    def _psycopg_connection(self, conn: Any) -> Any:
        # SQLAlchemy hands out a proxy (whose dbapi_connection is psycopg's connection); the
        # no-database alias gets a plain connection.
        return getattr(conn, "dbapi_connection", conn)
