"""The engine contract: what each ENGINE provides, and how a wrapper finds the pool of its
current settings.

An engine validates its settings into a ``PoolConfig`` (or None: no pool) and builds a pool
handle (``pools.PoolHandle``) from it. Settings are validated once per value of what the
validation reads (``options.validation_key``); the pool is looked up in the registry on every
checkout by the full settings key and built on first use.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Generic

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper

from . import _internals, options, pools
from .options import ArgumentsT, PoolConfig
from .session import connection_configurator


def settings_key(wrapper: BaseDatabaseWrapper) -> tuple[Any, ...]:
    """Everything a pool's connections depend on; a pool is reused only for an equal key."""
    s = wrapper.settings_dict
    return (
        s["NAME"],
        s["USER"],
        s["PASSWORD"],
        s["HOST"],
        s["PORT"],
        s["CONN_MAX_AGE"],
        s["CONN_HEALTH_CHECKS"],
        s["OPTIONS"],
        s.get("POOL_OPTIONS"),
        wrapper.timezone_name,
        # USE_TZ, read from the wrapper's cached time zone (None without USE_TZ), which
        # Django refreshes with timezone_name: settings.USE_TZ costs a LazyObject lookup on
        # every checkout.
        wrapper.timezone is None,
    )


def frozen(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """``key`` with its dicts copied, so that later in-place edits of the settings are noticed."""
    try:
        return copy.deepcopy(key)
    except Exception:
        return tuple(dict(part) if isinstance(part, dict) else part for part in key)


if TYPE_CHECKING:
    _WrapperBase = PostgresDatabaseWrapper
else:
    _WrapperBase = object


class EngineMixin(Generic[ArgumentsT], _WrapperBase):
    """The pool side of a PostgreSQL ``DatabaseWrapper``, shared by both engines.

    An engine implements ``_validate()`` and ``_build_pool(config)``, and
    ``_psycopg_connection(conn)`` if its pool hands out proxies.
    """

    def __init__(self, settings_dict: dict[str, Any], alias: str = "default") -> None:
        super().__init__(settings_dict, alias)
        self._validated_for: tuple[Any, ...] | None = None
        self._config: PoolConfig[ArgumentsT] | None = None
        config = None if self.alias == _internals.NO_DATABASE_ALIAS else self._pool_config()
        #: Whether this wrapper pools and releases as soon as possible.
        self._asap = config is not None

    # -- engine hooks ---------------------------------------------------------------------

    def _validate(self) -> PoolConfig[ArgumentsT] | None:
        raise NotImplementedError

    def _build_pool(self, config: PoolConfig[ArgumentsT]) -> pools.PoolHandle:
        raise NotImplementedError

    def _psycopg_connection(self, conn: Any) -> Any:
        """The psycopg connection behind what the pool hands out."""
        return conn

    # -- the pool -------------------------------------------------------------------------

    def _pool_config(self) -> PoolConfig[ArgumentsT] | None:
        """The validated pool configuration of the current settings; None: no pool."""
        key = options.validation_key(self.settings_dict)
        if self._validated_for != key:
            self._config = self._validate()
            self._validated_for = frozen(key)
        return self._config

    def _new_connection_setup(self, config: PoolConfig[ArgumentsT]) -> tuple[dict[str, Any], Any]:
        """For building a pool: connection parameters (in autocommit) and the callback that
        configures each new connection once."""
        connect_kwargs = self.get_connection_params()
        connect_kwargs["autocommit"] = True
        configure = connection_configurator(
            time_zone=self.timezone_name,
            set_time_zone_sql=self.ops.set_time_zone_sql(),
            role=self.settings_dict["OPTIONS"].get("assume_role"),
            isolation_level=config.isolation_level,
        )
        return connect_kwargs, configure

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        for key in options.ENGINE_OPTION_KEYS:
            params.pop(key, None)
        return params

    def _set_autocommit(self, autocommit: bool) -> None:
        # Django's PostgreSQL version, on the psycopg connection behind the pool's object.
        with self.wrap_database_errors:
            self._psycopg_connection(self.connection).autocommit = autocommit

    def _pool_entry(self) -> pools.Entry | None:
        """The pool for the current settings, built on first use; None when not pooling."""
        if self.alias == _internals.NO_DATABASE_ALIAS:
            return None
        entry = pools.lookup(self.alias, settings_key(self))
        if entry is None:
            # First use, or the settings changed.
            config = self._pool_config()
            self._asap = config is not None
            if config is None:
                return None
            entry = pools.obtain(
                self.alias, frozen(settings_key(self)), lambda: self._build_pool(config)
            )
        return entry

    def close_pool(self) -> None:
        """Close this alias's pool (Django's API); the next checkout builds a new one."""
        pools.retire(self.alias)
