"""The as-soon-as-possible release mechanism both engines share.

A connection goes back to its pool:

* when the last open cursor closes, outside a transaction (autocommit, no ``atomic()``);
* after ``commit()``/``rollback()`` outside ``atomic()`` (the outermost block ending, or a
  manual transaction under ``set_autocommit(False)``, whose mode is restored at the next
  checkout);
* at Django's usual ``close()`` (end of request), whatever is still open.

It is never given back from a garbage collector or from another thread: a cursor that is not
closed keeps its connection until ``close()``.
"""

from __future__ import annotations

import _thread
import copy
import logging
import time
import traceback
from typing import Any

from django.conf import settings
from django.db.backends.base.base import NO_DB_ALIAS, BaseDatabaseWrapper
from django.db.backends.postgresql.base import CursorDebugWrapper as PostgresCursorDebugWrapper
from django.db.backends.signals import connection_created
from django.db.backends.utils import CursorWrapper
from psycopg import IsolationLevel

from . import options, pools
from .session import connection_configurator

logger = logging.getLogger("django_pg_real_pool")


class _ReleaseOnClose:
    """Tells its connection when it is closed, exactly once."""

    cursor: Any
    db: Any

    def __init__(self, cursor: Any, db: Any) -> None:
        super().__init__(cursor, db)  # type: ignore[call-arg]
        self._epoch: int | None = db._cursor_epoch

    def close(self) -> Any:
        try:
            return self.cursor.close()
        finally:
            epoch, self._epoch = self._epoch, None
            if epoch is not None:
                self.db._cursor_closed(self, epoch)


class ReleasingCursorWrapper(_ReleaseOnClose, CursorWrapper):
    """Django's cursor wrapper, releasing the connection when closed."""


class ReleasingCursorDebugWrapper(_ReleaseOnClose, PostgresCursorDebugWrapper):
    """Django's debug (query-logging) cursor wrapper, releasing the connection when closed."""


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
        settings.USE_TZ,
    )


def frozen_settings_key(wrapper: BaseDatabaseWrapper) -> tuple[Any, ...]:
    """``settings_key`` with its dicts copied, so later in-place edits are noticed."""
    key = settings_key(wrapper)
    try:
        return copy.deepcopy(key)
    except Exception:
        return tuple(dict(part) if isinstance(part, dict) else part for part in key)


