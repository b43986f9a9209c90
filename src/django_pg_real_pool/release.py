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
import logging
import os
import sys
from asyncio import _get_running_loop
from typing import Any, TypeVar

from django.core.exceptions import SynchronousOnlyOperation
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.utils import ProgrammingError
from django.utils.asyncio import async_unsafe
from psycopg import IsolationLevel

from . import _internals, pools
from .contract import EngineMixin
from .cursors import ReleasingCursorDebugWrapper, ReleasingCursorWrapper, UnclosedCursorTrace
from .gate import request_boundary
from .options import ArgumentsT

T = TypeVar("T")

logger = logging.getLogger("django_pg_real_pool")

#: Django's message for an async-unsafe call made in an event loop (``async_unsafe``).
_ASYNC_UNSAFE = "You cannot call this from an async context - use a thread or sync_to_async."


class AsapReleaseMixin(EngineMixin[ArgumentsT]):
    """Mixed into a PostgreSQL ``DatabaseWrapper`` in front of Django's class: checks a
    connection out of the alias's pool when Django connects, and gives it back as soon as
    nothing needs it (see the module docstring)."""

    def __init__(self, settings_dict: dict[str, Any], alias: str = "default") -> None:
        super().__init__(settings_dict, alias)
        self._entry: pools.Entry | None = None
        self._open_cursors = 0
        self._cursor_epoch = 0
        #: Server-side cursors (``.iterator()``) opened on the connection now held: closed
        #: before it goes back, so none stays open on the server for the next borrower.
        self._server_cursors: list[Any] = []
        self._autocommit_on_checkout: bool | None = None
        self._in_pool_transition = False
        # Django's own _thread_ident is private; both are taken in the creating thread.
        self._owner_thread = _thread.get_ident()
        trace = self._config is not None and self._config.trace_unclosed_cursors
        self._cursor_trace = UnclosedCursorTrace(self.alias) if trace else None

    # -- checkout -------------------------------------------------------------------------

    def ensure_connection(self) -> None:
        # Django's, on every query here: its async_unsafe decorator finds no event loop by
        # catching a RuntimeError, and its error mapping is a context manager entered even
        # when nothing fails; the same checks, without those costs.
        if _get_running_loop() is not None and not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"):
            raise SynchronousOnlyOperation(_ASYNC_UNSAFE)
        if self.connection is None:
            try:
                self._connect()
            except Exception:
                with self.wrap_database_errors:
                    raise

    @async_unsafe
    def connect(self) -> None:
        self._connect()

    def _connect(self) -> None:
        if self.in_atomic_block and self.closed_in_transaction:
            # Django >= 5.0 raises this in ensure_connection(); 4.2 relies on the closed
            # connection staying in place, which _close() does not keep: without this, the
            # rest of the block would run on a fresh connection, outside the transaction.
            raise ProgrammingError("Cannot open a new connection in an atomic block.")
        entry = self._pool_entry()
        if entry is None:
            return super().connect()
        # Queries run while connecting (the version check, connection_created receivers)
        # must not give the connection back before the caller's cursor gets it.
        self._in_pool_transition = True
        try:
            _internals.connect_from_pool(self, self._checkout, entry)
        finally:
            self._in_pool_transition = False

    def _checkout(self, entry: pools.Entry) -> None:
        conn = entry.handle.getconn()
        self.connection = conn
        self._entry = entry
        raw = self._psycopg_connection(conn)
        level = entry.handle.isolation_level
        if level is None:
            if raw.isolation_level is not None:
                # Changed on the raw connection by someone: back to the server's default.
                raw.isolation_level = None
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
            self._set_autocommit(wanted)
        self.autocommit = wanted

    # -- release --------------------------------------------------------------------------

    def _give_back(self, conn: Any, entry: pools.Entry | None) -> None:
        # Cursors of this lease now raise InterfaceError instead of running on a connection
        # that someone else may hold next (cursors.py).
        self._cursor_epoch += 1
        if entry is None or entry.inherited:
            # Checked out in the parent process: never touch it here.
            self._server_cursors.clear()
            pools.keep_inherited(conn)
            return
        if self._server_cursors:
            self._close_server_cursors()
        try:
            entry.handle.putconn(conn)
        except Exception:
            # Django's error mapping, entered only on the way out of a failure: on every
            # return, the context manager alone cost a tenth of the engine's own work.
            with self.wrap_database_errors:
                raise

    def _close_server_cursors(self) -> None:
        cursors, self._server_cursors = self._server_cursors, []
        for cursor in cursors:
            if cursor.closed:
                continue
            try:
                cursor.close()
            except Exception as exc:
                # The connection is broken or in a failed transaction: the pool discards
                # or rolls it back, which ends the cursor too.
                logger.debug("closing a server-side cursor of %r failed: %s", self.alias, exc)

    def _release_if_idle(self) -> None:
        """Give the connection back unless a cursor, an atomic block or a checkout in
        progress still needs it."""
        if (
            self.connection is None
            or self._open_cursors
            or self.in_atomic_block
            or self._in_pool_transition
        ):
            return
        conn, entry = self.connection, self._entry
        self._in_pool_transition = True
        try:
            if not self.autocommit and not (entry is not None and entry.inherited):
                # A manual transaction just ended; the pool keeps connections in autocommit.
                self._set_autocommit(True)
            self._give_back(conn, entry)
        finally:
            self.connection = None
            self._entry = None
            self._autocommit_on_checkout = self.autocommit
            self._in_pool_transition = False

    def _cursor_closed(self, cursor: Any, epoch: int) -> None:
        if _thread.get_ident() != self._owner_thread or epoch != self._cursor_epoch:
            # Closed from another thread (a garbage collector, a shared cursor) or after the
            # connection it came from was closed: leave the release to the owner's close().
            return
        self._open_cursors -= 1
        if self._cursor_trace is not None:
            self._cursor_trace.closed(cursor)
        if self.autocommit:
            self._release_if_idle()

    def _close(self) -> None:
        if not self._asap or self.connection is None:
            _internals.close_connection(self, after=AsapReleaseMixin)
            return
        conn, entry = self.connection, self._entry
        self.connection = None
        self._entry = None
        self._give_back(conn, entry)

    def close(self) -> None:
        if self._asap:
            if self._cursor_trace is not None:
                self._cursor_trace.report()
            self._open_cursors = 0
            self._cursor_epoch += 1
            self._autocommit_on_checkout = None
        super().close()

    def close_if_unusable_or_obsolete(self) -> None:
        # Django calls this as each request begins and ends: the handovers this thread
        # deferred while running queries back to back are done now (gate.py).
        request_boundary()
        if self._asap and self.connection is None:
            # Nothing is held. Like a stock close would, forget a manual autocommit mode
            # left behind by the request.
            self._autocommit_on_checkout = None
            return
        super().close_if_unusable_or_obsolete()

    def is_usable(self) -> bool:
        if self.connection is None:
            # Given back: nothing to check (Django 4.2 would dereference None; 5.1+ does this).
            return False
        return super().is_usable()

    def close_if_health_check_failed(self) -> None:
        if self._asap:
            return  # the pool checks connections (CONN_HEALTH_CHECKS -> check_connection)
        super().close_if_health_check_failed()

    # -- transactions ---------------------------------------------------------------------

    def commit(self) -> None:
        super().commit()
        if self._asap:
            self._release_if_idle()

    def rollback(self) -> None:
        super().rollback()
        if self._asap:
            self._release_if_idle()

    def set_autocommit(
        self, autocommit: bool, force_begin_transaction_with_broken_autocommit: bool = False
    ) -> None:
        if self._asap and self.connection is None and self._autocommit_on_checkout is not None:
            # Released: record the mode for the next checkout instead of checking one out.
            self.validate_no_atomic_block()
            self._autocommit_on_checkout = autocommit
            self.autocommit = autocommit
            if autocommit:
                _internals.run_deferred_commit_hooks(self)
            return
        super().set_autocommit(autocommit, force_begin_transaction_with_broken_autocommit)
        if self._asap and autocommit:
            self._release_if_idle()

    # -- cursors --------------------------------------------------------------------------

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = super().create_cursor(name)
        if name is not None and self._asap:
            self._server_cursors.append(cursor)
        return cursor

    def make_cursor(self, cursor: Any) -> CursorWrapper:
        if not self._asap:
            return super().make_cursor(cursor)
        return self._track_cursor(ReleasingCursorWrapper(cursor, self))

    def make_debug_cursor(self, cursor: Any) -> CursorDebugWrapper:
        if not self._asap:
            return super().make_debug_cursor(cursor)
        return self._track_cursor(ReleasingCursorDebugWrapper(cursor, self))

    def _track_cursor(self, wrapped: T) -> T:
        self._open_cursors += 1
        if self._cursor_trace is not None:
            self._cursor_trace.opened(wrapped)
        return wrapped

    def _forget_inherited_connection(self) -> None:
        """In a forked child: drop the parent's connection without touching it."""
        if self.connection is not None:
            pools.keep_inherited(self.connection)
            self.connection = None
            self._entry = None
            if self.in_atomic_block:
                _internals.mark_closed_in_transaction(self)
        self._open_cursors = 0
        self._cursor_epoch += 1
        self._server_cursors.clear()
        self._autocommit_on_checkout = None


def _forget_inherited_connections() -> None:
    if "django.db" not in sys.modules:
        return
    from django.db import connections

    for wrapper in connections.all(initialized_only=True):
        if isinstance(wrapper, AsapReleaseMixin):
            wrapper._forget_inherited_connection()


pools.on_fork_in_child(_forget_inherited_connections)
