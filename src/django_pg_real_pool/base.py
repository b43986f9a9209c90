"""ENGINE ``django_pg_real_pool``: Django's PostgreSQL backend pooling through psycopg_pool,
with each connection returned to the pool as soon as possible (see ``release.py``)."""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from . import compat, engines, options

compat.require_psycopg3(engines.PSYCOPG_POOL)

# Checked before Django's backend is imported, which would otherwise fall back to psycopg2.
from django.db.backends.postgresql.base import (  # noqa: E402
    DatabaseWrapper as PostgresDatabaseWrapper,
)

from . import pools  # noqa: E402
from .counters import CheckoutCounters  # noqa: E402
from .creation import DatabaseCreation  # noqa: E402
from .features import DatabaseFeatures  # noqa: E402
from .options import PoolConfig  # noqa: E402
from .release import AsapReleaseMixin  # noqa: E402


class PsycopgPoolHandle:
    """A ``psycopg_pool.ConnectionPool`` as the registry sees it."""

    __slots__ = ("_timeout_error", "counters", "isolation_level", "raw")

    def __init__(self, raw: Any, *, isolation_level: Any) -> None:
        # Imported here: with OPTIONS["pool"] False the engine runs without psycopg_pool.
        from psycopg_pool import PoolTimeout

        self._timeout_error = PoolTimeout
        self.raw = raw
        #: Django's default is READ COMMITTED; None means "not configured".
        self.isolation_level = isolation_level
        #: psycopg_pool's own stats count connections being opened as in the pool.
        self.counters = CheckoutCounters()

    def getconn(self) -> Any:
        try:
            return self.counters.checkout(self.raw.getconn)
        except self._timeout_error as exc:
            # psycopg_pool does not say which pool timed out.
            raise self._timeout_error(f"pool {self.raw.name!r}: {exc}") from exc

    def putconn(self, conn: Any) -> None:
        self.counters.returned()
        self.raw.putconn(conn)

    def idle(self) -> int:
        available: int = self.raw.get_stats().get("pool_available", 0)
        return available

    def connections_created(self) -> tuple[int, float] | None:
        found = self.raw.get_stats()
        return found.get("connections_num", 0), found.get("connections_ms", 0) / 1000

    def close(self) -> None:
        self.raw.close()


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
        return options.pool_config(self.alias, self.settings_dict, arguments)

    def _build_pool(self, config: PoolConfig[dict[str, Any]]) -> PsycopgPoolHandle:
        pool_class = compat.require_psycopg_pool()
        pool_options = dict(config.arguments)
        connect_kwargs, configure = self._new_connection_setup(config)
        if self.settings_dict["CONN_HEALTH_CHECKS"]:
            pool_options.setdefault("check", pool_class.check_connection)
        pool_options.setdefault("name", self.alias)
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
        return PsycopgPoolHandle(pool, isolation_level=config.isolation_level)

    @property
    def pool(self) -> Any:
        """The ``psycopg_pool.ConnectionPool`` of this alias, or None (Django's API)."""
        entry = self._pool_entry()
        return None if entry is None else entry.handle.raw


__all__ = ["DatabaseWrapper", "pools"]
