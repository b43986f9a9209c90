"""Queries back to back while others wait: the thread keeps its connection for its next query
of the same request, its waiter stays first in line and gets the connection at the end of
the request, after a few milliseconds, at another thread's checkout, or from the sweeper
(gate.py, "Back to back")."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import connections

from django_pg_real_pool import gate as gate_module
from django_pg_real_pool import pools
from django_pg_real_pool.gate import FairGate, GateTimeout, request_boundary
from django_pg_real_pool.testing.saturation import wait_until


class _Script:
    """A thread of its own (fresh per-thread state) that runs the steps it is sent, in order,
    and posts each result."""

    def __init__(self) -> None:
        self._steps: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self.results: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (step := self._steps.get()) is not None:
            try:
                self.results.put(step())
            except BaseException as exc:
                self.results.put(exc)

    def do(self, step: Callable[[], Any]) -> Any:
        self._steps.put(step)
        result = self.results.get(timeout=10)
        if isinstance(result, BaseException):
            raise result
        return result

    def stop(self) -> None:
        self._steps.put(None)
        self._thread.join(10)


def _waiter(gate: FairGate) -> list[Any]:
    """A thread that waits for a slot and records the connection that came with it."""
    got: list[Any] = []
    threading.Thread(target=lambda: got.append(gate.enter(10)[0]), daemon=True).start()
    return got


def _held_by(script: _Script, gate: FairGate, conn: str) -> None:
    assert script.do(lambda: gate.enter(1)) == (None, 0.0)
    script.do(lambda: gate.taken_from_pool(conn))


@pytest.fixture
def unhurried(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded machine may take milliseconds between two steps of a test: the limit on a run
    of kept connections is not under test here."""
    monkeypatch.setattr(gate_module, "_KEEP_AT_MOST", 60.0)


def _without_sweeper(gate: FairGate) -> None:
    """The sweeper takes this gate for watched already: it never hands over for it."""
    with gate._lock:
        gate._hurried = True


def _run_begins_now(script: _Script) -> None:
    """The thread's run of checkouts begins now: waiting for the waiter to queue must not
    count against the few milliseconds a thread may keep connections in a row."""
    script.do(lambda: setattr(gate_module._LOCAL.state, "keeping_since", time.monotonic()))


def _gate() -> FairGate:
    return FairGate(1, window=60, give_back=lambda conn: None)


def _deferred_handover(*, sweeper: bool = False) -> tuple[FairGate, _Script, list[Any]]:
    """A gate of one connection, "a", that a script thread just gave back, back to back,
    while a waiter waited: the handover is deferred. The gate, the thread, and what the
    waiter got (nothing yet). Without ``sweeper``, nothing but the test hands it over."""
    gate, thread = _gate(), _Script()
    if not sweeper:
        _without_sweeper(gate)
    _held_by(thread, gate, "a")
    got = _waiter(gate)
    wait_until(lambda: gate.waiting == 1, what="a waiter")
    _run_begins_now(thread)
    assert thread.do(lambda: gate.shelve("a", idle=True))
    return gate, thread, got


def test_a_thread_that_comes_straight_back_keeps_its_connection(unhurried: None) -> None:
    gate, thread, got = _deferred_handover()
    assert thread.do(lambda: gate.enter(1)) == ("a", 0.0)
    assert gate.kept == 1
    assert gate.waiting == 1, "the waiter is no longer first in line"
    assert not got
    # The end of the request: the waiter gets it.
    assert thread.do(lambda: gate.shelve("a", idle=True))
    thread.do(request_boundary)
    wait_until(lambda: got == ["a"], what="the waiter got the connection")
    assert gate.waiting == 0
    thread.stop()


def test_another_threads_checkout_hands_the_deferred_connection_over(unhurried: None) -> None:
    gate, thread, got = _deferred_handover()
    later = _waiter(gate)  # queues behind, and wakes the first waiter as it does
    wait_until(lambda: got == ["a"], what="the first waiter got the connection")
    assert not later
    assert gate.kept == 0
    gate.shelve("a", idle=True)  # the first waiter's return, from this thread
    wait_until(lambda: later == ["a"], what="the second waiter got the connection")
    thread.stop()


@pytest.mark.timing
def test_the_sweeper_hands_over_what_a_thread_that_went_away_deferred(unhurried: None) -> None:
    _, thread, got = _deferred_handover(sweeper=True)
    deferred = time.monotonic()
    # The thread does something else: no checkout, no end of request.
    wait_until(lambda: got == ["a"], what="the sweeper handed the connection over")
    # Within about 1.5 sweeper rounds; generous for a loaded machine.
    assert time.monotonic() - deferred < 1.0
    thread.stop()


