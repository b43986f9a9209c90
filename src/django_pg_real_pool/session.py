"""What every new physical connection gets once, before any checkout: time zone, role,
isolation level (re-applying them at each checkout would cost a round trip per query); and,
opt-in, the reset of a connection given back (``reset_on_return``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import sql


def connection_configurator(
    *, time_zone: str | None, set_time_zone_sql: str, role: str | None, isolation_level: Any
) -> Callable[[Any], None]:
    """A callback that configures a new psycopg connection (in autocommit mode)."""

    def configure(conn: Any) -> None:
        if time_zone and conn.info.parameter_status("TimeZone") != time_zone:
            conn.execute(set_time_zone_sql, [time_zone])
        if role:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Literal(role)))
        if isolation_level is not None:
            conn.isolation_level = isolation_level

    return configure


def session_reset(statement: str, configure: Callable[[Any], None]) -> Callable[[Any], None]:
    """A callback that runs ``statement`` on a psycopg connection given back (idle, no
    transaction), then gives it what ``configure`` gives a new connection: ``DISCARD ALL``
    and ``RESET ALL`` also reset the time zone and role set up once per connection."""

    def reset(conn: Any) -> None:
        if not conn.autocommit:
            conn.autocommit = True  # DISCARD cannot run in a transaction block
        # Never prepared: the statement may hold several commands.
        conn.execute(statement, prepare=False)
        configure(conn)

    return reset
