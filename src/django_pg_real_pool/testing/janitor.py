"""The test run's databases: create one, drop one, drop all of a run's.

Every statement goes through the server's superuser connection; the one ``DROP`` statement
forces other sessions off, so a test that left a connection open cannot block its cleanup.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from .run import run_database_pattern
from .servers.resolve import RunningServer

__all__ = ["Database", "create_database", "drop_database", "drop_run_databases", "superuser"]

logger = logging.getLogger("django_pg_real_pool")

_DROP = "DROP DATABASE IF EXISTS {} WITH (FORCE)"


@dataclass(frozen=True)
class Database:
    """A database on the test server, and how to reach it."""

    name: str
    server: RunningServer

    def connection_settings(self) -> dict[str, Any]:
        """NAME, USER, PASSWORD, HOST, PORT for a ``DATABASES`` entry."""
        kwargs = self.server.connect_kwargs(self.name)
        return {
            "NAME": self.name,
            "USER": kwargs.get("user", ""),
            "PASSWORD": kwargs.get("password") or "",
            "HOST": kwargs.get("host", ""),
            "PORT": str(kwargs.get("port", "")),
        }


def superuser(server: RunningServer) -> psycopg.Connection[Any]:
    """An autocommit connection to the ``postgres`` database as the server's superuser."""
    return psycopg.connect(**server.connect_kwargs("postgres"), autocommit=True)


def _drop(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(sql.SQL(_DROP).format(sql.Identifier(name)))


def create_database(server: RunningServer, name: str) -> Database:
    """An empty database ``name`` (one left by an earlier run of that name is dropped first)."""
    with superuser(server) as conn:
        _drop(conn, name)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return Database(name, server)


def drop_database(server: RunningServer, name: str) -> None:
    """Drop ``name`` if it exists, ending the sessions still connected to it."""
    with superuser(server) as conn:
        _drop(conn, name)


def drop_run_databases(server: RunningServer, run_id: str) -> None:
    """Drop what the run's workers left behind (a crashed one cannot); failures are logged."""
    try:
        with superuser(server) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                [run_database_pattern(run_id)],
            ).fetchall()
            for (name,) in rows:
                _drop(conn, name)
    except Exception:
        logger.exception("could not drop the databases of run %s", run_id)
