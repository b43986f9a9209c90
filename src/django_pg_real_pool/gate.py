"""First come, first served checkouts, and the connections given back moments ago handed out
first, without a round trip through the pool underneath.

SQLAlchemy's ``QueuePool`` lets a thread that just gave a connection back take it again ahead
of the threads already waiting: with one checkout per query, a few threads get everything and
the others time out. A ``FairGate`` in front of the pool admits at most ``capacity`` checkouts
at once and hands each slot given back to the oldest waiter, so the pool underneath never has
to make anyone wait.

psycopg_pool is fair, but a handover there costs more: its waiter sleeps on a
``threading.Condition`` and, once woken, must take the condition's lock again, which the thread
handing over still holds, so it sleeps and wakes a second time. With a checkout per query, a
saturated pool hands a connection over at every query; the gate's waiter sleeps on a bare lock
that the handover releases, once.

The shelf. With a checkout per query, most connections go back to the pool only to be taken
out again a few hundred microseconds later. A connection given back while a checkout waits goes
to that checkout directly, with its slot; given back while nobody waits, it goes on the shelf
(last in, first out: the warmest connection first, as HikariCP's thread-local list does) and
the next checkout takes it from there. The pool underneath sees it again when it has stayed on
the shelf longer than ``window`` seconds (the next checkout, or else the sweeper thread, gives
it back: within about 1.5 windows, so that an idle application's connections are back where
``max_idle`` and the checks apply), and at the return of a connection that is not idle
(broken, in a transaction: the handle says) or has been out of the pool for ``window`` already
(so that the pool's ``max_lifetime`` and checks still apply to a busy application's
connections).

Every connection on the shelf or held through the gate came out of the pool underneath, and
the gate admits at most ``capacity`` holders: a checkout that found the shelf empty always
finds a connection (or room for one) in the pool.

Between requests. At the end of a request (``request_boundary()``), the connection the
thread left on a shelf goes back to its pool when no other thread holds one of the gate's
connections, so that a thread working alone does not reuse one connection request after
request: that would keep the connection's server process busy on one core, and where client
and server share a few cores, every query would wake a process on another core, which costs
the client more CPU than the round trip through the pool once per request. While other
threads hold connections, connections already rotate among the threads on the shelf, and the
warmest one, taken from the shelf, serves a query for less than one taken out of the pool
(at 16 threads on a pool of 16, giving back at every request cost about a tenth of the
throughput; docs/performance.md).

Back to back. A thread running queries back to back while others wait would hand its
connection to the oldest waiter at every query, and wait its turn for the next one: two
thread switches per query, where a pool held for the whole request pays them once per
request. When such a thread gives a connection back while others wait, and its recent
checkouts came within ``_BACK_TO_BACK`` seconds of its returns, the handover is deferred: the
waiter is granted the connection but not woken. If the thread comes back for its next query
first, it keeps the connection and the waiter stays first in line; the waiter is woken at the
end of the thread's request (``request_boundary()``), when the thread has kept connections
for ``_KEEP_AT_MOST`` seconds in a row, at the next checkout of any other thread, or by the
sweeper within about ``_HURRY`` seconds. Between requests, checkouts are first come, first
served; within one, a thread keeps a connection no longer than a pool held for the request
would, and at most ``_KEEP_AT_MOST``.
"""

from __future__ import annotations

import _thread
import logging
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("django_pg_real_pool")


class GateTimeout(Exception):
    """No slot was given to this checkout within its timeout."""


class GateFull(Exception):
    """``max_waiting`` checkouts wait already."""

    def __init__(self, waiting: int) -> None:
        super().__init__(waiting)
        self.waiting = waiting


#: A thread defers its handovers (see "Back to back" above) while its recent checkouts came
#: this soon after its returns: the gap between a query's return and the next query's
#: checkout in Python code, a few tens of microseconds, not a view's own work.
_BACK_TO_BACK = 0.00025
#: A thread keeps connections it gives back while others wait this long in a row, at most.
_KEEP_AT_MOST = 0.005
#: The sweeper's round while checkouts wait: it hands over the deferred handovers at least
#: half this old, so that a waiter is woken within about 1.5 rounds when the thread that
#: deferred it went on to do something else.
_HURRY = 0.005


