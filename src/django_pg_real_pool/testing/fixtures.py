"""The plugin's fixtures. Each is documented on docs/pytest-plugin.md with an example."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import aliases, backends, config, databases, janitor, leaks, saturation
from .janitor import Database
from .pgbouncer import PgBouncer
from .proxy import TcpProxy
from .run import Run
from .servers.resolve import RunningServer
from .stats import PoolStats
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
    "pgbouncer",
    "pool_alias",
    "pool_settings",
    "pool_stats",
    "queue_checkouts",
    "tcp_proxy",
    "terminate_backends",
    "wait_for_waiting",
]

#: How to stop the threads that hold_connections and queue_checkouts started for a test.
_PRESSURE = pytest.StashKey[list[Callable[[], object]]]()


def _relieve(node: pytest.Item) -> None:
    """Stop the test's holding and queued threads (again: stopping is idempotent)."""
    for stop in node.stash.get(_PRESSURE, []):
        stop()


@pytest.fixture(scope="session")
def pg_server(pytestconfig: pytest.Config) -> RunningServer:
    """The test run's PostgreSQL server, shared by every xdist worker (see the page for where
    it comes from). Attributes: ``host``, ``port``, ``user``, ``password``, ``major``,
    ``source``, ``dsn(dbname)``, ``connect_kwargs(dbname)``."""
    from . import shared

    return shared.acquire(config.read(pytestconfig), Run.of(pytestconfig))


@contextlib.contextmanager
def _temporary_database(server: RunningServer, name: str) -> Iterator[Database]:
    database = janitor.create_database(server, name)
    try:
        yield database
    finally:
        aliases.close_aliases_on(name)
        janitor.drop_database(server, name)


@pytest.fixture(scope="session")
def pg_database(pg_server: RunningServer, pytestconfig: pytest.Config) -> Iterator[Database]:
    """This worker's own database on ``pg_server``, dropped at the end of the session."""
    name = Run.of(pytestconfig).database_name()
    with _temporary_database(pg_server, name) as database:
        yield database


_per_test = itertools.count()


@pytest.fixture
def pg_test_database(pg_server: RunningServer, pytestconfig: pytest.Config) -> Iterator[Database]:
    """A fresh database for one test, dropped after it."""
    name = Run.of(pytestconfig).database_name(test=next(_per_test))
    with _temporary_database(pg_server, name) as database:
        yield database


@pytest.fixture
def pg_private_server(pytestconfig: pytest.Config) -> Iterator[RunningServer]:
    """A server of this test alone, that it may stop, start and restart (``stop()``,
    ``start()``, ``restart()``); started from the cached template, so it is quick."""
    from .servers.resolve import start_server

    settings = config.read(pytestconfig)
    if settings.dsn:
        pytest.skip("pg_private_server needs server binaries; pg_dsn points at an external server")
    server = start_server(dataclasses.replace(settings, docker=False))
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
    through ``via`` (a ``tcp_proxy`` or the ``pgbouncer``) if given."""

    def make(
        engine: str,
        *,
        database: Database | None = None,
        via: TcpProxy | PgBouncer | None = None,
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


_aliases = itertools.count()


@pytest.fixture
def pool_alias(request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """``pool_alias(settings, *, name=None) -> alias``: add a ``DATABASES`` entry to Django
    for this test; its connections and pool are closed after the test. Configures a minimal
    Django if nothing did, and lifts pytest-django's database blocker for the test."""
    aliases.ensure_django()
    blocker = None
    if request.config.pluginmanager.hasplugin("django"):
        blocker = request.getfixturevalue("django_db_blocker")
        blocker.unblock()
    made: list[str] = []

    def add(settings: dict[str, Any], *, name: str | None = None) -> str:
        alias = aliases.add_alias(settings, name=name or f"pool{next(_aliases)}")
        made.append(alias)
        return alias

    yield add
    try:
        _relieve(request.node)  # threads of hold_connections set up before us hold connections
    finally:
        for alias in made:
            leaks.note_closed_alias(request.node, alias)
            aliases.remove_alias(alias)
        if blocker is not None:
            blocker.restore()


@pytest.fixture
def pool_stats() -> Callable[[str], PoolStats]:
    """``pool_stats(alias)``: size, idle, in_use, waiting, timeouts, rejected, errors of the
    alias's pool in this process (both of this package's engines, and Django's native pool)."""
    return _pool_stats


@pytest.fixture
def hold_connections(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., saturation.HeldConnections]]:
    """``hold_connections(alias, n)``: ``n`` other threads each check out a connection and
    hold it (inside ``atomic()``) until ``.release()`` or the end of the test."""
    held: list[saturation.HeldConnections] = []

    def hold(alias: str, n: int, *, timeout: float = 10.0) -> saturation.HeldConnections:
        holders = saturation.HeldConnections(alias, n)
        held.append(holders)
        request.node.stash.setdefault(_PRESSURE, []).append(holders.release)
        return holders.start(timeout=timeout)

    yield hold
    for holders in held:
        holders.release()


@pytest.fixture
def queue_checkouts(
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., saturation.QueuedCheckouts]]:
    """``queue_checkouts(alias, k)``: ``k`` threads each try one query now; ``.join()``
    returns what each got (None or the exception)."""
    started: list[saturation.QueuedCheckouts] = []

    def queue(alias: str, k: int) -> saturation.QueuedCheckouts:
        queued = saturation.QueuedCheckouts(alias, k)
        started.append(queued)
        request.node.stash.setdefault(_PRESSURE, []).append(queued.join)
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
def terminate_backends(pg_server: RunningServer, pg_database: Database) -> Callable[..., int]:
    """``terminate_backends(database=None, *, application_name=None) -> count``: end the
    server processes serving ``database`` (default: this worker's), as a crash or an
    administrator would, and wait until they are gone."""

    def terminate(
        database: Database | str | None = None, *, application_name: str | None = None
    ) -> int:
        name = database.name if isinstance(database, Database) else database or pg_database.name
        return backends.terminate_backends(pg_server, name, application_name=application_name)

    return terminate


@pytest.fixture
def tcp_proxy(pg_server: RunningServer) -> Iterator[Callable[..., TcpProxy]]:
    """``tcp_proxy(server=None)``: a started TCP proxy in front of ``pg_server`` (or the given
    server) with ``cut()``, ``deafen()`` and ``restore()``; pass it as ``via=`` to
    ``pool_settings``. Closed after the test."""
    proxies: list[TcpProxy] = []

    def make(server: RunningServer | None = None) -> TcpProxy:
        target = server or pg_server
        proxy = TcpProxy(target.host, target.port)
        proxies.append(proxy)
        proxy.start()
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def pgbouncer(pg_server: RunningServer) -> Iterator[PgBouncer]:
    """PgBouncer in transaction pooling mode in front of ``pg_server``, on a free port of
    127.0.0.1 (``host``, ``port``; pass it as ``via=`` to ``pool_settings``); stopped, and its
    directory removed, after the test."""
    bouncer = PgBouncer(pg_server)
    try:
        yield bouncer.start()
    finally:
        bouncer.close()


@pytest.fixture
def no_pool_leaks(request: pytest.FixtureRequest) -> None:
    """Fail the test if it leaves a connection checked out, or a pool it built open.

    Checked once every fixture of the test is torn down, whatever their order. Also applied by
    the marker ``@pytest.mark.pool_leak_check``."""
    leaks.request_check(request.node)
