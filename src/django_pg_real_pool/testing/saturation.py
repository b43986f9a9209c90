"""Put a pool under pressure from real threads, and watch it by polling its state."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .stats import pool_stats

DEFAULT_DEADLINE = 10.0


def wait_until(
    condition: Callable[[], bool], *, timeout: float = DEFAULT_DEADLINE, what: str
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting until {what}")
        time.sleep(0.005)  # polling the pool's state to a deadline


def _query(alias: str) -> None:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")


@dataclass
class HeldConnections:
    """``n`` connections of ``alias`` checked out and held by other threads."""

    alias: str
    n: int
    _release: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _holding: list[threading.Event] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def start(self, *, timeout: float = DEFAULT_DEADLINE) -> HeldConnections:
        for number in range(self.n):
            holding = threading.Event()
            thread = threading.Thread(
                target=self._hold, args=(holding,), name=f"hold-{self.alias}-{number}", daemon=True
            )
            self._holding.append(holding)
            self._threads.append(thread)
            thread.start()
        wait_until(
            lambda: all(event.is_set() for event in self._holding) or bool(self.errors),
            timeout=timeout,
            what=f"{self.n} threads hold a connection of {self.alias!r}",
        )
        if self.errors:
            self.release()
            raise AssertionError(f"a thread could not check out a connection: {self.errors[0]!r}")
        return self

    def _hold(self, holding: threading.Event) -> None:
        from django.db import connections, transaction

        try:
            with transaction.atomic(using=self.alias):
                _query(self.alias)
                holding.set()
                self._release.wait(60)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connections[self.alias].close()

    def release(self, *, timeout: float = DEFAULT_DEADLINE) -> None:
        self._release.set()
        for thread in self._threads:
            thread.join(timeout)
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        if alive:
            raise AssertionError(f"threads still holding connections after {timeout} s: {alive}")

    def __enter__(self) -> HeldConnections:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@dataclass
class QueuedCheckouts:
    """``k`` threads each trying to run one query, while the pool has nothing to give."""

    alias: str
    k: int
    results: list[BaseException | None] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> QueuedCheckouts:
        for number in range(self.k):
            thread = threading.Thread(
                target=self._checkout, name=f"queued-{self.alias}-{number}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    def _checkout(self) -> None:
        from django.db import connections

        try:
            _query(self.alias)
        except BaseException as exc:
            self.results.append(exc)
        else:
            self.results.append(None)
        finally:
            connections[self.alias].close()

    def join(self, *, timeout: float = DEFAULT_DEADLINE) -> list[BaseException | None]:
        for thread in self._threads:
            thread.join(timeout)
        return self.results


def wait_for_waiting(alias: str, k: int, *, timeout: float = DEFAULT_DEADLINE) -> None:
    """Poll until at least ``k`` checkouts of ``alias`` are waiting for a connection."""
    wait_until(
        lambda: pool_stats(alias).waiting >= k,
        timeout=timeout,
        what=f"{k} checkouts of {alias!r} are waiting (now {pool_stats(alias).waiting})",
    )


def _pool_error(exc: BaseException) -> BaseException:
    cause: BaseException | None = exc
    while cause is not None:
        if type(cause).__module__.startswith(("psycopg_pool", "sqlalchemy")):
            return cause
        cause = cause.__cause__ or cause.__context__
    return exc


def checkout_failure(alias: str) -> tuple[BaseException, float]:
    """Try one query on ``alias``; return the pool error it failed with and how long it took."""
    from django.db import connections

    started = time.monotonic()
    try:
        _query(alias)
    except Exception as exc:
        return _pool_error(exc), time.monotonic() - started
    finally:
        connections[alias].close()
    raise AssertionError(f"a checkout of {alias!r} succeeded; the pool was not exhausted")


def assert_checkout_times_out(
    alias: str, *, after: float, tolerance: float = 0.5, slack: float = 1.0
) -> float:
    """The next checkout fails with a pool timeout after ``after`` seconds.

    It may not fail sooner than ``after * (1 - tolerance)`` nor later than
    ``after * (1 + tolerance) + slack`` (slack covers a loaded machine). Returns the time.
    """
    error, elapsed = checkout_failure(alias)
    assert "timeout" in type(error).__name__.lower() or "timed out" in str(error), (
        f"expected a pool timeout, got {type(error).__name__}: {error}"
    )
    low, high = after * (1 - tolerance), after * (1 + tolerance) + slack
    assert low <= elapsed <= high, (
        f"the checkout timed out after {elapsed:.3f} s, expected {after:.3f} s "
        f"(between {low:.3f} and {high:.3f})"
    )
    return elapsed


def assert_checkout_rejected(alias: str, *, within: float = 1.0) -> BaseException:
    """The next checkout is refused at once because ``max_waiting`` checkouts wait already."""
    error, elapsed = checkout_failure(alias)
    assert type(error).__name__ == "TooManyRequests", (
        f"expected psycopg_pool.TooManyRequests, got {type(error).__name__}: {error}"
    )
    assert elapsed <= within, f"the rejection took {elapsed:.3f} s, expected at most {within} s"
    return error
