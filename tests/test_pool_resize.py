"""``connection.pool.resize()`` (psycopg_pool's API) on the first engine: the gate in front of
the pool follows, so that the pool's new ``max_size`` is what checkouts get."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connections

from django_pg_real_pool.gate import FairGate, GateTimeout
from django_pg_real_pool.testing.saturation import (
    HeldConnections,
    QueuedCheckouts,
    assert_checkout_times_out,
    wait_for_waiting,
    wait_until,
)


def _enter_in_thread(gate: FairGate, entered: list[int], number: int) -> threading.Thread:
    def enter() -> None:
        gate.enter(10)
        entered.append(number)

    thread = threading.Thread(target=enter, daemon=True)
    thread.start()
    return thread


def test_a_gate_made_larger_admits_its_waiters_at_once() -> None:
    gate = FairGate(1)
    gate.enter(1)
    entered: list[int] = []
    threads = [_enter_in_thread(gate, entered, number) for number in range(2)]
    wait_until(lambda: gate.waiting == 2, what="two waiters")
    gate.resize(3)
    for thread in threads:
        thread.join(10)
    assert sorted(entered) == [0, 1]
    assert gate.waiting == 0
    with pytest.raises(GateTimeout):
        gate.enter(0.01)  # 3 held: the new capacity, all taken


def test_a_gate_made_smaller_retires_slots_as_they_come_back() -> None:
    gate = FairGate(3)
    for _ in range(3):
        gate.enter(1)
    gate.resize(1)
    entered: list[int] = []
    waiter = _enter_in_thread(gate, entered, 0)
    wait_until(lambda: gate.waiting == 1, what="one waiter")
    gate.leave()
    gate.leave()  # 1 held now: the new capacity, and the waiter still waits
    assert gate.waiting == 1
    assert entered == []
    gate.leave()
    waiter.join(10)
    assert entered == [0]
    with pytest.raises(GateTimeout):
        gate.enter(0.01)


def test_a_gate_made_smaller_gives_back_the_shelved_connections_beyond_it() -> None:
    given_back: list[object] = []
    gate = FairGate(3, window=60, give_back=given_back.append)
    conns = [object() for _ in range(3)]
    for conn in conns:
        gate.enter(1)
        gate.taken_from_pool(conn)
    for conn in conns:
        assert gate.shelve(conn, idle=True)
    gate.resize(1)
    assert given_back == conns[:2], "the oldest go back to the pool"
    assert gate.shelved == 1
    assert gate.enter(1) == (conns[2], 0.0)


def test_a_connection_given_back_above_the_new_size_goes_to_the_pool() -> None:
    gate = FairGate(2, window=60, give_back=lambda conn: None)
    first, second = object(), object()
    for conn in (first, second):
        gate.enter(1)
        gate.taken_from_pool(conn)
    gate.resize(1)
    assert not gate.shelve(first, idle=True), "over the new size: to the pool"
    gate.leave()
    assert gate.shelve(second, idle=True), "within it again: onto the shelf"
    assert gate.enter(1) == (second, 0.0)


def test_a_gate_cannot_be_resized_to_nothing() -> None:
    with pytest.raises(ValueError, match="a capacity of at least 1, not 0"):
        FairGate(2).resize(0)


@pytest.mark.timing
def test_pool_resize_changes_what_checkouts_get_on_a_real_pool(
    make_alias: Callable[..., str],
) -> None:
    alias = make_alias("default", OPTIONS={"pool": {"min_size": 1, "max_size": 1, "timeout": 0.5}})
    with HeldConnections(alias, 1).start():
        assert_checkout_times_out(alias, after=0.5)
        queued = QueuedCheckouts(alias, 1).start()
        wait_for_waiting(alias, 1)
        pool = connections[alias].pool
        pool.resize(1, 3)
        assert pool.max_size == 3
        assert queued.join() == [None], "the waiting checkout got one of the new connections"
        with HeldConnections(alias, 2).start():  # 3 held: the new size
            assert_checkout_times_out(alias, after=0.5)
    # Smaller again: one connection held, one more would be over the size.
    connections[alias].pool.resize(1, 1)
    with HeldConnections(alias, 1).start():
        assert_checkout_times_out(alias, after=0.5)
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
    connections[alias].close()
