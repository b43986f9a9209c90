"""Server-side cursors (``.iterator()``) abandoned before the end of a request are closed
before their connection goes back: none stays open for the next borrower, none fails later,
on both engines."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator

import pytest
from django.db import connections

from app.models import Item
from tight_pools import one_connection

ABANDONED = 100


def _open_cursors(alias: str) -> int:
    """Server-side cursors open on the pool's only connection."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors")
        count = int(cursor.fetchone()[0])
    connections[alias].close()
    return count


def _abandon_iterator(alias: str) -> Iterator[Item]:
    """One request that reads one row of an ``.iterator()`` and leaves it unfinished."""
    rows = Item.objects.using(alias).order_by("pk").iterator(chunk_size=1)
    assert next(rows).name == "a"
    connections[alias].close()  # the end of the request
    return rows


@pytest.mark.parametrize("template", ["default", "dj"])
def test_no_server_side_cursor_left_after_abandoned_iterators(
    make_alias: Callable[..., str], template: str
) -> None:
    alias = one_connection(make_alias, template)
    Item.objects.using(alias).bulk_create(Item(name=name, value=1) for name in "abc")
    kept = [_abandon_iterator(alias) for _ in range(ABANDONED)]
    assert _open_cursors(alias) == 0
    # The generators close their cursors when collected, long after the release: nothing may
    # fail (pytest turns an "Exception ignored" into an error) nor run on the connection.
    del kept
    gc.collect()
    assert _open_cursors(alias) == 0


@pytest.mark.parametrize("template", ["default", "dj"])
def test_requests_in_new_threads_do_not_meet_a_leftover_cursor(
    make_alias: Callable[..., str], template: str
) -> None:
    alias = one_connection(make_alias, template)
    Item.objects.using(alias).bulk_create(Item(name=name, value=1) for name in "abc")
    kept: list[Iterator[Item]] = []
    errors: list[BaseException] = []

    def request() -> None:
        try:
            kept.append(_abandon_iterator(alias))
        except BaseException as exc:
            errors.append(exc)

    for _ in range(10):  # each thread's cursor names start again at _sync_1
        thread = threading.Thread(target=request, daemon=True)
        thread.start()
        thread.join(10)
    assert errors == []
    assert _open_cursors(alias) == 0
    kept.clear()
    gc.collect()
