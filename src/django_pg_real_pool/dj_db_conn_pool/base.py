"""ENGINE ``django_pg_real_pool.dj_db_conn_pool``: Django's PostgreSQL backend pooling through a
SQLAlchemy ``QueuePool`` per alias, configured with django-db-connection-pool's
``POOL_OPTIONS``, with each connection returned to the pool as soon as possible (see
``release.py``).

The pools live in this package's registry instead of django-db-connection-pool's container,
which is keyed by alias only, survives ``fork()`` and ignores settings changes.
"""

from __future__ import annotations

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
from django_pg_real_pool.options import PoolConfig, QueuePoolOptions  # noqa: E402
from django_pg_real_pool.release import AsapReleaseMixin  # noqa: E402


class QueuePoolHandle:
    """A SQLAlchemy ``QueuePool`` as the registry sees it."""

    __slots__ = ("alias", "capacity", "counters", "isolation_level", "max_waiting", "raw")

    def __init__(
        self, raw: Any, *, alias: str, isolation_level: Any, arguments: QueuePoolOptions
    ) -> None:
        self.raw = raw
        self.alias = alias
        self.isolation_level = isolation_level
        self.max_waiting = arguments.max_waiting
        #: Connections the pool may open at once; None: no limit (MAX_OVERFLOW -1).
        self.capacity = (
            arguments.pool_size + arguments.max_overflow if arguments.max_overflow >= 0 else None
        )
        self.counters = CheckoutCounters()

    def getconn(self) -> Any:
        if self.max_waiting and self.counters.waiting >= self.max_waiting and self._exhausted():
            # Refused at once, as psycopg_pool does; CheckoutCounters counts the rejection.
            return self.counters.checkout(self._reject)
        return self.counters.checkout(self._getconn)

    def _exhausted(self) -> bool:
        return (
            self.capacity is not None
            and self.raw.checkedin() == 0
            and self.raw.checkedout() >= self.capacity
        )

    def _reject(self) -> Any:
        raise TooManyRequests(
            f"the pool {self.alias!r} has already {self.counters.waiting - 1} requests waiting"
        )

    def _getconn(self) -> Any:
        try:
            fairy = self.raw.connect()
        except sqlalchemy_exc.TimeoutError as exc:
            # The same error as the other engine's, so that Django raises OperationalError
            # and one except clause serves both engines.
            raise PoolTimeout(
                f"pool {self.alias!r}: couldn't get a connection after "
                f"{self.raw.timeout():.2f} sec ({exc})"
            ) from exc
        return _internals.expose_driver_info(fairy)

    def putconn(self, conn: Any) -> None:
        self.counters.returned()
        conn.close()

    def idle(self) -> int:
        checked_in: int = self.raw.checkedin()
        return checked_in

    def connections_created(self) -> None:
        return None  # SQLAlchemy's QueuePool does not count or time new connections

    def close(self) -> None:
        _internals.unlist_from_dj_db_conn_pool(self.alias, self.raw)
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
        arguments = options.queue_pool_options(self.alias, self.settings_dict)
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

        # What PRE_PING pings with; django-db-connection-pool builds the same dialect.
        dialect_class: Any = sqlalchemy_psycopg.dialect
        pool = sqlalchemy_pool.QueuePool(
            create,
            dialect=dialect_class(dbapi=psycopg),
            **config.arguments.as_kwargs(),
        )
        return QueuePoolHandle(
            pool,
            alias=self.alias,
            isolation_level=config.isolation_level,
            arguments=config.arguments,
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
