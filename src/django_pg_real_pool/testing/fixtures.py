"""The plugin's fixtures. Each is documented on docs/pytest-plugin.md with an example."""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from . import databases, saturation
from .config import PluginConfig
from .stats import pool_stats as _pool_stats

__all__ = [
    "assert_checkout_rejected",
    "assert_checkout_times_out",
    "hold_connections",
    "no_pool_leaks",
    "pg_database",
    "pg_private_server",
    "pg_server",
    "pg_test_database",
    "pool_alias",
    "pool_settings",
    "pool_stats",
    "queue_checkouts",
    "tcp_proxy",
    "terminate_backends",
    "wait_for_waiting",
]

RUN_ID = pytest.StashKey[str]()
#: What pool_alias found checked out when it closed a test's aliases, for no_pool_leaks.
LEAKS = pytest.StashKey[list[str]]()
OWNER_PID = pytest.StashKey[int]()


def run_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "pg_real_pool_run" in workerinput:
        return str(workerinput["pg_real_pool_run"])
    return config.stash.setdefault(RUN_ID, uuid.uuid4().hex[:12])


def owner_pid(config: pytest.Config) -> int:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "pg_real_pool_owner" in workerinput:
        return int(workerinput["pg_real_pool_owner"])
    return config.stash.setdefault(OWNER_PID, os.getpid())


