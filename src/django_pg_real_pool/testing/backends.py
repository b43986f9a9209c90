"""The server processes behind a database: which one serves an alias, and ending them as a
crash or an administrator would."""

from __future__ import annotations

from typing import Any

from .janitor import superuser
from .servers.resolve import RunningServer

__all__ = ["backend_pid", "terminate_backends"]


def backend_pid(alias: str) -> int:
    """The server process serving a query on ``alias`` (to see connections being replaced)."""
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def terminate_backends(
    server: RunningServer, database: str, *, application_name: str | None = None
) -> int:
    """End every server process connected to ``database`` (but ours), of ``application_name``
    only if given; return how many were ended."""
    query = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()"
    )
    params: list[Any] = [database]
    if application_name is not None:
        query += " AND application_name = %s"
        params.append(application_name)
    with superuser(server) as conn:
        row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0
