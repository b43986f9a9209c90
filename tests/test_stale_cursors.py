"""A cursor kept past the release of its connection raises InterfaceError when used, instead
of running on the physical connection that someone else may hold now. Django's stock pool,
the control, runs it there."""

from __future__ import annotations

import threading
from collections.abc import Callable

import django
import pytest
from django.db import InterfaceError, connections, transaction

from tight_pools import one_connection


def _held_by_another_thread(alias: str, stale: object) -> list[BaseException | None]:
    """Use ``stale`` while another thread holds the pool's only connection in a transaction
    that inserts nothing and rolls back; what the stale cursor did must not show there."""
    results: list[BaseException | None] = []
    inside, done = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(using=alias):
                with connections[alias].cursor() as cursor:
                    cursor.execute("SELECT 1")
                inside.set()
                done.wait(10)
                transaction.set_rollback(True, using=alias)
        finally:
            connections[alias].close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert inside.wait(10)
    try:
        stale.execute("SELECT 1")  # type: ignore[attr-defined]
    except BaseException as exc:
        results.append(exc)
    else:
        results.append(None)
    done.set()
    holder.join(10)
    return results


@pytest.mark.parametrize("template", ["default", "dj"])
def test_a_cursor_kept_after_close_raises(make_alias: Callable[..., str], template: str) -> None:
    alias = one_connection(make_alias, template)
    stale = connections[alias].cursor()
    stale.execute("SELECT 1")
    connections[alias].close()  # the end of the request: the connection goes back
    [outcome] = _held_by_another_thread(alias, stale)
    assert isinstance(outcome, InterfaceError), outcome
    assert "was kept after its connection went back to the pool" in str(outcome)
    with pytest.raises(InterfaceError):
        stale.executemany("SELECT %s", [(1,)])
    # A new cursor works.
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)
    connections[alias].close()


@pytest.mark.parametrize("template", ["default", "dj"])
def test_a_cursor_kept_past_the_end_of_a_request_raises(
    make_alias: Callable[..., str], template: str
) -> None:
    from django.core.signals import request_finished, request_started

    alias = one_connection(make_alias, template)
    request_started.send(sender=None)
    kept = connections[alias].cursor()  # never closed by the request
    kept.execute("SELECT 1")
    request_finished.send(sender=None)
    assert connections[alias].connection is None
    with pytest.raises(InterfaceError, match="went back to the pool"):
        kept.execute("SELECT 1")


@pytest.mark.parametrize("template", ["default", "dj"])
def test_a_closed_cursor_still_raises_psycopgs_error(
    make_alias: Callable[..., str], template: str
) -> None:
    alias = one_connection(make_alias, template)
    cursor = connections[alias].cursor()
    cursor.close()
    connections[alias].close()
    with pytest.raises(InterfaceError, match="closed"):
        cursor.execute("SELECT 1")


@pytest.mark.skipif(django.VERSION < (5, 1), reason="Django's own pool arrived in 5.1")
def test_control_django_pool_runs_a_stale_cursor_on_the_next_holder(
    make_alias: Callable[..., str],
) -> None:
    alias = make_alias("plain", OPTIONS={"pool": {"min_size": 1, "max_size": 1, "timeout": 10}})
    stale = connections[alias].cursor()
    stale.execute("SELECT 1")
    connections[alias].close()
    assert _held_by_another_thread(alias, stale) == [None]
    connections[alias].close_pool()
