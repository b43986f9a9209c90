"""Fair checkouts: under saturation every thread is served in turn, on both engines, with
Django's stock pool (released with close() after each query) as the control."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import django
import pytest
from django.db import OperationalError, connections

from django_pg_real_pool import pool_stats
from django_pg_real_pool.gate import FairGate, GateFull, GateTimeout
from django_pg_real_pool.testing.saturation import wait_until

THREADS = 8
POOL = 4
RUN_FOR = 2.0
#: The pool, not the GIL, must be what the threads queue for: a query that spends its time on
#: the server (and sleeps without the GIL). A bare SELECT 1 measures CPython's GIL handoff,
#: which is not fair either.
QUERY = "SELECT pg_sleep(0.002)"


def _saturate(alias: str, *, close_each: bool) -> tuple[list[int], list[BaseException]]:
    """``THREADS`` threads run ``QUERY`` in a tight loop for ``RUN_FOR`` seconds."""
    counts = [0] * THREADS
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)
    stop = threading.Event()

    def loop(number: int) -> None:
        connection = connections[alias]
        try:
            start.wait()
            while not stop.is_set():
                with connection.cursor() as cursor:
                    cursor.execute(QUERY)
                if close_each:
                    connection.close()
                counts[number] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    # The duration of the run under test, not a synchronisation.
    time.sleep(RUN_FOR)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a thread hangs"
    return counts, errors


def _pool_of_four(make_alias: Callable[..., str], engine: str) -> str:
    if engine == "dj":
        return make_alias("dj", POOL_OPTIONS={"POOL_SIZE": POOL, "MAX_OVERFLOW": 0, "TIMEOUT": 5})
    template = "plain" if engine == "django_native" else "default"
    return make_alias(
        template, OPTIONS={"pool": {"min_size": POOL, "max_size": POOL, "timeout": 5}}
    )


@pytest.mark.timing
@pytest.mark.parametrize("engine", ["default", "dj", "django_native"])
def test_saturated_pool_serves_every_thread_in_turn(
    make_alias: Callable[..., str], engine: str
) -> None:
    if engine == "django_native" and django.VERSION < (5, 1):
        pytest.skip("Django's own pool arrived in 5.1")
    alias = _pool_of_four(make_alias, engine)
    counts, errors = _saturate(alias, close_each=engine == "django_native")
    assert not errors, f"checkouts failed while the pool served others: {errors[:3]!r}"
    assert min(counts) > 0, f"starved threads: {counts}"
    assert max(counts) <= 1.5 * min(counts), f"completions per thread: {counts}"


@pytest.mark.parametrize("engine", ["default", "dj"])
def test_counters_are_exact_after_saturation(make_alias: Callable[..., str], engine: str) -> None:
    alias = _pool_of_four(make_alias, engine)
    counts, errors = _saturate(alias, close_each=False)
    assert not errors
    stats = pool_stats(alias)
    assert stats is not None
    assert (stats.in_use, stats.waiting, stats.timeouts, stats.rejected) == (0, 0, 0, 0)
    assert stats.checkouts >= sum(counts)


def test_gate_hands_a_slot_to_the_oldest_waiter() -> None:
    gate = FairGate(1)
    gate.enter(1)
    order: list[int] = []

    def wait(number: int) -> None:
        gate.enter(10)
        order.append(number)
        gate.leave()

    threads = []
    for number in range(3):
        thread = threading.Thread(target=wait, args=(number,), daemon=True)
        thread.start()
        threads.append(thread)
        wait_until(lambda n=number: gate.waiting == n + 1, what=f"{number + 1} waiters")
    gate.leave()
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2]
    gate.enter(0.01)  # every slot came back


def test_gate_refuses_past_max_waiting_and_times_out() -> None:
    gate = FairGate(1, max_waiting=1)
    gate.enter(1)
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            gate.enter(1.0)
        except GateTimeout as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    wait_until(lambda: gate.waiting == 1, what="one waiter")
    with pytest.raises(GateFull) as refused:
        gate.enter(1)
    assert refused.value.waiting == 1
    waiter.join(10)
    assert len(outcome) == 1
    assert gate.waiting == 0
    gate.leave()
    gate.enter(0.01)


@pytest.mark.timing
@pytest.mark.parametrize("engine", ["default", "dj"])
def test_gate_timeout_and_rejection_keep_the_pools_errors(
    make_alias: Callable[..., str], engine: str
) -> None:
    """Both engines' gates time out and refuse with psycopg_pool's errors and messages; the
    checkout that timed out first does not count as waiting (psycopg_pool 3.2 and 3.3 kept
    it in their queue until a connection came back, and refused the next one)."""
    from django_pg_real_pool.testing.saturation import (
        HeldConnections,
        QueuedCheckouts,
        assert_checkout_rejected,
        assert_checkout_times_out,
        wait_for_waiting,
    )

    if engine == "dj":
        alias = make_alias(
            "dj",
            POOL_OPTIONS={"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 0.5, "MAX_WAITING": 1},
        )
    else:
        pool = {"min_size": 1, "max_size": 1, "timeout": 0.5, "max_waiting": 1}
        alias = make_alias("default", OPTIONS={"pool": pool})
    with HeldConnections(alias, 1).start():
        assert_checkout_times_out(alias, after=0.5)
        queued = QueuedCheckouts(alias, 1).start()
        wait_for_waiting(alias, 1)
        error = assert_checkout_rejected(alias)
        assert f"the pool {alias!r} has already 1 requests waiting" in str(error)
        results = queued.join()
    assert len(results) == 1
    assert isinstance(results[0], OperationalError)
    stats = pool_stats(alias)
    assert stats is not None
    assert (stats.timeouts, stats.rejected, stats.in_use, stats.waiting) == (2, 1, 0, 0)
