"""The benchmark's own PostgreSQL server, started through the plugin's server layer.

The plugin starts its servers with ``max_connections=300``. The benchmark holds at most the
persistent contender's 64 connections plus every idle worker's pools at once, so it asks for
what the plan needs (never less than the plugin's 300) and checks the server took it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from django_pg_real_pool.testing.servers.cache import default_cache_dir
from django_pg_real_pool.testing.servers.errors import ServerNotFound
from django_pg_real_pool.testing.servers.local import LocalServer, find_binaries
from django_pg_real_pool.testing.servers.wheel import find_wheel_binaries

__all__ = ["DATABASE", "PLUGIN_MAX_CONNECTIONS", "bench_server", "common_settings"]

DATABASE = "bench"
PLUGIN_MAX_CONNECTIONS = 300
#: PostgreSQL keeps superuser_reserved_connections (3) out of reach of ordinary ones; the
#: orchestrator and a psql session need a few more.
_SPARE = 10


@contextmanager
def bench_server(*, needed: int, major: int | None = None) -> Iterator[LocalServer]:
    """A throwaway server (local binaries, else a wheel's) with room for ``needed``
    connections and an empty database ``bench``; stopped and removed on exit."""
    max_connections = max(PLUGIN_MAX_CONNECTIONS, needed + _SPARE)
    try:
        binaries = find_binaries(major=major)
    except ServerNotFound:
        binaries = find_wheel_binaries(major=major)
    server = LocalServer(
        binaries,
        settings={"max_connections": str(max_connections)},
        template_cache=default_cache_dir() / "templates",
    )
    try:
        server.start()
        with psycopg.connect(**server.connect_kwargs(), autocommit=True) as conn:
            row = conn.execute("SHOW max_connections").fetchone()
            if row is None or int(row[0]) < needed + _SPARE:
                raise RuntimeError(
                    f"the benchmark server runs with max_connections={row and row[0]}, "
                    f"the plan needs {needed} plus {_SPARE} spare"
                )
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield server
    finally:
        server.close()


def common_settings(server: LocalServer) -> dict[str, Any]:
    """The part of every DATABASES entry that says where the server is."""
    return {"NAME": DATABASE, "USER": server.user, "HOST": server.host, "PORT": server.port}


def server_version(server: LocalServer) -> str:
    with psycopg.connect(**server.connect_kwargs(), autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"
