"""Observations shared by the tests: who holds a connection, what the pool has out."""

from __future__ import annotations

import signal

import django
import pytest
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


#: Django's stock pool, the control of the reliability tests: it exists from Django 5.1.
DJANGO_NATIVE = pytest.param(
    "django_native",
    marks=pytest.mark.skipif(
        django.VERSION < (5, 1), reason="Django's own pool, the control, arrived in Django 5.1"
    ),
    id="django_native",
)


def default_sigint() -> None:
    """``preexec_fn`` of a process a test interrupts with SIGINT: a shell's background job
    (``make pairwise &``) and the xdist workers under it ignore SIGINT, and a child inherits
    that, so Ctrl-C would never reach it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