def worker_name(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput is not None else "main"


@dataclass(frozen=True)
class Database:
    """A database on the test server, and how to reach it."""

    name: str
    server: Any

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


def _superuser(server: Any) -> Any:
    import psycopg

    return psycopg.connect(**server.connect_kwargs("postgres"), autocommit=True)


def create_database(server: Any, name: str) -> Database:
    from psycopg import sql

    with _superuser(server) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return Database(name, server)


def drop_database(server: Any, name: str) -> None:
    from psycopg import sql

    with _superuser(server) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def pg_server(pytestconfig: pytest.Config) -> Any:
    """The test run's PostgreSQL server, shared by every xdist worker (see the page for where
    it comes from). Attributes: ``host``, ``port``, ``user``, ``password``, ``major``,
    ``source``, ``dsn(dbname)``, ``connect_kwargs(dbname)``."""
    from . import shared

    settings = PluginConfig.from_pytest(pytestconfig)
    return shared.acquire(settings, run_id=run_id(pytestconfig), owner_pid=owner_pid(pytestconfig))


@contextlib.contextmanager
def _temporary_database(server: Any, name: str) -> Iterator[Database]:
    database = create_database(server, name)
    try:
        yield database
    finally:
        _close_django_aliases_on(name)
        drop_database(server, name)


@pytest.fixture(scope="session")
def pg_database(pg_server: Any, pytestconfig: pytest.Config) -> Iterator[Database]:
    """This worker's own database on ``pg_server``, dropped at the end of the session."""
    name = f"pgrp_{run_id(pytestconfig)[:8]}_{worker_name(pytestconfig)}"
    with _temporary_database(pg_server, name) as database:
        yield database


_per_test = itertools.count()


@pytest.fixture
def pg_test_database(pg_server: Any, pytestconfig: pytest.Config) -> Iterator[Database]:
    """A fresh database for one test, dropped after it."""
    name = f"pgrp_{run_id(pytestconfig)[:8]}_{worker_name(pytestconfig)}_t{next(_per_test)}"
    with _temporary_database(pg_server, name) as database:
        yield database


@pytest.fixture
def pg_private_server(pytestconfig: pytest.Config) -> Iterator[Any]:
    """A server of this test alone, that it may stop, start and restart (``stop()``,
    ``start()``, ``restart()``); started from the cached template, so it is quick."""
    from .servers.resolve import ServerRequest, start_server

    settings = PluginConfig.from_pytest(pytestconfig)
    if settings.dsn:
        pytest.skip("pg_private_server needs server binaries; pg_dsn points at an external server")
    server = start_server(
        ServerRequest(
            bindir=settings.bindir, major=settings.major, cache_dir=settings.cache_dir, docker=False
        )
    )
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pool_settings(pg_database: Database) -> Callable[..., dict[str, Any]]:
    """``pool_settings(engine, *, database=None, via=None, max_size=4, min_size=None,
    timeout=10, max_waiting=None, max_lifetime=None, health_checks=False, **extra)``: a
    ``DATABASES`` entry for one of ``real_pool``, ``real_pool_dj``, ``django_native``,
    ``dj_db_conn_pool`` or ``readiness``, on ``pg_database`` unless ``database`` is given,
    through ``via`` (a ``tcp_proxy``) if given."""

    def make(
        engine: str,
        *,
        database: Database | None = None,
        via: Any = None,
        max_size: int = 4,
        min_size: int | None = None,
        timeout: float = 10.0,
        max_waiting: int | None = None,
        max_lifetime: float | None = None,
        health_checks: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        connection = (database or pg_database).connection_settings()
        if via is not None:
            connection |= {"HOST": via.host, "PORT": str(via.port)}
        options = databases.PoolOptions(
            max_size=max_size,
            min_size=min_size,
            timeout=timeout,
            max_waiting=max_waiting,
            max_lifetime=max_lifetime,
            health_checks=health_checks,
        )
        return databases.database_settings(engine, connection=connection, options=options, **extra)

    return make


def _ensure_django() -> None:
    from django.conf import settings

    if not settings.configured:
        import django

        settings.configure(DATABASES={}, INSTALLED_APPS=[], USE_TZ=True)
        django.setup()


_aliases = itertools.count()


def _close_alias(name: str) -> None:
    from django.db import connections

    from django_pg_real_pool import pools

    if name in connections.settings:
        connection = connections[name]
        connection.close()
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()  # type: ignore[attr-defined]
        with contextlib.suppress(AttributeError):
            del connections[name]
    pools.retire(name)
    with contextlib.suppress(ImportError):
        from dj_db_conn_pool.core import pool_container

        with pool_container.lock:
            pool = pool_container.pop(name, None)
        if pool is not None:
            pool.dispose()


def _checked_out(alias: str) -> list[str]:
    from django_pg_real_pool import pools

    entry = pools.current(alias)
    in_use = entry.handle.counters.in_use if entry is not None else 0
    return [f"{in_use} connection(s) of {alias!r} still checked out"] if in_use else []


def _close_django_aliases_on(database: str) -> None:
    """Close every pool that points at ``database`` before it is dropped."""
    import sys

    if "django.db" not in sys.modules:
        return
    from django.conf import settings

    if not settings.configured:
        return
    from django.db import connections

    for name, entry in list(connections.settings.items()):
        if entry.get("NAME") == database:
            _close_alias(name)


@pytest.fixture
def pool_alias(request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """``pool_alias(settings, *, name=None) -> alias``: add a ``DATABASES`` entry to Django
    for this test; its connections and pool are closed after the test. Configures a minimal
    Django if nothing did, and lifts pytest-django's database blocker for the test."""
    _ensure_django()
    from django.db import connections

    blocker = None
    if request.config.pluginmanager.hasplugin("django"):
        blocker = request.getfixturevalue("django_db_blocker")
        blocker.unblock()
    made: list[str] = []

    def add(settings: dict[str, Any], *, name: str | None = None) -> str:
        alias = name or f"pool{next(_aliases)}"
        if alias in connections.settings:
            raise ValueError(f"alias {alias!r} is already in DATABASES")
        entry = {
            "ATOMIC_REQUESTS": False,
            "AUTOCOMMIT": True,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "OPTIONS": {},
            "TIME_ZONE": None,
            "USER": "",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
            "TEST": {
                "CHARSET": None,
                "COLLATION": None,
                "MIGRATE": True,
                "MIRROR": None,
                "NAME": None,
            },
            **settings,
        }
        connections.settings[alias] = entry
        made.append(alias)
        return alias

    yield add
    leaks = request.node.stash.setdefault(LEAKS, [])
    for alias in made:
        leaks.extend(_checked_out(alias))
        _close_alias(alias)
        connections.settings.pop(alias, None)
    if blocker is not None:
        blocker.restore()


@pytest.fixture
def pool_stats() -> Callable[[str], Any]:
    """``pool_stats(alias)``: size, idle, in_use, waiting, timeouts, rejected, errors of the
    alias's pool in this process (both of this package's engines, and Django's native pool)."""
    return _pool_stats


@pytest.fixture
def hold_connections() -> Iterator[Callable[..., saturation.HeldConnections]]:
    """``hold_connections(alias, n)``: ``n`` other threads each check out a connection and
    hold it (inside ``atomic()``) until ``.release()`` or the end of the test."""
    held: list[saturation.HeldConnections] = []

    def hold(alias: str, n: int, *, timeout: float = 10.0) -> saturation.HeldConnections:
        holders = saturation.HeldConnections(alias, n)
        held.append(holders)
        return holders.start(timeout=timeout)

    yield hold
    for holders in held:
        holders.release()


@pytest.fixture
def queue_checkouts() -> Iterator[Callable[..., saturation.QueuedCheckouts]]:
    """``queue_checkouts(alias, k)``: ``k`` threads each try one query now; ``.join()``
    returns what each got (None or the exception)."""
    started: list[saturation.QueuedCheckouts] = []

    def queue(alias: str, k: int) -> saturation.QueuedCheckouts:
        queued = saturation.QueuedCheckouts(alias, k)
        started.append(queued)
        return queued.start()

    yield queue
    for queued in started:
        queued.join()


@pytest.fixture
def wait_for_waiting() -> Callable[..., None]:
    """``wait_for_waiting(alias, k, timeout=10)``: poll until ``k`` checkouts are queued."""
    return saturation.wait_for_waiting


@pytest.fixture
def assert_checkout_times_out() -> Callable[..., float]:
    """``assert_checkout_times_out(alias, after=seconds, tolerance=0.5, slack=1.0)``: the
    next checkout fails with the pool's timeout after about ``after`` seconds."""
    return saturation.assert_checkout_times_out


@pytest.fixture
def assert_checkout_rejected() -> Callable[..., BaseException]:
    """``assert_checkout_rejected(alias, within=1.0)``: the next checkout is refused at once
    by ``max_waiting`` (psycopg_pool's ``TooManyRequests``)."""
    return saturation.assert_checkout_rejected


@pytest.fixture
def terminate_backends(pg_server: Any, pg_database: Database) -> Callable[..., int]:
    """``terminate_backends(database=None, *, application_name=None) -> count``: end the
    server processes serving ``database`` (default: this worker's), as a crash or an
    administrator would."""

    def terminate(
        database: Database | str | None = None, *, application_name: str | None = None
    ) -> int:
        name = database.name if isinstance(database, Database) else database or pg_database.name
        query = (
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()"
        )
        params: list[Any] = [name]
        if application_name is not None:
            query += " AND application_name = %s"
            params.append(application_name)
        with _superuser(pg_server) as conn:
            row = conn.execute(query, params).fetchone()
        return int(row[0]) if row else 0

    return terminate


@pytest.fixture
def tcp_proxy(pg_server: Any) -> Iterator[Callable[..., Any]]:
    """``tcp_proxy(server=None)``: a started TCP proxy in front of ``pg_server`` (or the given
    server) with ``cut()``, ``deafen()`` and ``restore()``; pass it as ``via=`` to
    ``pool_settings``. Closed after the test."""
    from .proxy import TcpProxy

    proxies: list[TcpProxy] = []

    def make(server: Any = None) -> TcpProxy:
        target = server or pg_server
        proxy = TcpProxy(target.host, target.port)
        proxies.append(proxy)
        proxy.start()
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def no_pool_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves a connection checked out, or a pool it built open.

    Also applied by the marker ``@pytest.mark.pool_leak_check``."""
    from django_pg_real_pool import pools

    before = pools.snapshot()
    yield
    # pool_alias has closed the test's aliases by now, noting what was still checked out.
    problems = list(request.node.stash.get(LEAKS, []))
    for alias, entry in pools.snapshot().items():
        problems.extend(_checked_out(alias))
        if before.get(alias) is not entry:
            problems.append(
                f"the pool of {alias!r} built during the test is still open (close it with "
                "connections[alias].close_pool(), or add the alias with the pool_alias fixture)"
            )
    if problems:
        pytest.fail("pool leak: " + "; ".join(problems), pytrace=False)
