"""When each engine gives the connection back to its pool."""

from __future__ import annotations

import logging

import pytest
from django.db import InterfaceError, connections, transaction

from app.models import Item
from helpers import held, in_use, released


def test_orm_query_outside_transaction_releases_after_each_query(alias: str) -> None:
    Item.objects.using(alias).create(name="a")
    assert released(alias)
    assert Item.objects.using(alias).count() == 1
    assert released(alias)
    assert [item.name for item in Item.objects.using(alias).all()] == ["a"]
    assert released(alias)
    Item.objects.using(alias).filter(name="a").update(value=3)
    assert released(alias)
    Item.objects.using(alias).filter(name="a").delete()
    assert released(alias)


def test_cursor_context_manager_holds_until_exit(alias: str) -> None:
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)
        assert held(alias)
    assert released(alias)


def test_closed_cursor_raises_like_stock_django(alias: str) -> None:
    cursor = connections[alias].cursor()
    cursor.execute("SELECT 1")
    cursor.close()
    assert released(alias)
    with pytest.raises(InterfaceError, match="closed"):
        cursor.execute("SELECT 1")
    cursor.close()  # closing twice is harmless, as in stock Django
    assert released(alias)


def test_iterator_without_server_side_cursor_releases_when_exhausted(
    alias: str, make_alias
) -> None:
    name = make_alias(alias, DISABLE_SERVER_SIDE_CURSORS=True)
    Item.objects.using(name).bulk_create([Item(name=str(i)) for i in range(5)])
    assert released(name)
    names = [item.name for item in Item.objects.using(name).iterator(chunk_size=2)]
    assert names == ["0", "1", "2", "3", "4"]
    assert released(name)


def test_server_side_cursor_holds_until_exhausted(alias: str) -> None:
    Item.objects.using(alias).bulk_create([Item(name=str(i)) for i in range(5)])
    iterator = Item.objects.using(alias).order_by("name").iterator(chunk_size=2)
    assert next(iterator).name == "0"
    assert held(alias)
    assert Item.objects.using(alias).count() == 5  # same connection, still held after
    assert held(alias)
    assert [item.name for item in iterator] == ["1", "2", "3", "4"]
    assert released(alias)


def test_server_side_cursor_holds_until_closed(alias: str) -> None:
    Item.objects.using(alias).bulk_create([Item(name=str(i)) for i in range(5)])
    iterator = Item.objects.using(alias).iterator(chunk_size=2)
    next(iterator)
    assert held(alias)
    iterator.close()
    assert released(alias)


def test_atomic_holds_until_outermost_block_ends(alias: str) -> None:
    with transaction.atomic(using=alias):
        Item.objects.using(alias).create(name="outer")
        assert held(alias)
        with transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="inner")
            assert held(alias)
        assert held(alias)
        with pytest.raises(ZeroDivisionError), transaction.atomic(using=alias):
            Item.objects.using(alias).create(name="rolled back to savepoint")
            raise ZeroDivisionError
        assert held(alias)
    assert released(alias)
    assert sorted(Item.objects.using(alias).values_list("name", flat=True)) == ["inner", "outer"]


def test_atomic_rollback_releases(alias: str) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic(using=alias):
        Item.objects.using(alias).create(name="x")
        raise ZeroDivisionError
    assert released(alias)
    assert Item.objects.using(alias).count() == 0


def test_on_commit_runs_after_commit_and_not_after_rollback(alias: str) -> None:
    ran: list[str] = []
    with transaction.atomic(using=alias):
        Item.objects.using(alias).create(name="x")
        transaction.on_commit(lambda: ran.append("committed"), using=alias)
        assert ran == []
    assert ran == ["committed"]
    with pytest.raises(ZeroDivisionError), transaction.atomic(using=alias):
        transaction.on_commit(lambda: ran.append("rolled back"), using=alias)
        raise ZeroDivisionError
    assert ran == ["committed"]
    assert released(alias)


def test_on_commit_hook_can_query(alias: str) -> None:
    counts: list[int] = []
    with transaction.atomic(using=alias):
        Item.objects.using(alias).create(name="x")
        transaction.on_commit(lambda: counts.append(Item.objects.using(alias).count()), using=alias)
    assert counts == [1]
    assert released(alias)