class AsapReleaseMixin:
    """Mixed into a PostgreSQL ``DatabaseWrapper`` in front of Django's class.

    The engine provides ``_pooling_requested()`` (validates settings, says whether to pool)
    and ``_build_pool()``, and ``_psycopg_connection(conn)`` if its pool wraps connections.
    """

    # Attributes of BaseDatabaseWrapper, declared for the type checker.
    alias: str
    settings_dict: dict[str, Any]
    connection: Any
    autocommit: bool
    in_atomic_block: bool
    run_commit_hooks_on_set_autocommit_on: bool
    _thread_ident: int

    def __init__(self, settings_dict: dict[str, Any], alias: str = "default") -> None:
        super().__init__(settings_dict, alias)  # type: ignore[call-arg]
        self._entry: pools.Entry | None = None
        self._open_cursors = 0
        self._cursor_epoch = 0
        self._autocommit_on_checkout: bool | None = None
        self._in_pool_transition = False
        self._asap = self.alias != NO_DB_ALIAS and self._pooling_requested()
        trace = self._asap and self.settings_dict["OPTIONS"].get("trace_unclosed_cursors")
        self._cursor_origins: dict[int, traceback.StackSummary] | None = {} if trace else None

    # -- engine hooks ---------------------------------------------------------------------

    def _pooling_requested(self) -> bool:
        raise NotImplementedError

    def _build_pool(self) -> pools.PoolHandle:
        raise NotImplementedError

    def _psycopg_connection(self, conn: Any) -> Any:
        """The psycopg connection behind what the pool hands out."""
        return conn

    def _new_connection_setup(self) -> tuple[dict[str, Any], Any, Any]:
        """For building a pool: connection parameters (in autocommit), the callback that
        configures each new connection once, and the configured isolation level."""
        settings_options = self.settings_dict["OPTIONS"]
        connect_kwargs: dict[str, Any] = self.get_connection_params()  # type: ignore[attr-defined]
        connect_kwargs["autocommit"] = True
        isolation_level = options.isolation_level(self.alias, settings_options)
        configure = connection_configurator(
            time_zone=self.timezone_name,  # type: ignore[attr-defined]
            set_time_zone_sql=self.ops.set_time_zone_sql(),  # type: ignore[attr-defined]
            role=settings_options.get("assume_role"),
            isolation_level=isolation_level,
        )
        return connect_kwargs, configure, isolation_level

    # -- the pool -------------------------------------------------------------------------

    def _pool_entry(self) -> pools.Entry | None:
        """The pool for the current settings, built on first use; None when not pooling."""
        if self.alias == NO_DB_ALIAS:
            return None
        key = settings_key(self)  # type: ignore[arg-type]
        entry = pools.lookup(self.alias, key)
        if entry is None:
            # First use, or the settings changed: validate them again before building.
            self._asap = self._pooling_requested()
            if not self._asap:
                return None
            entry = pools.obtain(
                self.alias,
                frozen_settings_key(self),  # type: ignore[arg-type]
                self._build_pool,
            )
        return entry

    def close_pool(self) -> None:
        """Close this alias's pool (Django's API); the next checkout builds a new one."""
        pools.retire(self.alias)

    # -- checkout -------------------------------------------------------------------------

    def connect(self) -> None:
        entry = self._pool_entry()
        if entry is None:
            return super().connect()  # type: ignore[misc,no-any-return]
        # Django's BaseDatabaseWrapper.connect() (identical from 4.2 to 6.1), minus the work
        # that each physical connection got once already (see session.py).
        self.check_settings()  # type: ignore[attr-defined]
        self.in_atomic_block = False
        self.savepoint_ids: list[Any] = []
        self.atomic_blocks: list[Any] = []
        self.needs_rollback = False
        self.health_check_enabled = self.settings_dict["CONN_HEALTH_CHECKS"]
        self.close_at = time.monotonic()  # CONN_MAX_AGE is 0
        self.closed_in_transaction = False
        self.errors_occurred = False
        self.health_check_done = True
        # Queries run while connecting (the version check, connection_created receivers)
        # must not give the connection back before the caller's cursor gets it.
        self._in_pool_transition = True
        try:
            self._checkout(entry)
            BaseDatabaseWrapper.init_connection_state(self)  # type: ignore[arg-type]
            connection_created.send(sender=self.__class__, connection=self)
        finally:
            self._in_pool_transition = False
        self.run_on_commit: list[Any] = []

    def _checkout(self, entry: pools.Entry) -> None:
        conn = entry.handle.getconn()
        self.connection = conn
        self._entry = entry
        raw = self._psycopg_connection(conn)
        level = entry.handle.isolation_level
        if level is None:
            self.isolation_level = IsolationLevel.READ_COMMITTED
        else:
            if raw.isolation_level != level:
                # Changed on the raw connection by someone: do not let it leak to others.
                raw.isolation_level = level
            self.isolation_level = level
        wanted = self._autocommit_on_checkout
        if wanted is None:
            wanted = self.settings_dict["AUTOCOMMIT"]
        self._autocommit_on_checkout = None
        if raw.autocommit != wanted:
            self._set_autocommit(wanted)  # type: ignore[attr-defined]
        self.autocommit = wanted

    # -- release --------------------------------------------------------------------------

    def _give_back(self, conn: Any, entry: pools.Entry | None) -> None:
        if entry is None or entry.inherited:
            # Checked out in the parent process: never touch it here.
            pools.keep_inherited(conn)
            return
        with self.wrap_database_errors:  # type: ignore[attr-defined]
            entry.handle.putconn(conn)

    def _release(self) -> None:
        conn, entry = self.connection, self._entry
        self._in_pool_transition = True
        try:
            if not self.autocommit and not (entry is not None and entry.inherited):
                # A manual transaction just ended; the pool keeps connections in autocommit.
                self._set_autocommit(True)  # type: ignore[attr-defined]
            self._give_back(conn, entry)
        finally:
            self.connection = None
            self._entry = None
            self._autocommit_on_checkout = self.autocommit
            self._in_pool_transition = False

    def _release_if_idle(self) -> None:
        if (
            self.connection is not None
            and not self._open_cursors
            and not self.in_atomic_block
            and not self._in_pool_transition
        ):
            self._release()

    def _cursor_closed(self, cursor: Any, epoch: int) -> None:
        if _thread.get_ident() != self._thread_ident or epoch != self._cursor_epoch:
            # Closed from another thread (a garbage collector, a shared cursor) or after the
            # connection it came from was closed: leave the release to the owner's close().
            return
        self._open_cursors -= 1
        if self._cursor_origins is not None:
            self._cursor_origins.pop(id(cursor), None)
        if self.autocommit:
            self._release_if_idle()

    def _close(self) -> None:
        if not self._asap or self.connection is None:
            return super()._close()  # type: ignore[misc,no-any-return]
        conn, entry = self.connection, self._entry
        self.connection = None
        self._entry = None
        self._give_back(conn, entry)
        return None

    def close(self) -> None:
        if self._asap:
            self._report_unclosed_cursors()
            self._open_cursors = 0
            self._cursor_epoch += 1
            self._autocommit_on_checkout = None
        super().close()  # type: ignore[misc]

    def close_if_unusable_or_obsolete(self) -> None:
        if self._asap and self.connection is None:
            # Nothing is held. Like a stock close would, forget a manual autocommit mode
            # left behind by the request.
            self._autocommit_on_checkout = None
            return
        super().close_if_unusable_or_obsolete()  # type: ignore[misc]

    def close_if_health_check_failed(self) -> None:
        if self._asap:
            return  # the pool checks connections (CONN_HEALTH_CHECKS -> check_connection)
        super().close_if_health_check_failed()  # type: ignore[misc]

    # -- transactions ---------------------------------------------------------------------

    def commit(self) -> None:
        super().commit()  # type: ignore[misc]
        if self._asap:
            self._release_if_idle()

    def rollback(self) -> None:
        super().rollback()  # type: ignore[misc]
        if self._asap:
            self._release_if_idle()

    def set_autocommit(
        self, autocommit: bool, force_begin_transaction_with_broken_autocommit: bool = False
    ) -> None:
        if self._asap and self.connection is None and self._autocommit_on_checkout is not None:
            # Released: record the mode for the next checkout instead of checking one out.
            self.validate_no_atomic_block()  # type: ignore[attr-defined]
            self._autocommit_on_checkout = autocommit
            self.autocommit = autocommit
            if autocommit and self.run_commit_hooks_on_set_autocommit_on:
                self.run_and_clear_commit_hooks()  # type: ignore[attr-defined]
                self.run_commit_hooks_on_set_autocommit_on = False
            return
        super().set_autocommit(  # type: ignore[misc]
            autocommit, force_begin_transaction_with_broken_autocommit
        )
        if self._asap and autocommit:
            self._release_if_idle()

    # -- cursors --------------------------------------------------------------------------

    def _track_cursor(self, wrapped: Any) -> Any:
        self._open_cursors += 1
        if self._cursor_origins is not None:
            # Drop the frames of Django's cursor() and of this module.
            stack = traceback.extract_stack()[:-4]
            self._cursor_origins[id(wrapped)] = traceback.StackSummary.from_list(stack)
        return wrapped

    def make_cursor(self, cursor: Any) -> Any:
        if not self._asap:
            return super().make_cursor(cursor)  # type: ignore[misc]
        return self._track_cursor(ReleasingCursorWrapper(cursor, self))

    def make_debug_cursor(self, cursor: Any) -> Any:
        if not self._asap:
            return super().make_debug_cursor(cursor)  # type: ignore[misc]
        return self._track_cursor(ReleasingCursorDebugWrapper(cursor, self))

    def _report_unclosed_cursors(self) -> None:
        if not self._cursor_origins:
            return
        for origin in self._cursor_origins.values():
            logger.warning(
                "a cursor of %r was never closed, so it held a pooled connection until the "
                "connection was closed; close cursors (with connection.cursor() as cursor: ...) "
                "to return the connection after each query. It was opened at:\n%s",
                self.alias,
                "".join(origin.format()),
            )
        self._cursor_origins.clear()

    def _forget_inherited_connection(self) -> None:
        """In a forked child: drop the parent's connection without touching it."""
        if self.connection is not None:
            pools.keep_inherited(self.connection)
            self.connection = None
            self._entry = None
            if self.in_atomic_block:
                self.closed_in_transaction = True
                self.needs_rollback = True
        self._open_cursors = 0
        self._cursor_epoch += 1
        self._autocommit_on_checkout = None


def _forget_inherited_connections() -> None:
    import sys

    if "django.db" not in sys.modules:
        return
    from django.db import connections

    for wrapper in connections.all(initialized_only=True):
        if isinstance(wrapper, AsapReleaseMixin):
            wrapper._forget_inherited_connection()


pools.on_fork_in_child(_forget_inherited_connections)
