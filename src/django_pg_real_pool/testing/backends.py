"""The server processes behind a database: which one serves an alias, and ending them as a
crash or an administrator would."""

from __future__ import annotations

from typing import Any

from .janitor import superuser
from .saturation import wait_until
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
    server: RunningServer,
    database: str,
    *,
    application_name: str | None = None,
    wait: float = 10.0,
) -> int:
    """End every server process connected to ``database`` (but ours), of ``application_name``
    only if given, and wait until they are gone (at most ``wait`` seconds: a terminated
    backend exits asynchronously, and until it has, a query on its connection may still
    succeed); return how many were ended."""
    query = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    params: list[Any] = [database]
    if application_name is not None:
        query += " AND application_name = %s"
        params.append(application_name)
    with superuser(server) as conn:
        pids = [row[0] for row in conn.execute(query, params).fetchall()]
        ended = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM unnest(%s::int[]) AS pid WHERE pg_terminate_backend(pid)", [pids]
            ).fetchall()
        ]

        def gone() -> bool:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [ended]
            ).fetchone()
            return not row or not row[0]

        if ended:
            wait_until(
                gone,
                timeout=wait,
                what=f"the {len(ended)} backends terminated on {database!r} have exited",
            )
    return len(ended)
