"""The reuse window (OPTIONS['reuse_window'], POOL_OPTIONS['REUSE_WINDOW']): a connection given
back idle goes to the next checkout without a round trip through the pool, and still goes back
to the pool within the window, where max_lifetime/RECYCLE, max_idle and the checks apply."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db import connections

from django_pg_real_pool import engines, in_force
from django_pg_real_pool import gate as gate_module
from django_pg_real_pool.gate import FairGate, request_boundary
from django_pg_real_pool.testing.backends import backend_pid
from django_pg_real_pool.testing.saturation import HeldConnections, wait_until
from server_sessions import sessions
from tight_pools import make_one_checkout_wait

PSYCOPG, DJ = engines.PSYCOPG_POOL, engines.DJ_DB_CONN_POOL


def _in_force(engine: str, **settings: Any) -> dict[str, Any]:
    entry = {"ENGINE": engine, "NAME": "app", **settings}
    if engine == PSYCOPG:
        entry.setdefault("OPTIONS", {}).setdefault("pool", True)
    return in_force.pool_settings("web", entry)


def _refused(engine: str, message: str, **settings: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        _in_force(engine, **settings)


# -- settings -------------------------------------------------------------------------------


def test_the_default_window_is_half_a_second_on_both_engines() -> None:
    assert _in_force(PSYCOPG)["reuse_window"] == 0.5
    assert _in_force(DJ)["REUSE_WINDOW"] == 0.5


@pytest.mark.parametrize("value", [-1, "0.5", True, float("inf"), float("nan")])
def test_a_window_that_is_not_seconds_is_refused(value: Any) -> None:
    _refused(
        PSYCOPG,
        "DATABASES['web']['OPTIONS']['reuse_window'] must be a number of seconds >= 0 "
        f"(0: every connection given back goes back through the pool), not {value!r}.",
        OPTIONS={"pool": True, "reuse_window": value},
    )
    _refused(
        DJ,
        "DATABASES['web']['POOL_OPTIONS']['REUSE_WINDOW'] must be a number of seconds >= 0 "
        f"(0: every connection given back goes back through the pool), not {value!r}.",
        POOL_OPTIONS={"REUSE_WINDOW": value},
    )


def test_a_reset_on_return_turns_the_default_window_off() -> None:
    assert _in_force(PSYCOPG, OPTIONS={"pool": True, "reset_on_return": True})["reuse_window"] == 0
    assert _in_force(DJ, POOL_OPTIONS={"RESET_ON_RETURN": True})["REUSE_WINDOW"] == 0
    reset_callback = {"pool": {"reset": lambda conn: None}}
    assert _in_force(PSYCOPG, OPTIONS=reset_callback)["reuse_window"] == 0


def test_a_window_with_a_reset_on_return_is_refused() -> None:
    _refused(
        PSYCOPG,
        "DATABASES['web']['OPTIONS']['reuse_window'] is 0.5, but reset_on_return ('DISCARD ALL') "
        "runs on each connection given back, and a connection reused within the window would "
        "skip it.",
        OPTIONS={"pool": True, "reset_on_return": True, "reuse_window": 0.5},
    )
    _refused(
        PSYCOPG,
        "but DATABASES['web']['OPTIONS']['pool']['reset'] runs on each connection given back",
        OPTIONS={"pool": {"reset": lambda conn: None}, "reuse_window": 1},
    )
    _refused(
        DJ,
        "DATABASES['web']['POOL_OPTIONS']['REUSE_WINDOW'] is 0.2, but RESET_ON_RETURN "
        "('DISCARD ALL') runs on each connection given back",
        POOL_OPTIONS={"RESET_ON_RETURN": True, "REUSE_WINDOW": 0.2},
    )
    # 0 says the same as the reset: accepted.
    assert _in_force(DJ, POOL_OPTIONS={"RESET_ON_RETURN": True, "REUSE_WINDOW": 0})[
        "REUSE_WINDOW"
    ] == (0)


def test_the_dj_engine_window_stays_within_the_pre_ping_skip_window() -> None:
    _refused(
        DJ,
        "DATABASES['web']['POOL_OPTIONS']['REUSE_WINDOW'] is 2, longer than PRE_PING_SKIP_WINDOW "
        "(0.5): a connection reused within the window is not pinged",
        POOL_OPTIONS={"REUSE_WINDOW": 2},
    )
    assert _in_force(DJ, POOL_OPTIONS={"PRE_PING_SKIP_WINDOW": 0.1})["REUSE_WINDOW"] == 0.1
    assert _in_force(DJ, POOL_OPTIONS={"PRE_PING_SKIP_WINDOW": 0})["REUSE_WINDOW"] == 0
    no_ping = {"PRE_PING": False, "REUSE_WINDOW": 2}
    assert _in_force(DJ, POOL_OPTIONS=no_ping)["REUSE_WINDOW"] == 2


def test_each_engine_names_the_other_engines_key() -> None:
    _refused(
        DJ,
        "DATABASES['web']['OPTIONS']['reuse_window'] belongs to ENGINE 'django_pg_real_pool'; "
        "with ENGINE 'django_pg_real_pool.dj_db_conn_pool' set "
        "DATABASES['web']['POOL_OPTIONS']['REUSE_WINDOW'] instead.",
        OPTIONS={"reuse_window": 0.5},
    )


# -- the gate's shelf -----------------------------------------------------------------------


class _Pool:
    """What a gate gives connections back to."""

    def __init__(self) -> None:
        self.given_back: list[str] = []

    def give_back(self, conn: Any) -> None:
        self.given_back.append(conn)


def _shelve(gate: FairGate, conn: Any) -> bool:
    """Give back an idle connection that came out of the pool just now."""
    gate.taken_from_pool(conn)
    return gate.shelve(conn, idle=True)


def test_the_warmest_connection_is_handed_out_first() -> None:
    gate = FairGate(3, window=60, give_back=_Pool().give_back)
    for _ in range(3):
        assert gate.enter(1) == (None, 0.0)
    for conn in ("a", "b", "c"):
        assert _shelve(gate, conn)
    assert gate.shelved == 3
    assert [gate.enter(1)[0] for _ in range(3)] == ["c", "b", "a"]
    assert gate.shelved == 0


def test_a_stale_shelf_goes_back_to_the_pool_at_the_next_checkout() -> None:
    pool = _Pool()
    gate = FairGate(2, window=0.05, give_back=pool.give_back)
    gate.enter(1), gate.enter(1)
    _shelve(gate, "a"), _shelve(gate, "b")
    shelved = time.monotonic()
    # The age of the shelf is what is tested, not a synchronisation.
    wait_until(lambda: time.monotonic() - shelved > 0.06, what="the window passed")
    with gate._lock:  # the sweeper must not be the one that finds them here
        gate._swept = True
    conn, _ = gate.enter(1)
    assert conn is None or pool.given_back, "a stale connection was handed out"
    assert sorted(pool.given_back) == ["a", "b"]


def test_a_connection_given_back_goes_to_the_oldest_waiter_with_its_slot() -> None:
    pool = _Pool()
    gate = FairGate(1, window=60, give_back=pool.give_back)
    gate.enter(1)
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(gate.enter(10)[0]), daemon=True)
    waiter.start()
    wait_until(lambda: gate.waiting == 1, what="a waiter")
    assert _shelve(gate, "a")
    waiter.join(10)
    assert got == ["a"]
    assert gate.shelved == 0
    assert not pool.given_back


def test_the_sweeper_gives_an_idle_shelf_back() -> None:
    pool = _Pool()
    gate = FairGate(2, window=0.05, give_back=pool.give_back)
    gate.enter(1), gate.enter(1)
    _shelve(gate, "a"), _shelve(gate, "b")
    wait_until(lambda: len(pool.given_back) == 2, timeout=5, what="the sweeper gave both back")
    assert gate.shelved == 0
    # Both slots are free again, and the shelf is empty.
    assert gate.enter(1) == (None, 0.0)
    assert gate.enter(1) == (None, 0.0)


def test_a_closed_gate_gives_its_shelf_back_and_shelves_nothing() -> None:
    pool = _Pool()
    gate = FairGate(2, window=60, give_back=pool.give_back)
    gate.enter(1), gate.enter(1)
    _shelve(gate, "a")
    gate.close()
    assert pool.given_back == ["a"]
    assert not _shelve(gate, "b"), "shelved on a closed gate: the caller must give it back"
    assert gate.shelved == 0


def _in_another_thread(action: Callable[[], Any]) -> Any:
    found: list[Any] = []
    thread = threading.Thread(target=lambda: found.append(action()))
    thread.start()
    thread.join(10)
    assert found, "the other thread did not finish"
    return found[0]


def test_a_request_boundary_gives_back_what_the_thread_left_on_the_shelf() -> None:
    pool = _Pool()
    gate = FairGate(2, window=60, give_back=pool.give_back)
    with gate._lock:  # the sweeper must not be the one that gives them back
        gate._swept = True
    gate.enter(1), gate.enter(1)
    assert _shelve(gate, "a")
    # Another thread's request takes "a" off the shelf, and gives it back.
    assert _in_another_thread(lambda: gate.enter(1)[0]) == "a"
    assert _in_another_thread(lambda: _shelve(gate, "a"))
    assert _shelve(gate, "b")
    request_boundary()
    # Nobody holds a connection: "b", this thread's, back in the pool; "a" is the other
    # thread's to give back at its own boundary.
    assert pool.given_back == ["b"]
    assert gate.shelved == 1
    # Its slot stayed free: the next checkout takes "a", then one from the pool.
    assert gate.enter(1) == ("a", 0.0)
    assert gate.enter(1) == (None, 0.0)
    request_boundary()  # nothing left to give back
    assert pool.given_back == ["b"]


def test_a_request_boundary_leaves_the_shelf_alone_while_other_threads_hold_connections() -> None:
    """With other threads using the pool, connections already rotate among them on the
    shelf: a round trip through the pool at each request would only cost them (gate.py)."""
    pool = _Pool()
    gate = FairGate(2, window=60, give_back=pool.give_back)
    with gate._lock:
        gate._swept = True
    # Another thread holds a connection (from the pool) through this thread's request.
    assert _in_another_thread(lambda: gate.enter(1)) == (None, 0.0)
    gate.enter(1)
    assert _shelve(gate, "b")
    request_boundary()
    assert pool.given_back == []
    assert gate.shelved == 1
    # The other thread gives its connection back, then ends its request: alone now, it
    # gives back what it left; "b" stays for the next checkout (or the window).
    assert _in_another_thread(lambda: (_shelve(gate, "x"), request_boundary()))
    assert pool.given_back == ["x"]
    assert gate.enter(1) == ("b", 0.0)


# -- on a real server, both engines ---------------------------------------------------------


def _settings(pool_settings: Any, engine: str, database: Any, **extra: Any) -> dict[str, Any]:
    settings = pool_settings(engine, database=database, max_size=4, min_size=4, **extra)
    return settings


def _pool_idle(alias: str) -> int:
    """Idle connections as the pool underneath counts them (the shelf's are out of it)."""
    raw = connections[alias].pool
    if connections[alias].settings_dict["ENGINE"] == PSYCOPG:
        return int(raw.get_stats().get("pool_available", 0))
    return int(raw.checkedin())


@pytest.mark.parametrize("engine", ["real_pool", "real_pool_dj"])
def test_queries_in_a_row_run_on_the_warmest_connection(
    engine, pool_settings, pool_alias, pg_test_database
) -> None:
    alias = pool_alias(_settings(pool_settings, engine, pg_test_database))
    pids = {backend_pid(alias) for _ in range(20)}
    assert len(pids) == 1, f"20 queries in a row ran on {len(pids)} connections"


@pytest.mark.parametrize("engine", ["real_pool", "real_pool_dj"])
def test_requests_in_a_row_take_their_connections_in_the_pools_order(
    engine, pool_settings, pool_alias, pg_test_database
) -> None:
    alias = pool_alias(_settings(pool_settings, engine, pg_test_database))
    with HeldConnections(alias, 4).start():  # all four open (the QueuePool opens on demand)
        pass
    requests = []
    for _ in range(8):
        request_started.send(sender=None)
        try:
            requests.append([backend_pid(alias) for _ in range(3)])
        finally:
            request_finished.send(sender=None)
    # Within a request, the warmest connection from the shelf; between requests, the shelf
    # went back to the pool, which hands its connections out in turn (psycopg_pool and
    # SQLAlchemy's QueuePool, first in, first out), as with a pool held for the request.
    assert all(len(set(pids)) == 1 for pids in requests), requests
    assert len({pids[0] for pids in requests}) > 1, requests
    assert _pool_idle(alias) == 4, "a connection stayed out of the pool between requests"


def test_queries_in_a_row_do_not_wake_the_sweeper_each_time(
    pool_settings, pool_alias, pg_test_database
) -> None:
    alias = pool_alias(_settings(pool_settings, "real_pool", pg_test_database))
    backend_pid(alias)
    before = gate_module._SWEEPER.rounds
    for _ in range(300):
        backend_pid(alias)
    # Each query shelves its connection and the next takes it back: the shelf is empty half
    # of the time, which must not wake the sweeper thread at every query (a lock, a
    # notification and a GIL switch each). It may run a few rounds per window (0.5 s).
    assert gate_module._SWEEPER.rounds - before < 30


def test_without_a_window_every_checkout_goes_through_psycopg_pool(
    pool_settings, pool_alias, pg_test_database
) -> None:
    settings = _settings(pool_settings, "real_pool", pg_test_database)
    settings["OPTIONS"]["reuse_window"] = 0
    alias = pool_alias(settings)
    backend_pid(alias)
    before = connections[alias].pool.get_stats().get("requests_num", 0)
    for _ in range(10):
        backend_pid(alias)
    assert connections[alias].pool.get_stats()["requests_num"] - before == 10


@pytest.mark.parametrize("engine", ["real_pool", "real_pool_dj"])
def test_an_idle_application_gives_its_connections_back_to_the_pool(
    engine, pool_settings, pool_alias, pool_stats, pg_test_database
) -> None:
    alias = pool_alias(_settings(pool_settings, engine, pg_test_database))
    backend_pid(alias)
    # Idle for the plugin's stats at once (the shelf counts as idle), back in the pool
    # underneath within about 1.5 windows.
    assert pool_stats(alias).in_use == 0
    wait_until(
        lambda: _pool_idle(alias) == len(sessions(pg_test_database)),
        timeout=5,
        what="every connection is back in the pool underneath",
    )


@pytest.mark.timing
@pytest.mark.parametrize("engine", ["real_pool", "real_pool_dj"])
def test_a_busy_connection_is_still_recycled(
    engine, pool_settings, pool_alias, pg_test_database
) -> None:
    settings = _settings(pool_settings, engine, pg_test_database, max_lifetime=1)
    alias = pool_alias(settings)
    first = backend_pid(alias)
    # Queries back to back, never a pause for the sweeper: the window alone sends the
    # connection back to the pool, which replaces it after its lifetime.
    deadline = time.monotonic() + 15
    while backend_pid(alias) == first:
        assert time.monotonic() < deadline, "a connection in constant use was never recycled"


@pytest.mark.parametrize("engine", ["real_pool", "real_pool_dj"])
def test_a_shelved_connection_the_server_closed_is_replaced(
    engine, pool_settings, pool_alias, terminate_backends, pg_test_database
) -> None:
    settings = pool_settings(engine, database=pg_test_database, max_size=1, health_checks=True)
    if engine == "real_pool":
        settings["OPTIONS"]["reuse_window"] = 60
    else:
        settings["POOL_OPTIONS"].update(PRE_PING_SKIP_WINDOW=60, REUSE_WINDOW=60)
    alias = pool_alias(settings)
    dead = backend_pid(alias)
    assert terminate_backends(pg_test_database) == 1
    # Within the window, on the shelf, but the socket says the server hung up: checked
    # (pinged), replaced, and the query runs.
    assert backend_pid(alias) != dead


def test_a_connection_handed_over_to_a_waiting_checkout_is_not_looked_at(
    pool_settings, pool_alias, pg_test_database, monkeypatch
) -> None:
    """PRE_PING's look at the socket (a system call, which lets every other thread take the
    GIL) is for a connection that rested on the shelf; one handed over to a waiting checkout
    comes straight from a query, however long the waiter took to wake up."""
    from django_pg_real_pool.dj_db_conn_pool import base as dj_base

    settings = pool_settings(
        "real_pool_dj", database=pg_test_database, max_size=1, health_checks=True
    )
    settings["POOL_OPTIONS"].update(PRE_PING_SKIP_WINDOW=60, REUSE_WINDOW=60)
    alias = pool_alias(settings)
    pid = backend_pid(alias)
    looked: list[Any] = []
    look = dj_base.has_data_to_read
    monkeypatch.setattr(dj_base, "has_data_to_read", lambda conn: looked.append(1) or look(conn))
    # Every return counts as long ago: what is left to tell the two apart is where the
    # connection came from.
    monkeypatch.setattr(dj_base, "_SOCKET_LOOK_AFTER", 0.0)
    assert backend_pid(alias) == pid
    assert len(looked) == 1, "a connection from the shelf is looked at"
    # The holder takes it from the shelf (looked at); the queued checkout gets it handed over.
    make_one_checkout_wait(alias, at_least=0.01)
    assert len(looked) == 2, "the handed-over connection was looked at"
    assert backend_pid(alias) == pid


@pytest.mark.parametrize("engine", ["real_pool", "real_pool_dj"])
def test_closing_the_pool_closes_the_shelved_connections(
    engine, pool_settings, pool_alias, pg_test_database
) -> None:
    settings = pool_settings(engine, database=pg_test_database, max_size=2, min_size=2)
    if engine == "real_pool":
        settings["OPTIONS"]["reuse_window"] = 60
    else:
        assert settings["POOL_OPTIONS"]["PRE_PING"] is False
        settings["POOL_OPTIONS"]["REUSE_WINDOW"] = 60
    alias = pool_alias(settings)
    with HeldConnections(alias, 2).start():  # both open, none being opened by the pool
        pass
    backend_pid(alias)
    # psycopg_pool 3.2.0 leaves open a connection its worker was still opening when the pool
    # closed (with or without a reuse window): so the pool is full before it is closed.
    assert len(sessions(pg_test_database)) == 2
    connections[alias].close_pool()
    wait_until(lambda: not sessions(pg_test_database), timeout=10, what="every session closed")


@pytest.mark.parametrize("attempt", range(5))
def test_closing_a_pool_that_is_still_opening_connections_leaves_no_session(
    attempt, pool_settings, pool_alias, pg_test_database
) -> None:
    # The first checkout finds the pool empty and makes psycopg_pool open a second connection
    # in the background: closed at once, psycopg_pool 3.2.0 left that one open.
    settings = pool_settings("real_pool", database=pg_test_database, max_size=2, min_size=1)
    alias = pool_alias(settings)
    backend_pid(alias)
    connections[alias].close_pool()
    wait_until(lambda: not sessions(pg_test_database), timeout=10, what="every session closed")
