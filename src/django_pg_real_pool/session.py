"""What every new physical connection gets once, before any checkout: time zone, role,
isolation level. Re-applying them at each checkout would cost a round trip per query."""

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