def test_a_thread_keeps_connections_a_few_milliseconds_in_a_row_at_most(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every gap counts as back to back, however loaded the machine, and the sweeper stays
    # away: the limit on the run is the only thing that can end it. The limit is raised from
    # a few milliseconds to a fifth of a second so that a loaded machine (a matrix run shares
    # two cores between cells) cannot end the run before its first kept connection.
    limit = 0.2
    monkeypatch.setattr(gate_module, "_BACK_TO_BACK", 10.0)
    monkeypatch.setattr(gate_module, "_KEEP_AT_MOST", limit)
    gate, thread = _gate(), _Script()
    _without_sweeper(gate)
    _held_by(thread, gate, "a")
    got = _waiter(gate)
    wait_until(lambda: gate.waiting == 1, what="a waiter")

    def back_to_back() -> tuple[int, float]:
        """Queries back to back until the waiter gets the connection: how many were kept,
        and for how long."""
        gate_module._LOCAL.state.keeping_since = started = time.monotonic()
        while time.monotonic() - started < 10:
            gate.shelve("a", idle=True)
            _, waited = gate.enter(10)
            if waited:  # queued: the waiter had it meanwhile and gave it back
                return gate.kept, time.monotonic() - waited - started
        raise AssertionError("the waiter never got the connection")

    def waiter_done() -> None:
        # The waiter had its turn and the thread queued behind it: the waiter leaves.
        wait_until(lambda: got == ["a"] and gate.waiting == 1, what="the waiter's turn")
        gate.leave()

    helper = threading.Thread(target=waiter_done, daemon=True)
    helper.start()
    kept, kept_for = thread.do(back_to_back)
    helper.join(10)
    assert got == ["a"]
    assert kept >= 1
    # The run ended at the limit, not before (nothing else could end it), and the waiter
    # then had its turn: the thread queued behind it.
    assert kept_for >= limit
    thread.stop()


def test_a_thread_whose_returns_are_followed_by_other_work_hands_over_at_once(
    unhurried: None,
) -> None:
    gate, thread = _gate(), _Script()
    _without_sweeper(gate)
    _held_by(thread, gate, "a")
    # Nobody waits: onto the shelf. Then 3 ms of other work (the workload under test, not a
    # synchronisation) before the next checkout, which takes it from the shelf.
    assert thread.do(lambda: gate.shelve("a", idle=True))
    thread.do(lambda: time.sleep(0.003))
    assert thread.do(lambda: gate.enter(1)) == ("a", 0.0)
    got = _waiter(gate)
    wait_until(lambda: gate.waiting == 1, what="a waiter")
    _run_begins_now(thread)
    assert thread.do(lambda: gate.shelve("a", idle=True))
    # Woken at once, not deferred: nothing else happens in the gate meanwhile.
    with gate._lock:
        assert not gate._deferred
    wait_until(lambda: got == ["a"], what="the waiter got the connection")
    thread.stop()


def test_closing_the_gate_hands_over_the_deferred_connections(unhurried: None) -> None:
    gate, thread, got = _deferred_handover()
    gate.close()
    wait_until(lambda: got == ["a"], what="the waiter got the connection")
    thread.stop()


def test_a_waiter_timing_out_as_it_is_granted_takes_the_connection_for_good(
    unhurried: None,
) -> None:
    gate, thread = _gate(), _Script()
    _held_by(thread, gate, "a")
    got: list[Any] = []
    # A waiter whose timeout runs out while its handover is deferred: it takes the
    # connection on its way out, and the thread that deferred it cannot keep it any more.
    threading.Thread(target=lambda: got.append(gate.enter(0.05)[0]), daemon=True).start()
    wait_until(lambda: gate.waiting == 1, what="a waiter")
    _without_sweeper(gate)  # the timeout must be what ends it
    assert thread.do(lambda: gate.shelve("a", idle=True))
    wait_until(lambda: got == ["a"], what="the waiter took the connection at its timeout")
    with gate._lock:
        assert not gate._deferred
    with pytest.raises(GateTimeout):  # the only slot is the waiter's now
        thread.do(lambda: gate.enter(0.05))
    thread.stop()


# -- on a real server, both engines ---------------------------------------------------------

THREADS = 12
POOL = 4


@pytest.mark.timing
@pytest.mark.parametrize("engine", ["real_pool", "real_pool_dj"])
def test_requests_of_queries_back_to_back_are_served_evenly(
    engine: str, pool_settings: Any, pool_alias: Any, pg_test_database: Any
) -> None:
    alias = pool_alias(
        pool_settings(engine, database=pg_test_database, max_size=POOL, min_size=POOL)
    )
    counts = [0] * THREADS
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)
    stop = threading.Event()

    def serve(number: int) -> None:
        connection = connections[alias]
        try:
            start.wait()
            while not stop.is_set():
                request_started.send(sender=None)
                try:
                    for value in range(3):
                        with connection.cursor() as cursor:
                            cursor.execute("SELECT %s", [value])
                            cursor.fetchone()
                finally:
                    request_finished.send(sender=None)
                counts[number] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=serve, args=(n,), daemon=True) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    # The duration of the run under test, not a synchronisation.
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a thread hangs"
    assert not errors, errors[:3]
    entry = pools._entries[alias]
    gate = entry.handle._gate  # type: ignore[attr-defined]
    assert gate.kept > 0, "no connection was kept for a query back to back"
    # Every thread served in turn: kept connections do not outlast a request.
    assert min(counts) >= max(counts) / 3, counts
    assert not gate._deferred, "a handover stayed deferred after every request ended"


def test_a_forked_child_leaves_the_parents_deferred_handovers_alone(unhurried: None) -> None:
    gate, thread, got = _deferred_handover()

    def fork_and_end_a_request() -> int:
        # The gate's lock is held (by the main thread) as the child is forked: a child that
        # handed over the parent's deferred handovers at its first request would hang on it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
            pid = os.fork()
        if pid == 0:
            request_boundary()
            os._exit(0)
        return pid

    with gate._lock:
        pid = thread.do(fork_and_end_a_request)
    ended: list[int] = []

    def child_ended() -> bool:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            ended.append(os.waitstatus_to_exitcode(status))
        return bool(ended)

    try:
        wait_until(child_ended, timeout=10, what="the forked child ended")
    finally:
        if not ended:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert ended == [0]
    thread.do(request_boundary)  # the parent's own request ends: the waiter gets it
    wait_until(lambda: got == ["a"], what="the waiter got the connection")
    thread.stop()
