"""A server restart under load: threads commit rows with unique ids while the server stops and
starts again. No commit the application saw succeed may be lost, none may be applied twice, no
request may hang past the pool's ``timeout``; the recovery time is measured.

Django's stock pool (``django_native``) is the control.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import psycopg
import pytest
from django.db import Error, connections, transaction

from django_pg_real_pool.testing.janitor import Database
from django_pg_real_pool.testing.saturation import wait_until
from helpers import DJANGO_NATIVE

THREADS = 6
POOL_SIZE = 4
TIMEOUT = 2.0
#: A loaded 2-core machine may add this much to the longest request.
SLACK = 2.0
#: Commits before the restart, and after it, that show the load ran on both sides.
COMMITS_EACH_SIDE = 50
#: How long after the server is back the pool may take to commit again.
RECOVERY_LIMIT = 10.0


@dataclass
class Load:
    """Threads committing one row each per transaction, and what each of them saw."""

    alias: str
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    acknowledged: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    errors: list[BaseException] = field(default_factory=list)
    slowest: float = 0.0
    last_success: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                row = next(self.ids)
            started = time.monotonic()
            try:
                with (
                    transaction.atomic(using=self.alias),
                    connections[self.alias].cursor() as cursor,
                ):
                    cursor.execute("INSERT INTO commits (id) VALUES (%s)", [row])
            except Error as exc:
                connections[self.alias].close()
                with self.lock:
                    self.failed.add(row)
                    self.errors.append(exc)
            else:
                with self.lock:
                    self.acknowledged.add(row)
                    self.last_success = time.monotonic()
            finally:
                self.slowest = max(self.slowest, time.monotonic() - started)
        connections[self.alias].close()

    def committed(self) -> int:
        with self.lock:
            return len(self.acknowledged)


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.parametrize("health_checks", [True, False], ids=["checks", "no-checks"])
@pytest.mark.parametrize("engine", ["real_pool", "real_pool_dj", DJANGO_NATIVE])
def test_restart_under_load_loses_no_acknowledged_commit(
    engine, health_checks, pg_private_server, pool_settings, pool_alias
) -> None:
    server = pg_private_server
    with psycopg.connect(**server.connect_kwargs(), autocommit=True) as conn:
        conn.execute("CREATE TABLE commits (id bigint NOT NULL)")  # no key: a repeat would show
    settings = pool_settings(
        engine,
        database=Database("postgres", server),
        max_size=POOL_SIZE,
        timeout=TIMEOUT,
        health_checks=health_checks,
    )
    load = Load(pool_alias(settings))
    threads = [threading.Thread(target=load.run, name=f"commit-{n}") for n in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: load.committed() >= COMMITS_EACH_SIDE, what="commits before")
        server.restart()
        back = time.monotonic()
        before = load.committed()
        wait_until(
            lambda: load.last_success > back,
            timeout=RECOVERY_LIMIT,
            what=f"a commit after the restart ({len(load.errors)} errors so far)",
        )
        recovery = load.last_success - back
        wait_until(lambda: load.committed() >= before + COMMITS_EACH_SIDE, what="commits after")
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(TIMEOUT + SLACK + 5)
    assert not [thread.name for thread in threads if thread.is_alive()]
    with psycopg.connect(**server.connect_kwargs(), autocommit=True) as conn:
        rows = [row[0] for row in conn.execute("SELECT id FROM commits").fetchall()]
    assert len(rows) == len(set(rows)), "a commit was applied twice"
    assert load.acknowledged <= set(rows), "a commit the application saw succeed was lost"
    assert set(rows) <= load.acknowledged | load.failed
    assert load.slowest <= TIMEOUT + SLACK, f"a request took {load.slowest:.3f} s"
    print(
        f"{engine} checks={health_checks}: {len(load.acknowledged)} acknowledged, "
        f"{len(load.failed)} failed ({len(set(rows) & load.failed)} of them committed), "
        f"slowest request {load.slowest:.3f} s, first commit {recovery:.3f} s after the restart"
    )
