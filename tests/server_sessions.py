"""The server sessions behind a database, seen from the server: what the fault tests count."""

from __future__ import annotations

from django_pg_real_pool.testing.janitor import Database, superuser


def sessions(database: Database) -> set[int]:
    """The backend pids of the sessions connected to ``database`` (but the one asking)."""
    with superuser(database.server) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database.name],
        ).fetchall()
    return {row[0] for row in rows}
