"""Observations shared by the tests: who holds a connection, what the pool has out."""

from __future__ import annotations

from django.db import connections

from django_pg_real_pool import pool_stats


def held(alias: str) -> bool:
    """Whether this thread's wrapper for ``alias`` holds a pooled connection."""
    return connections[alias].connection is not None


def in_use(alias: str) -> int:
    """Connections of ``alias``'s pool checked out, by any thread."""
    stats = pool_stats(alias)
    assert stats is not None, f"{alias!r} has no pool yet"
    return stats.in_use


def released(alias: str) -> bool:
    return not held(alias) and in_use(alias) == 0
