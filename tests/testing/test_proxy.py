"""The TCP proxy that simulates network faults, in front of a real PostgreSQL server."""

from __future__ import annotations

import gc
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from django_pg_real_pool.testing.proxy import TcpProxy
from django_pg_real_pool.testing.servers.local import LocalServer

DEADLINE = 10.0
# psycopg, like libpq, raises a connect_timeout below 2 s to 2 s.
CONNECT_TIMEOUT = 2


@pytest.fixture
def proxy(server: LocalServer) -> Iterator[TcpProxy]:
    with TcpProxy(server.host, server.port) as proxy:
        yield proxy


@pytest.fixture
def connect(
    server: LocalServer, proxy: TcpProxy
) -> Iterator[Callable[..., psycopg.Connection[Any]]]:
    """Connect through the proxy; connections still open at the end are closed."""
    opened: list[psycopg.Connection[Any]] = []

    def connect(**kwargs: Any) -> psycopg.Connection[Any]:
        params = {**server.connect_kwargs(), "host": proxy.host, "port": proxy.port, **kwargs}
        conn = psycopg.connect(**params, autocommit=True)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still false after {DEADLINE}s")
        time.sleep(0.01)  # poll interval, not synchronisation: the deadline decides


def backend_alive(server: LocalServer, pid: int) -> bool:
    with psycopg.connect(**server.connect_kwargs(), autocommit=True) as conn:
        cur = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cur.fetchone()
    assert row is not None
    return bool(row[0])


