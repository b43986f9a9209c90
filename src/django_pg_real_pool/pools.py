"""The per-process pool registry.

One pool per alias, remembered with the settings it was built from: when the settings change
(the test runner renaming NAME to ``test_...``, ``override_settings(TIME_ZONE=...)``), the old
pool is closed and a new one is built, so a pool never talks to another database than its
settings say. After ``fork()`` the child forgets every inherited pool without touching it: no
lock, thread or socket of the parent is used there.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from .counters import CheckoutCounters

logger = logging.getLogger("django_pg_real_pool")


class PoolHandle(Protocol):
    """What an engine's pool looks like to the registry, the release mechanism, the stats
    and the test fixtures."""

    @property
    def isolation_level(self) -> Any:
        """``OPTIONS['isolation_level']`` as a ``psycopg.IsolationLevel``, or None."""

    @property
    def raw(self) -> Any:
        """The underlying pool object (psycopg_pool or SQLAlchemy)."""

    @property
    def counters(self) -> CheckoutCounters:
        """What happened to this pool's checkouts."""

    def idle(self) -> int:
        """Connections waiting in the pool now."""

    def connections_created(self) -> tuple[int, float] | None:
        """Connections opened so far and the seconds spent opening them, or None where the
        pool does not count them (SQLAlchemy)."""

    def getconn(self) -> Any:
        """Check a connection out."""

    def putconn(self, conn: Any) -> None:
        """Give a connection back."""

    def close(self) -> None:
        """Close the pool; connections still checked out are closed when given back."""


class Entry:
    """A pool and the settings key it was built for."""

    __slots__ = ("alias", "closed", "handle", "inherited", "key")

    def __init__(self, alias: str, key: tuple[Any, ...], handle: PoolHandle) -> None:
        self.alias = alias
        self.key = key
        self.handle = handle
        self.closed = False
        #: Set in a forked child: the pool belongs to the parent and must never be used here.
        self.inherited = False

    def __repr__(self) -> str:
        state = "inherited" if self.inherited else "closed" if self.closed else "open"
        return f"<pool entry {self.alias!r} {state}>"


_lock = threading.Lock()
_entries: dict[str, Entry] = {}
#: Objects inherited from the parent process: kept referenced so that no finalizer in the
#: child ever runs code (a rollback, a close) on the parent's sockets.
_inherited: list[Any] = []


def lookup(alias: str, key: tuple[Any, ...]) -> Entry | None:
    """The live entry for ``alias`` if it was built for exactly ``key``."""
    entry = _entries.get(alias)
    if entry is not None and entry.key == key:
        return entry
    return None


def obtain(alias: str, key: tuple[Any, ...], build: Callable[[], PoolHandle]) -> Entry:
    """The entry for ``alias`` and ``key``, building it (and retiring a stale one) if needed."""
    entry = lookup(alias, key)
    if entry is not None:
        return entry
    with _lock:
        entry = lookup(alias, key)
        if entry is not None:
            return entry
        stale = _entries.get(alias)
        entry = Entry(alias, key, build())
        for hook in _new_pool_hooks:
            hook(entry)
        _entries[alias] = entry
    if stale is not None:
        logger.info("settings of %r changed: closing its previous pool", alias)
        _close_entry(stale)
    return entry


def retire(alias: str) -> None:
    """Close the pool of ``alias``, if any; the next checkout builds a new one."""
    with _lock:
        entry = _entries.pop(alias, None)
    if entry is not None:
        _close_entry(entry)


def current(alias: str) -> Entry | None:
    """The entry of ``alias`` whatever its key, without building anything."""
    return _entries.get(alias)


def snapshot() -> dict[str, Entry]:
    """The live entries of this process, by alias."""
    return dict(_entries)


def close_all_pools() -> None:
    """Close every pool of this process. Safe to call more than once; runs at exit."""
    with _lock:
        entries = list(_entries.values())
        _entries.clear()
    for entry in entries:
        _close_entry(entry)


def keep_inherited(obj: Any) -> None:
    """Keep an object of the parent process referenced for the rest of this process."""
    _inherited.append(obj)


def _close_entry(entry: Entry) -> None:
    if entry.closed or entry.inherited:
        return
    entry.closed = True
    try:
        entry.handle.close()
    except Exception:
        logger.exception("closing the pool of %r failed", entry.alias)


def _forget_inherited_pools() -> None:
    global _lock  # noqa: PLW0603
    # Another thread may have held the lock at fork time; that thread does not exist here.
    _lock = threading.Lock()
    for entry in _entries.values():
        entry.inherited = True
        keep_inherited(entry)
    _entries.clear()
    for hook in _after_fork_hooks:
        hook()


_after_fork_hooks: list[Callable[[], None]] = []
_new_pool_hooks: list[Callable[[Entry], None]] = []


def on_new_pool(hook: Callable[[Entry], None]) -> None:
    """Run ``hook`` on each new entry, before any thread can check a connection out of it."""
    if hook not in _new_pool_hooks:
        _new_pool_hooks.append(hook)


def on_fork_in_child(hook: Callable[[], None]) -> None:
    """Run ``hook`` in a forked child, after the inherited pools were forgotten."""
    _after_fork_hooks.append(hook)


os.register_at_fork(after_in_child=_forget_inherited_pools)
atexit.register(close_all_pools)