class _ThreadState:
    """What a thread's handovers are deferred on and what it left on shelves. One per thread
    (``_LOCAL.state``), a plain object: each attribute of a ``threading.local`` costs a
    lookup of the thread's dictionary, and a checkout and a return read and write several."""

    __slots__ = ("deferred_in", "gap", "keeping_since", "returned_at", "shelved")

    def __init__(self) -> None:
        #: When this thread last gave a connection back (None: not since its request began).
        self.returned_at: float | None = None
        #: Its recent gaps between a return and its next checkout: the latest, or half the
        #: previous score if that is more (one slow gap takes several quick ones to forget).
        #: A new thread starts as back to back: at worst, one handover waits for the sweeper.
        self.gap = 0.0
        #: When its current run of checkouts began: kept ones continue it.
        self.keeping_since = 0.0
        #: The gates holding a handover this thread deferred, or None.
        self.deferred_in: list[FairGate] | None = None
        #: Per gate, the connection this thread last put on its shelf (it may have been taken
        #: since): given back to the pool at the end of the request.
        self.shelved: dict[FairGate, Any] = {}


class _PerThread(threading.local):
    state: _ThreadState

    def __init__(self) -> None:
        self.state = _ThreadState()

    def forget(self) -> None:
        """Back to the thread's start."""
        self.state = _ThreadState()


_LOCAL = _PerThread()


class _Waiter:
    __slots__ = ("conn", "granted", "lock")

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
        self.lock.acquire()
        self.granted = False
        #: The connection handed over with the slot, or None (take one from the pool).
        self.conn: Any = None


def _give_back_quietly(give_back: Callable[[Any], None], conn: Any) -> None:
    try:
        give_back(conn)
    except Exception:  # nobody to raise to: the checkout that found it stale wants another
        logger.exception("giving a shelved connection back to its pool failed")


def has_data_to_read(conn: Any) -> bool:
    """Whether a psycopg connection's socket has something to read (or cannot be watched): a
    connection at rest has nothing to read unless the server wrote to it, which it does when
    it closes the connection (a restart, ``pg_terminate_backend``, an idle timeout)."""
    try:
        readable, _, _ = select.select((conn.pgconn.socket,), (), (), 0)
    except Exception:  # closed, no socket, or one select() cannot watch
        return True
    return bool(readable)