def query_in_thread(conn: psycopg.Connection[Any]) -> tuple[threading.Thread, list[object]]:
    """Run SELECT 1 on ``conn`` in a thread; the list gets its row or the exception raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(conn.execute("SELECT 1").fetchone())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="query through the proxy", daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize(
    ("target", "listen"),
    [
        ("10.1.2.3", "127.0.0.1"),
        ("192.168.0.1", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),
        ("db.example.com", "127.0.0.1"),
        ("127.0.0.1", "0.0.0.0"),
        ("127.0.0.1", "::"),
    ],
)
def test_refuses_addresses_that_are_not_loopback(target: str, listen: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        TcpProxy(target, 5432, listen_host=listen)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_accepts_loopback_addresses(host: str) -> None:
    proxy = TcpProxy(host, 5432, listen_host=host)

    assert (proxy.state, proxy.connections) == ("forwarding", 0)


@pytest.mark.parametrize(("target_port", "listen_port"), [(0, 0), (70000, 0), (5432, -1)])
def test_refuses_ports_out_of_range(target_port: int, listen_port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        TcpProxy("127.0.0.1", target_port, listen_port=listen_port)


def test_forwards_queries(proxy: TcpProxy, connect: Callable[..., psycopg.Connection[Any]]) -> None:
    conn = connect()

    assert conn.execute("SELECT 1").fetchone() == (1,)
    assert proxy.connections == 1
    conn.close()
    proxy.wait_for_connections(0)


def test_forwards_concurrent_connections(
    proxy: TcpProxy, connect: Callable[..., psycopg.Connection[Any]]
) -> None:
    conns = [connect() for _ in range(8)]
    proxy.wait_for_connections(8)

    def queries(index: int) -> list[Any]:
        cur = conns[index].cursor()
        return [cur.execute("SELECT %s::int, %s::int", [index, i]).fetchone() for i in range(50)]

    with ThreadPoolExecutor(len(conns)) as pool:
        results = list(pool.map(queries, range(len(conns))))

    assert results == [[(index, i) for i in range(50)] for index in range(len(conns))]


def test_forwards_large_messages_both_ways(connect: Callable[..., psycopg.Connection[Any]]) -> None:
    big = "x" * 5_000_000

    row = connect().execute("SELECT length(%s::text), repeat('y', 5000000)", [big]).fetchone()

    assert row == (len(big), "y" * 5_000_000)


def test_cut_resets_open_connections(
    server: LocalServer, proxy: TcpProxy, connect: Callable[..., psycopg.Connection[Any]]
) -> None:
    conn = connect()
    pid = conn.info.backend_pid

    proxy.cut()

    assert (proxy.state, proxy.connections) == ("cut", 0)
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    wait_until(lambda: not backend_alive(server, pid), f"backend {pid} survives the cut")


@pytest.mark.timing
def test_cut_fails_new_connections_before_their_timeout(
    proxy: TcpProxy, connect: Callable[..., psycopg.Connection[Any]]
) -> None:
    proxy.cut()

    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        connect(connect_timeout=CONNECT_TIMEOUT)
    elapsed = time.monotonic() - started

    assert elapsed < CONNECT_TIMEOUT / 2, f"the refused connection took {elapsed:.3f}s"
    assert proxy.connections == 0


def test_restore_after_cut_forwards_new_connections(
    proxy: TcpProxy, connect: Callable[..., psycopg.Connection[Any]]
) -> None:
    cut_conn = connect()
    proxy.cut()

    proxy.restore()

    assert proxy.state == "forwarding"
    assert connect().execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError):
        cut_conn.execute("SELECT 1")


@pytest.mark.timing
def test_deafen_stalls_queries_until_restore_resets_them(
    proxy: TcpProxy, connect: Callable[..., psycopg.Connection[Any]]
) -> None:
    conn = connect()

    proxy.deafen()
    thread, outcome = query_in_thread(conn)
    thread.join(timeout=0.5)

    assert thread.is_alive(), f"the query returned through a deaf proxy: {outcome}"
    assert (proxy.state, proxy.connections) == ("deaf", 1)
    proxy.restore()
    thread.join(timeout=DEADLINE)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], psycopg.OperationalError)
    proxy.wait_for_connections(0)


@pytest.mark.timing
def test_deafen_drops_what_the_server_sends(
    server: LocalServer, proxy: TcpProxy, connect: Callable[..., psycopg.Connection[Any]]
) -> None:
    conn = connect()
    conn.execute("LISTEN proxy_test")

    def notify(payload: str) -> None:
        with psycopg.connect(**server.connect_kwargs(), autocommit=True) as direct:
            direct.execute("SELECT pg_notify('proxy_test', %s)", [payload])

    notify("heard")
    heard = notifications(conn, timeout=DEADLINE, stop_after=1)
    proxy.deafen()
    notify("dropped")

    assert heard == ["heard"]
    assert notifications(conn, timeout=0.5) == []


def notifications(
    conn: psycopg.Connection[Any], *, timeout: float, stop_after: int | None = None
) -> list[str]:
    """Payloads of the notifications that reach ``conn`` within ``timeout`` seconds.

    Read from the socket through libpq, so it works on psycopg 3.1 too, whose
    ``Connection.notifies()`` has no ``timeout`` (3.2+)."""
    payloads: list[str] = []
    deadline = time.monotonic() + timeout
    while stop_after is None or len(payloads) < stop_after:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([conn.fileno()], [], [], left)[0]:
            break
        conn.pgconn.consume_input()
        while (notify := conn.pgconn.notifies()) is not None:
            payloads.append(notify.extra.decode())
    return payloads


@pytest.mark.timing
def test_deafen_makes_new_connections_time_out(
    proxy: TcpProxy, connect: Callable[..., psycopg.Connection[Any]]
) -> None:
    proxy.deafen()

    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="timeout"):
        connect(connect_timeout=CONNECT_TIMEOUT)
    elapsed = time.monotonic() - started

    assert elapsed == pytest.approx(CONNECT_TIMEOUT, rel=0.2), f"timed out after {elapsed:.3f}s"
    # psycopg's timed-out attempt stays in a reference cycle with the exception it raised: its
    # socket closes when the cycle is collected, and then the proxy counts the client out.
    gc.collect()
    proxy.wait_for_connections(0)


def test_restore_resets_connections_accepted_while_deaf(proxy: TcpProxy) -> None:
    proxy.deafen()
    with socket.create_connection((proxy.host, proxy.port), timeout=DEADLINE) as sock:
        sock.sendall(b"anyone there?")
        proxy.wait_for_connections(1)

        proxy.restore()

        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    assert proxy.connections == 0


def test_restore_after_deafen_forwards_new_connections(
    proxy: TcpProxy, connect: Callable[..., psycopg.Connection[Any]]
) -> None:
    proxy.deafen()

    proxy.restore()

    assert proxy.state == "forwarding"
    assert connect().execute("SELECT 1").fetchone() == (1,)


def test_a_target_that_refuses_resets_the_client() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with TcpProxy("127.0.0.1", port) as proxy:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host=proxy.host, port=proxy.port, connect_timeout=CONNECT_TIMEOUT)

        proxy.wait_for_connections(0)


def test_close_leaves_no_thread_and_refuses_connections(server: LocalServer) -> None:
    before = set(threading.enumerate())
    proxy = TcpProxy(server.host, server.port)
    proxy.start()
    started = [thread for thread in threading.enumerate() if thread not in before]
    params = {**server.connect_kwargs(), "host": proxy.host, "port": proxy.port}
    conn = psycopg.connect(**params, autocommit=True)

    proxy.close()

    assert [thread.name for thread in started] == [f"TcpProxy {proxy.host}:{proxy.port}"]
    assert not started[0].is_alive()
    assert started[0] not in threading.enumerate()
    assert proxy.connections == 0
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=DEADLINE)
    proxy.close()  # idempotent


def test_start_is_idempotent_and_close_is_final(server: LocalServer) -> None:
    proxy = TcpProxy(server.host, server.port)
    try:
        proxy.start()
        port = proxy.port
        proxy.start()
        assert proxy.port == port
    finally:
        proxy.close()
    with pytest.raises(RuntimeError, match="closed"):
        proxy.start()


def test_wait_for_connections_names_the_count_on_timeout(proxy: TcpProxy) -> None:
    with pytest.raises(TimeoutError, match=r"has 0 open connections, not 2, after 0.01s"):
        proxy.wait_for_connections(2, timeout=0.01)
