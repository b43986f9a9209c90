"""What every kind of server derives from its ``connect_kwargs()``: its libpq DSN."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from psycopg.conninfo import make_conninfo


class HasDsn(ABC):
    """``dsn()`` written once, from the server's ``connect_kwargs()``."""

    @abstractmethod
    def connect_kwargs(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect()`` for ``dbname`` on this server."""

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq keyword/value conninfo string (``host=... port=... dbname=...``) for
        ``dbname`` on this server; ``psycopg.connect()`` and ``pg_dump -d`` take it."""
        return make_conninfo("", **self.connect_kwargs(dbname))
