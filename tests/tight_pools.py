"""Aliases whose pool has one connection, and a checkout made to wait a known time."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import connections

from django_pg_real_pool.testing.saturation import (
    HeldConnections,
    QueuedCheckouts,
    wait_for_waiting,
)


def one_connection(make_alias: Callable[..., str], template: str, *, timeout: float = 10) -> str:
    """A new alias like ``template`` ("default" or "dj") whose pool has one connection."""
    if template == "dj":
        return make_alias(
            "dj", POOL_OPTIONS={"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": timeout}
        )
    return make_alias(
        "default", OPTIONS={"pool": {"min_size": 1, "max_size": 1, "timeout": timeout}}
    )


def query(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")


def make_one_checkout_wait(alias: str, *, at_least: float) -> None:
    """One checkout of ``alias`` (a one-connection pool) waits ``at_least`` seconds, then
    gets the connection."""
    holders = HeldConnections(alias, 1).start()
    queued = QueuedCheckouts(alias, 1).start()
    try:
        wait_for_waiting(alias, 1)
        # The duration under test, not a synchronisation: the queued checkout is waiting.
        time.sleep(at_least)
    finally:
        holders.release()
    assert queued.join() == [None]
