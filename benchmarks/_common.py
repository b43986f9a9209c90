"""What the benchmark commands share: a throwaway server and closing every contender's pool."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import django
import psycopg
from django.conf import settings

from django_pg_real_pool.testing.servers import RunningServer, throwaway_server


@contextmanager
def django_on_throwaway_server(
    contenders: Any, *, database: str = "bench"
) -> Iterator[tuple[RunningServer, dict[str, dict[str, Any]]]]:
    """Start a server, configure Django with ``contenders(common_settings)`` as aliases."""
    with throwaway_server() as server, _pools_closed():
        with psycopg.connect(**server.connect_kwargs(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")
        common = {"NAME": database, "USER": server.user, "HOST": server.host, "PORT": server.port}
        databases = contenders(common)
        settings.configure(
            DATABASES={"default": {**common, "ENGINE": "django.db.backends.postgresql"}}
            | databases,
            USE_TZ=True,
        )
        django.setup()
        yield server, databases


@contextmanager
def _pools_closed() -> Iterator[None]:
    try:
        yield
    finally:
        close_every_pool()


def close_every_pool() -> None:
    """Close the pools of every contender, ours and the stock ones."""
    from django.db import connections

    from django_pg_real_pool import close_all_pools

    for connection in connections.all(initialized_only=True):
        connection.close()
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()
    try:
        from dj_db_conn_pool.core import pool_container
    except ImportError:
        pass
    else:
        pool_container.dispose()
    close_all_pools()
