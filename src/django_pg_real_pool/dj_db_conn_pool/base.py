"""ENGINE ``django_pg_real_pool.dj_db_conn_pool``: django-db-connection-pool's PostgreSQL
backend (a SQLAlchemy ``QueuePool`` per alias), with each connection returned to the pool as
soon as possible (see ``release.py``).

The pools live in this package's registry instead of django-db-connection-pool's container,
which is keyed by alias only, survives ``fork()`` and ignores settings changes.
"""

from __future__ import annotations

from typing import Any

from django_pg_real_pool import compat, options

compat.require_psycopg3(options.DJ_DB_CONN_POOL_ENGINE)
compat.require_dj_db_conn_pool()

# Checked before import: without the extra these raise a bare ImportError.
import psycopg  # noqa: E402
from dj_db_conn_pool.backends.postgresql.base import (  # noqa: E402
    DatabaseWrapper as PoolDatabaseWrapper,
)
from django.db.backends.postgresql.base import (  # noqa: E402
    DatabaseWrapper as PostgresDatabaseWrapper,
)
from psycopg_pool import PoolTimeout, TooManyRequests  # noqa: E402
from sqlalchemy import exc as sqlalchemy_exc  # noqa: E402
from sqlalchemy import pool as sqlalchemy_pool  # noqa: E402

from django_pg_real_pool.creation import DatabaseCreation  # noqa: E402
from django_pg_real_pool.release import AsapReleaseMixin  # noqa: E402
from django_pg_real_pool.stats import CheckoutCounters  # noqa: E402


class QueuePoolHandle:
    """A SQLAlchemy ``QueuePool`` as the registry sees it."""

    __slots__ = ("alias", "counters", "isolation_level", "max_waiting", "raw")

    def __init__(self, raw: Any, *, alias: str, isolation_level: Any, max_waiting: int) -> None:
        self.raw = raw
        self.alias = alias
        self.isolation_level = isolation_level
        self.max_waiting = max_waiting
        self.counters = CheckoutCounters()

    def getconn(self) -> Any:
        if self.max_waiting and self.counters.waiting >= self.max_waiting and self._exhausted():
            # Refused at once, as psycopg_pool does; CheckoutCounters counts the rejection.
            return self.counters.checkout(self._reject)
        return self.counters.checkout(self._getconn)

    def _exhausted(self) -> bool:
        overflow = self.raw._max_overflow
        capacity = self.raw.size() + overflow if overflow >= 0 else None
        return self.raw.checkedin() == 0 and (
            capacity is not None and self.raw.checkedout() >= capacity
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
        # Django reads connection.info (server version, parameters); so does
        # django-db-connection-pool's own wrapper.
        fairy.info = fairy.driver_connection.info
        return fairy

    def putconn(self, conn: Any) -> None:
        self.counters.returned()
        conn.close()

    def close(self) -> None:
        self.raw.dispose()


class DatabaseWrapper(AsapReleaseMixin, PoolDatabaseWrapper):  # type: ignore[misc]
    creation_class = DatabaseCreation

    def _pooling_requested(self) -> bool:
        options.queue_pool_options(self.alias, self.settings_dict)
        return True

    def _build_pool(self) -> QueuePoolHandle:
        pool_options = options.queue_pool_options(self.alias, self.settings_dict)
        connect_kwargs, configure, isolation_level = self._new_connection_setup()

        def create() -> Any:
            conn = psycopg.connect(**connect_kwargs)
            try:
                configure(conn)
            except BaseException:
                conn.close()
                raise
            return conn

        pool = sqlalchemy_pool.QueuePool(
            create, dialect=self._get_dialect(), **pool_options.as_kwargs()
        )
        return QueuePoolHandle(
            pool,
            alias=self.alias,
            isolation_level=isolation_level,
            max_waiting=pool_options.max_waiting,
        )

    def _psycopg_connection(self, conn: Any) -> Any:
        # SQLAlchemy hands out a proxy; the no-database alias gets a plain connection.
        return getattr(conn, "driver_connection", conn)

    def _set_autocommit(self, autocommit: bool) -> None:
        with self.wrap_database_errors:
            self._psycopg_connection(self.connection).autocommit = autocommit

    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        for key in options.ENGINE_OPTION_KEYS:
            params.pop(key, None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        # Only reached for the no-database alias: a plain connection, not one more pool.
        return PostgresDatabaseWrapper.get_new_connection(self, conn_params)
