"""Cursor wrappers that tell their connection when they close, and the optional trace of
where cursors that were never closed came from (``OPTIONS['trace_unclosed_cursors']``)."""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import psycopg
from django.db import InterfaceError
from django.db.backends.postgresql.base import CursorDebugWrapper as PostgresCursorDebugWrapper
from django.db.backends.utils import CursorWrapper

logger = logging.getLogger("django_pg_real_pool")


class CursorOwner(Protocol):
    """The connection side of a releasing cursor (``release.AsapReleaseMixin``)."""

    #: Changes whenever the connection goes back to the pool: a cursor of an older epoch is
    #: forgotten, and raises if used.
    _cursor_epoch: int
    alias: str

    def _cursor_closed(self, cursor: Any, epoch: int) -> None: ...


if TYPE_CHECKING:
    _CursorBase = CursorWrapper
else:
    _CursorBase = object


class _ReleaseOnClose(_CursorBase):
    """Tells its connection when it is closed, exactly once; refuses to execute once its
    connection went back to the pool (a "stale" cursor)."""

    def __init__(self, cursor: Any, db: Any) -> None:
        super().__init__(cursor, db)
        self._owner: CursorOwner = db
        self._epoch: int | None = db._cursor_epoch

    def execute(self, sql: Any, params: Any = None) -> Any:
        if self._epoch != self._owner._cursor_epoch and self._epoch is not None:
            self._stale()
        return super().execute(sql, params)

    def executemany(self, sql: Any, param_list: Any) -> Any:
        if self._epoch != self._owner._cursor_epoch and self._epoch is not None:
            self._stale()
        return super().executemany(sql, param_list)

    def callproc(self, procname: Any, params: Any = None, kparams: Any = None) -> Any:
        if self._epoch != self._owner._cursor_epoch and self._epoch is not None:
            self._stale()
        return super().callproc(procname, params, kparams)

    def _stale(self) -> NoReturn:
        # A closed cursor raises InterfaceError too (psycopg's, through Django's wrapper).
        message = (
            f"this cursor of {self._owner.alias!r} was kept after its connection went back to "
            "the pool (at the end of the request or connection.close()), where another request "
            "may hold it now; open a new cursor"
        )
        raise InterfaceError(message) from psycopg.InterfaceError(message)

    def close(self) -> Any:
        try:
            if self.cursor.closed:
                # Closed already, maybe by the release (a server-side cursor): psycopg would
                # still take the lock of a connection that went back to the pool.
                return None
            return self.cursor.close()
        finally:
            epoch, self._epoch = self._epoch, None
            if epoch is not None:
                self._owner._cursor_closed(self, epoch)


class ReleasingCursorWrapper(_ReleaseOnClose, CursorWrapper):
    """Django's cursor wrapper, releasing the connection when closed."""


class ReleasingCursorDebugWrapper(_ReleaseOnClose, PostgresCursorDebugWrapper):
    """Django's debug (query-logging) cursor wrapper, releasing the connection when closed."""


class UnclosedCursorTrace:
    """Where each open cursor of one connection was opened, to name the ones never closed."""

    __slots__ = ("_alias", "_origins")

    def __init__(self, alias: str) -> None:
        self._alias = alias
        self._origins: dict[int, traceback.StackSummary] = {}

    def opened(self, cursor: Any) -> None:
        # Drop the frames of Django's cursor() and of the release mechanism.
        stack = traceback.extract_stack()[:-5]
        self._origins[id(cursor)] = traceback.StackSummary.from_list(stack)

    def closed(self, cursor: Any) -> None:
        self._origins.pop(id(cursor), None)

    def report(self) -> None:
        """Log every cursor still open, then forget them."""
        for origin in self._origins.values():
            logger.warning(
                "a cursor of %r was never closed, so it held a pooled connection until the "
                "connection was closed; close cursors (with connection.cursor() as cursor: ...) "
                "to return the connection after each query. It was opened at:\n%s",
                self._alias,
                "".join(origin.format()),
            )
        self._origins.clear()