class FairGate:
    """At most ``capacity`` holders at once; the others wait in arrival order.

    ``window`` > 0 keeps connections given back on a shelf for that many seconds (see the
    module docstring); ``give_back`` returns one to the pool underneath (a stale one, or all
    of them at ``close()``).
    """

    __slots__ = (
        "_calm_sweeps",
        "_closed",
        "_deferred",
        "_empty_sweeps",
        "_free",
        "_give_back",
        "_hurried",
        "_left_pool",
        "_lock",
        "_shelf",
        "_swept",
        "_waiters",
        "capacity",
        "kept",
        "max_waiting",
        "window",
    )

    def __init__(
        self,
        capacity: int,
        *,
        max_waiting: int = 0,
        window: float = 0.0,
        give_back: Callable[[Any], None] | None = None,
    ) -> None:
        if window and give_back is None:
            raise ValueError("a shelf (window > 0) needs give_back")
        self.capacity = capacity
        #: 0: no limit on waiting checkouts.
        self.max_waiting = max_waiting
        #: Seconds a connection may stay on the shelf; 0: no shelf.
        self.window = window
        self._give_back = give_back
        self._free = capacity
        self._waiters: deque[_Waiter] = deque()
        #: Handovers deferred (see "Back to back"): (waiter granted the connection and not
        #: woken yet, the connection, the thread that gave it back, time.monotonic() then).
        self._deferred: list[tuple[_Waiter, Any, int, float]] = []
        #: Whether the sweeper hurries (``_HURRY``) for this gate's deferred handovers.
        self._hurried = False
        #: Sweeps in a row that found neither a waiter nor a deferred handover.
        self._calm_sweeps = 0
        #: Connections kept by the thread that gave them back, its waiter still first in line.
        self.kept = 0
        #: (connection, time.monotonic() when shelved), the most recent last.
        self._shelf: list[tuple[Any, float]] = []
        #: id(connection) -> time.monotonic() when it left the pool, for the connections out
        #: of it (``taken_from_pool()``): one out for ``window`` goes back at its next return.
        self._left_pool: dict[int, float] = {}
        self._closed = False
        #: Whether the sweeper watches this gate's shelf (set and cleared under ``_lock``).
        self._swept = False
        #: Sweeps in a row that found the shelf empty (the gate is forgotten after a few).
        self._empty_sweeps = 0
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Checkouts waiting for a slot now."""
        return len(self._waiters)

    @property
    def shelved(self) -> int:
        """Connections on the shelf now."""
        return len(self._shelf)

    def enter(self, timeout: float) -> tuple[Any, float]:
        """Take a slot, waiting at most ``timeout`` seconds behind the earlier arrivals; return
        the connection that came with it (from the shelf or handed over; None: take one from
        the pool) and the seconds waited (0.0 when a slot was free).

        Raises ``GateFull`` at once when ``max_waiting`` checkouts wait already, and
        ``GateTimeout`` when no slot came in time.
        """
        state = _LOCAL.state
        now = time.monotonic()
        returned = state.returned_at
        if returned is not None:
            state.returned_at = None
            gap, half = now - returned, state.gap * 0.5
            state.gap = gap if gap > half else half
        if self._deferred:
            kept = self._keep_or_hand_over(now, state)
            if kept is not None:
                return kept, 0.0
        state.keeping_since = now
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                shelf = self._shelf
                if not shelf:
                    return None, 0.0
                conn, shelved_at = shelf.pop()
                if now - shelved_at <= self.window:
                    return conn, 0.0
                # The most recent is stale: so are all the others.
                stale = [conn] + [item[0] for item in shelf]
                shelf.clear()
            else:
                stale = None
                if self.max_waiting and len(self._waiters) >= self.max_waiting:
                    raise GateFull(len(self._waiters))
                waiter = _Waiter()
                self._waiters.append(waiter)
        if stale is not None:
            self._flush(stale)
            return None, 0.0
        deadline = now + timeout
        while not waiter.lock.acquire(timeout=max(deadline - time.monotonic(), 0)):
            with self._lock:
                if waiter.granted:
                    # Handed over between the timeout and this lock, or granted in a deferred
                    # handover: taken now, so that its thread cannot keep it any more.
                    self._deferred = [item for item in self._deferred if item[0] is not waiter]
                    break
                if time.monotonic() >= deadline:
                    self._waiters.remove(waiter)
                    raise GateTimeout()
        # Its run of checkouts begins now, not when it began to wait.
        state.keeping_since = granted_at = time.monotonic()
        return waiter.conn, granted_at - now

    def _keep_or_hand_over(self, now: float, state: _ThreadState) -> Any:
        """The connection this thread gave back in a handover it deferred, when it may keep
        it (its waiter first in line again); or None, every deferred handover done."""
        me = _thread.get_ident()
        with self._lock:
            deferred = self._deferred
            if now - state.keeping_since < _KEEP_AT_MOST:
                for index, (waiter, conn, thread, _) in enumerate(deferred):
                    if thread == me:
                        del deferred[index]
                        waiter.granted = False
                        waiter.conn = None
                        self._waiters.appendleft(waiter)
                        self.kept += 1
                        return conn
            # Another thread's checkout (it is about to queue), or this thread kept its
            # connections long enough: the waiters get theirs now.
            self._deferred = []
        for waiter, _, _, _ in deferred:
            waiter.lock.release()
        return None

    def hand_over_deferred(self, *, thread: int | None = None, older_than: float = 0.0) -> bool:
        """Wake the waiters of the handovers deferred by ``thread`` (None: any) at least
        ``older_than`` seconds ago; whether any deferred handover or waiter is left."""
        now = time.monotonic()
        with self._lock:
            due: list[tuple[_Waiter, Any, int, float]] = []
            left: list[tuple[_Waiter, Any, int, float]] = []
            for item in self._deferred:
                mine = thread is None or item[2] == thread
                (due if mine and now - item[3] >= older_than else left).append(item)
            self._deferred = left
            busy = bool(left or self._waiters)
        for waiter, _, _, _ in due:
            waiter.lock.release()
        return busy

    def leave(self) -> None:
        """Give a slot back, without a connection (already back in the pool, or none was
        taken): to the oldest waiter if any, unless the gate was made smaller than the
        connections held (``resize()``)."""
        with self._lock:
            if self._waiters and self._free >= 0:
                waiter = self._waiters.popleft()
                waiter.granted = True
                waiter.lock.release()
            else:
                self._free += 1

    def taken_from_pool(self, conn: Any) -> None:
        """Note that ``conn`` just came out of the pool underneath (with a shelf)."""
        if self.window:
            self._left_pool[id(conn)] = time.monotonic()

    def shelve(self, conn: Any, *, idle: bool) -> bool:
        """Give a slot back with its connection, to the oldest waiter or onto the shelf. False
        when the connection must go back to the pool instead (no shelf, the gate closed, not
        ``idle``, or out of the pool for ``window`` already): the caller gives it to the pool,
        then the slot with ``leave()``."""
        if not self.window:
            return False
        left = self._left_pool.get(id(conn))
        now = time.monotonic()
        state = _LOCAL.state
        state.returned_at = now
        with self._lock:
            if (
                self._closed
                or not idle
                or left is None
                or now - left >= self.window
                or self._free < 0
            ):
                self._left_pool.pop(id(conn), None)
                return False
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.conn = conn
                waiter.granted = True
                if state.gap < _BACK_TO_BACK and now - state.keeping_since < _KEEP_AT_MOST:
                    self._deferred.append((waiter, conn, _thread.get_ident(), now))
                    if not self._hurried:
                        self._hurried = True
                        self._calm_sweeps = 0
                        _SWEEPER.hurry(self)
                    gates = state.deferred_in
                    if gates is None:
                        state.deferred_in = [self]
                    elif self not in gates:
                        gates.append(self)
                    return True
                waiter.lock.release()
                return True
            self._free += 1
            self._shelf.append((conn, now))
            state.shelved[self] = conn
            if not self._swept:
                self._swept = True
                self._empty_sweeps = 0
                _SWEEPER.watch(self)
            return True

    def resize(self, capacity: int) -> None:
        """Admit at most ``capacity`` holders from now on (the pool underneath was resized).

        Larger: the new slots go to the waiters first. Smaller: shelved connections beyond
        the free slots go back to the pool (which closes what it no longer needs), and while
        more connections are held than ``capacity``, each one given back goes to the pool
        and its slot is retired instead of handed over."""
        if capacity < 1:
            raise ValueError(f"a gate needs a capacity of at least 1, not {capacity}")
        with self._lock:
            self._free += capacity - self.capacity
            self.capacity = capacity
            woken = []
            while self._free > 0 and self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True
                self._free -= 1
                woken.append(waiter)
            # Held plus shelved never exceeds capacity: the pool never makes anyone wait.
            excess = len(self._shelf) - max(self._free, 0)
            stale = [item[0] for item in self._shelf[:excess]] if excess > 0 else []
            del self._shelf[: len(stale)]
        for waiter in woken:
            waiter.lock.release()
        self._flush(stale)

    def unshelve(self, conn: Any) -> None:
        """Hand ``conn``, taken out of ``enter()``, back to the pool underneath (the caller
        found it unfit to hand out)."""
        self._flush([conn])

    def close(self) -> None:
        """Give every shelved connection back to the pool; shelve nothing from now on."""
        with self._lock:
            self._closed = True
            shelved = [item[0] for item in self._shelf]
            self._shelf.clear()
            deferred, self._deferred = self._deferred, []
        for waiter, _, _, _ in deferred:
            waiter.lock.release()
        self._flush(shelved)

    def sweep(self) -> float | None:
        """Give back the connections shelved longer than ``window``; the seconds until the
        next one is due, or None when the shelf is empty (no longer watched)."""
        with self._lock:
            shelf = self._shelf
            now = time.monotonic()
            due = 0
            while due < len(shelf) and now - shelf[due][1] > self.window:
                due += 1
            stale = [item[0] for item in shelf[:due]]
            del shelf[:due]
            if shelf:
                self._empty_sweeps = 0
                wait: float | None = shelf[0][1] + self.window - now
            elif self._empty_sweeps < _EMPTY_SWEEPS_BEFORE_FORGET:
                # Empty at this instant, which a busy gate often is (every connection out):
                # watched a while longer, or each shelve would wake the sweeper again.
                self._empty_sweeps += 1
                wait = self.window
            else:
                wait = None
                self._swept = False
                _SWEEPER.forget(self)
        self._flush(stale)
        return wait

    def hurry_sweep(self) -> bool:
        """The sweeper's hurried round: hand over what was deferred half a round ago or
        more; False when the gate was calm (no waiter, nothing deferred) for a few rounds
        (no longer hurried)."""
        if self.hand_over_deferred(older_than=_HURRY / 2):
            self._calm_sweeps = 0
            return True
        with self._lock:
            self._calm_sweeps += 1
            if self._calm_sweeps <= _EMPTY_SWEEPS_BEFORE_FORGET or self._deferred:
                return True
            self._hurried = False
            _SWEEPER.unhurry(self)
            return False

    def give_back_shelved(self, conn: Any) -> None:
        """Give ``conn`` back to the pool if it is still on the shelf (not taken since) and
        no connection of this gate is held (see "Between requests")."""
        with self._lock:
            shelf = self._shelf
            if self._free != self.capacity:
                return
            for index in range(len(shelf) - 1, -1, -1):
                if shelf[index][0] is conn:
                    del shelf[index]
                    break
            else:
                return
        self._flush([conn])

    def _flush(self, conns: list[Any]) -> None:
        assert self._give_back is not None or not conns
        for conn in conns:
            self._left_pool.pop(id(conn), None)
            _give_back_quietly(self._give_back, conn)  # type: ignore[arg-type]


#: Sweeps in a row that must find a gate's shelf empty before the sweeper stops watching it:
#: a gate is forgotten only after about this many windows without a shelved connection seen
#: (and, hurried, after this many rounds with neither a waiter nor a deferred handover).
_EMPTY_SWEEPS_BEFORE_FORGET = 2


def request_boundary() -> None:
    """A request of this thread began or ended: the handovers it deferred are done now, the
    connections it left on shelves go back to their pools unless other threads hold
    connections of the same gate (see "Between requests" above), and its next checkout does
    not count as coming back to back."""
    state = _LOCAL.state
    state.returned_at = None
    gates = state.deferred_in
    if gates:
        state.deferred_in = None
        for gate in gates:
            gate.hand_over_deferred(thread=_thread.get_ident())
    shelved = state.shelved
    if shelved:
        state.shelved = {}
        for gate, conn in shelved.items():
            gate.give_back_shelved(conn)


class _Sweeper:
    """One daemon thread for every gate whose shelf holds connections: gives back those
    shelved longer than their gate's window when no checkout came to take them. It sleeps
    while no shelf holds anything."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: set[FairGate] = set()
        #: The gates with deferred handovers or waiters: swept every ``_HURRY`` seconds.
        self._hurried: set[FairGate] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: Rounds the thread has run (each sweeps every watched gate), for tests.
        self.rounds = 0

    def watch(self, gate: FairGate) -> None:
        """Called with ``gate``'s lock held, as its shelf gets a connection."""
        with self._lock:
            self._gates.add(gate)
            self._start()
        self._wake.set()

    def hurry(self, gate: FairGate) -> None:
        """Called with ``gate``'s lock held, as it defers a handover."""
        with self._lock:
            self._hurried.add(gate)
            self._start()
        self._wake.set()

    def unhurry(self, gate: FairGate) -> None:
        """Called with ``gate``'s lock held, as it is found calm."""
        with self._lock:
            self._hurried.discard(gate)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="django_pg_real_pool shelf sweeper", daemon=True
            )
            self._thread.start()

    def forget(self, gate: FairGate) -> None:
        """Called with ``gate``'s lock held, as its shelf is found empty."""
        with self._lock:
            self._gates.discard(gate)

    def _run(self) -> None:
        while True:
            # Cleared before the gates are read: a gate watched from here on wakes the wait.
            self._wake.clear()
            self.rounds += 1
            with self._lock:
                gates = list(self._gates)
                hurried = list(self._hurried)
            waits = []
            hurry = False
            for gate in hurried:
                try:
                    hurry = gate.hurry_sweep() or hurry
                except Exception:  # as below
                    logger.exception("handing over a pool's deferred handovers failed")
                    hurry = True
            for gate in gates:
                try:
                    wait = gate.sweep()
                except Exception:  # never let the thread die: the next round retries
                    logger.exception("sweeping a pool's shelf failed")
                    wait = gate.window
                if wait is not None:
                    waits.append(wait)
            # A little late rather than early: one round per due connection.
            wait = max(min(waits), 0.0) + 0.005 if waits else None
            if hurry:
                wait = _HURRY if wait is None else min(wait, _HURRY)
            self._wake.wait(wait)

    def after_fork_in_child(self) -> None:
        """The parent's thread is gone, its lock may be held: start afresh. The inherited
        gates are never used in the child (pools.py), so none is swept."""
        self._lock = threading.Lock()
        self._gates = set()
        self._hurried = set()
        self._wake = threading.Event()
        self._thread = None
        self.rounds = 0


_SWEEPER = _Sweeper()


def _after_fork_in_child() -> None:
    """The forking thread's state (its deferred handovers, what it left on shelves) is about
    the parent's gates, never used in the child, whose locks may be held: forgotten."""
    _LOCAL.forget()
    _SWEEPER.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
