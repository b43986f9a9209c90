"""Both engines behind PgBouncer in transaction pooling mode, with the settings the docs prescribe;
and the ``pgbouncer`` fixture itself: where it runs, and that it leaves nothing behind."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connections, transaction

from django_pg_real_pool import pool_stats
from django_pg_real_pool.testing.databases import OUR_ENGINES
from django_pg_real_pool.testing.pgbouncer import PgBouncer

#: What docs/reliability.md prescribes behind a transaction-mode PgBouncer.
BEHIND_PGBOUNCER: dict[str, Any] = {
    "DISABLE_SERVER_SIDE_CURSORS": True,
    "OPTIONS": {"prepare_threshold": None},
}


def _settings(
    pool_settings: Callable[..., dict[str, Any]], engine: str, bouncer: PgBouncer, database: Any
) -> dict[str, Any]:
    return pool_settings(engine, database=database, via=bouncer, max_size=4, **BEHIND_PGBOUNCER)


def pool_stats_in_use(alias: str) -> int:
    stats = pool_stats(alias)
    assert stats is not None
    return stats.in_use


def test_pgbouncer_runs_unprivileged_in_transaction_mode(pgbouncer: PgBouncer) -> None:
    with psycopg.connect(**pgbouncer.connect_kwargs(), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pgbouncer.pool_mode == "transaction"
    assert "pool_mode = transaction" in (pgbouncer.log_path.parent / "pgbouncer.ini").read_text()
    assert pgbouncer.pid is not None
    status = Path(f"/proc/{pgbouncer.pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    if os.geteuid() == 0:
        assert uid != 0, "PgBouncer refuses root: it must run as another user"
    else:
        assert uid == os.geteuid()


def test_close_leaves_nothing_behind(pg_server) -> None:
    bouncer = PgBouncer(pg_server).start()
    directory, port, pid = bouncer.log_path.parent, bouncer.port, bouncer.pid
    assert pid is not None
    bouncer.close()
    assert bouncer.pid is None
    assert not Path(f"/proc/{pid}").exists()
    assert not directory.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host=bouncer.host, port=port, user=bouncer.user, connect_timeout=2)


def test_unknown_pool_mode_is_refused(pg_server) -> None:
    with pytest.raises(ValueError, match="pool_mode must be one of session, transaction"):
        PgBouncer(pg_server, pool_mode="transactions")


def test_managed_setting_is_refused(pg_server) -> None:
    with pytest.raises(ValueError, match="'listen_port' is managed by PgBouncer"):
        PgBouncer(pg_server, settings={"listen_port": "6432"})


@pytest.mark.parametrize("engine", OUR_ENGINES)
def test_queries_and_transactions_behind_pgbouncer(
    engine: str, pool_settings, pool_alias, pgbouncer: PgBouncer, pg_test_database
) -> None:
    alias = pool_alias(_settings(pool_settings, engine, pgbouncer, pg_test_database))
    with connections[alias].cursor() as cursor:
        cursor.execute("CREATE TABLE bounced (id int)")
    # The same statement many times: psycopg would prepare it after 5 runs; PgBouncer 1.18 in
    # transaction mode would then send it to a server that never saw the PREPARE.
    for number in range(20):
        with connections[alias].cursor() as cursor:
            cursor.execute("INSERT INTO bounced VALUES (%s)", [number])
    with pytest.raises(ZeroDivisionError), transaction.atomic(using=alias):
        with connections[alias].cursor() as cursor:
            cursor.execute("INSERT INTO bounced VALUES (%s)", [-1])
        raise ZeroDivisionError
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("SELECT count(*), min(id) FROM bounced")
        assert cursor.fetchone() == (20, 0)


@pytest.mark.parametrize("engine", OUR_ENGINES)
def test_iterator_without_server_side_cursor_behind_pgbouncer(
    engine: str, pool_settings, pool_alias, pgbouncer: PgBouncer, pg_test_database
) -> None:
    """``.iterator()`` reads every row in chunks through a client-side cursor, and gives the
    connection back at its end."""
    from app.models import Item

    alias = pool_alias(_settings(pool_settings, engine, pgbouncer, pg_test_database))
    with connections[alias].schema_editor() as editor:
        editor.create_model(Item)
    Item.objects.using(alias).bulk_create(Item(name=str(n)) for n in range(300))
    names = [item.name for item in Item.objects.using(alias).iterator(chunk_size=50)]
    assert len(names) == 300
    assert pool_stats_in_use(alias) == 0


@pytest.mark.parametrize("engine", OUR_ENGINES)
def test_many_threads_share_few_server_connections(
    engine: str, pool_settings, pool_alias, pgbouncer: PgBouncer, pg_test_database
) -> None:
    """8 threads, 4 pooled client connections each released after every query: PgBouncer
    multiplexes them onto its own server connections, with no error."""
    alias = pool_alias(_settings(pool_settings, engine, pgbouncer, pg_test_database))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    cursor.execute("SELECT 1")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:3]
    assert not any(thread.is_alive() for thread in threads)
    assert pool_stats_in_use(alias) == 0
