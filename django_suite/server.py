"""The throwaway PostgreSQL server, from the pytest plugin's code (its one entry point here)."""

from __future__ import annotations

import os
from typing import Any

PG_VERSION_VARIABLE = "PYTEST_PG_VERSION"


def pg_major(cli_value: int | None) -> int | None:
    """``--pg-version``, else ``$PYTEST_PG_VERSION``, else None (any installed major)."""
    if cli_value is not None:
        return cli_value
    text = os.environ.get(PG_VERSION_VARIABLE, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(
            f"{PG_VERSION_VARIABLE}={text!r} is not a PostgreSQL major version; "
            "use a number such as 15, or unset it"
        )
    return int(text)


def start_server(major: int | None) -> Any:
    """A started server (stop it with ``close()``): local or wheel binaries, never Docker."""
    from django_pg_real_pool.testing.servers import ServerConfig
    from django_pg_real_pool.testing.servers import start_server as start

    server = start(ServerConfig(major=major, docker=False))
    try:
        _name_the_default_time_zone(server)
    except BaseException:
        server.close()
        raise
    return server


def _name_the_default_time_zone(server: Any) -> None:
    """Give the server the default time zone 'Etc/UTC'.

    initdb takes the machine's zone under whatever name it finds ('Etc/UTC' from Debian's
    binaries, 'UTC' from some wheels). Django's ``test_bypass_timezone_configuration`` needs
    the default to differ, by name, from the 'UTC' Django sets: with 'UTC' it fails on any
    engine, Django's own included, so the outcome would depend on where the binaries came from.
    """
    import time

    import psycopg

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(**server.connect_kwargs("postgres"), autocommit=True)

    with connect() as conn:
        conn.execute("ALTER SYSTEM SET timezone = 'Etc/UTC'")
        conn.execute("SELECT pg_reload_conf()")
    # The postmaster rereads its configuration asynchronously: poll new sessions to a deadline.
    deadline = time.monotonic() + 10
    while True:
        with connect() as conn:
            row = conn.execute("SHOW timezone").fetchone()
        if row is not None and row[0] == "Etc/UTC":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server's time zone is still {row!r} 10 s after a reload")
        time.sleep(0.01)  # polling the reload to a deadline
