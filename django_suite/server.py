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

    return start(ServerConfig(major=major, docker=False))