def test_manual_transaction_holds_until_commit(alias: str) -> None:
    transaction.set_autocommit(False, using=alias)
    try:
        Item.objects.using(alias).create(name="manual")
        assert held(alias)
        transaction.commit(using=alias)
        assert released(alias)
        # Still in manual mode: the next query opens a transaction on a fresh checkout.
        Item.objects.using(alias).create(name="second")
        assert held(alias)
        assert not transaction.get_autocommit(using=alias)
        transaction.rollback(using=alias)
        assert released(alias)
    finally:
        transaction.set_autocommit(True, using=alias)
    assert released(alias)
    assert list(Item.objects.using(alias).values_list("name", flat=True)) == ["manual"]


def test_unclosed_cursor_holds_until_close(alias: str) -> None:
    cursor = connections[alias].cursor()
    cursor.execute("SELECT 1")
    Item.objects.using(alias).count()  # other queries do not release it
    assert held(alias)
    connections[alias].close()  # Django's end-of-request close
    assert released(alias)
    del cursor


def test_unclosed_cursor_trace_logs_where_it_was_opened(
    alias: str, make_alias, caplog: pytest.LogCaptureFixture
) -> None:
    options = {**connections[alias].settings_dict["OPTIONS"], "trace_unclosed_cursors": True}
    name = make_alias(alias, OPTIONS=options)
    leaked = connections[name].cursor()  # the line the log must point at
    leaked.execute("SELECT 1")
    with caplog.at_level(logging.WARNING, logger="django_pg_real_pool"):
        connections[name].close()
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert f"a cursor of {name!r} was never closed" in message
    assert "leaked = connections[name].cursor()" in message
    # A closed cursor leaves nothing to report.
    caplog.clear()
    with connections[name].cursor() as cursor:
        cursor.execute("SELECT 1")
    with caplog.at_level(logging.WARNING, logger="django_pg_real_pool"):
        connections[name].close()
    assert caplog.records == []


def test_connection_created_is_sent_on_every_checkout(alias: str) -> None:
    from django.db.backends.signals import connection_created

    seen: list[str] = []

    def receiver(sender, connection, **kwargs) -> None:
        seen.append(connection.alias)

    connection_created.connect(receiver)
    try:
        Item.objects.using(alias).count()
        Item.objects.using(alias).count()
    finally:
        connection_created.disconnect(receiver)
    assert seen == [alias, alias]


def test_connection_created_receiver_may_query(alias: str) -> None:
    from django.db.backends.signals import connection_created

    def receiver(sender, connection, **kwargs) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    connection_created.connect(receiver)
    try:
        assert Item.objects.using(alias).count() == 0
    finally:
        connection_created.disconnect(receiver)
    assert released(alias)


def test_in_use_counts_other_threads(alias: str) -> None:
    import threading

    checked_out = threading.Event()
    finish = threading.Event()

    def hold() -> None:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            checked_out.set()
            finish.wait(10)
        connections[alias].close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert checked_out.wait(10)
        assert in_use(alias) == 1
        assert not held(alias)
    finally:
        finish.set()
        thread.join(10)
    assert in_use(alias) == 0


def test_closed_connection_in_atomic_block_refuses_the_next_query(alias: str) -> None:
    # Django >= 5.0 refuses in ensure_connection(); on 4.2 the engine must refuse itself, or
    # the write below would run on a fresh connection, outside the broken transaction.
    from django.db import ProgrammingError

    connection = connections[alias]
    message = "Cannot open a new connection in an atomic block"
    with pytest.raises(ProgrammingError, match=message), transaction.atomic(using=alias):
        Item.objects.using(alias).create(name="before")
        connection.close()
        Item.objects.using(alias).create(name="after")
    assert released(alias)
    assert Item.objects.using(alias).count() == 0


def test_is_usable_is_false_while_released(alias: str) -> None:
    # Django 4.2's is_usable() would dereference the None connection.
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert released(alias)
    assert connection.is_usable() is False
    with connection.cursor() as cursor:
        assert connection.is_usable() is True
        cursor.execute("SELECT 1")
