"""Dead idle connections: after every idle backend of a pool was killed, a checkout with
health checks gets a good connection at once (no psycopg_pool backoff); without them the
application sees the error documented on docs/reliability.md; an outage still fails within
``timeout``."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest
from django.db import OperationalError, connections

from django_pg_real_pool import pool_stats
from django_pg_real_pool.testing.backends import terminate_backends
from django_pg_real_pool.testing.proxy import TcpProxy
from django_pg_real_pool.testing.saturation import HeldConnections, wait_until
from suite import DATABASE, server

POOL = 4
_names = itertools.count()


def _pool(make_alias: Callable[..., str], engine: str, *, checked: bool, **extra: object) -> str:
    """A pool of ``POOL`` connections under its own application_name, every one opened."""
    application = f"dead_idle_{next(_names)}"
    options = {"application_name": application}
    if engine == "dj":
        alias = make_alias(
            "dj",
            OPTIONS=options,
            POOL_OPTIONS={"POOL_SIZE": POOL, "MAX_OVERFLOW": 0, "TIMEOUT": 5, "PRE_PING": checked},
            **extra,
        )
    else:
        alias = make_alias(
            "default",
            CONN_HEALTH_CHECKS=checked,
            OPTIONS={**options, "pool": {"min_size": POOL, "max_size": POOL, "timeout": 5}},
            **extra,
        )
    HeldConnections(alias, POOL).start().release()
    wait_until(lambda: pool_stats(alias).idle == POOL, what=f"{POOL} idle connections")
    return alias


def _kill_idle(alias: str) -> None:
    application = connections[alias].settings_dict["OPTIONS"]["application_name"]
    assert terminate_backends(server(), DATABASE, application_name=application) == POOL


def _query(alias: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@pytest.mark.timing
@pytest.mark.parametrize("engine", ["default", "dj"])
def test_health_checks_recover_from_all_idle_backends_killed_at_once(
    make_alias: Callable[..., str], engine: str
) -> None:
    alias = _pool(make_alias, engine, checked=True)
    _kill_idle(alias)
    took = []
    for _ in range(POOL * 2):  # every dead connection, and then some
        started = time.perf_counter()
        _query(alias)
        took.append(time.perf_counter() - started)
    assert max(took) < 0.1, f"checkouts after the kill took {[f'{t:.3f}' for t in took]} s"


@pytest.mark.parametrize("engine", ["default", "dj"])
def test_without_health_checks_the_next_query_fails_then_the_pool_recovers(
    make_alias: Callable[..., str], engine: str
) -> None:
    alias = _pool(make_alias, engine, checked=False)
    _kill_idle(alias)
    with pytest.raises(OperationalError) as failed:
        _query(alias)
    assert "terminating connection due to administrator command" in str(failed.value)
    connections[alias].close()
    # Each dead connection fails once, is discarded and replaced.
    failures = 1
    for _ in range(POOL * 3):
        try:
            _query(alias)
        except OperationalError:
            failures += 1
    assert 1 <= failures <= POOL
    _query(alias)


@pytest.mark.timing
def test_an_outage_still_fails_within_timeout(make_alias: Callable[..., str]) -> None:
    with TcpProxy(server().host, server().port) as proxy:
        alias = make_alias(
            "default",
            HOST=proxy.host,
            PORT=str(proxy.port),
            CONN_HEALTH_CHECKS=True,
            OPTIONS={"pool": {"min_size": 2, "max_size": 2, "timeout": 1.0}},
        )
        HeldConnections(alias, 2).start().release()
        wait_until(lambda: pool_stats(alias).idle == 2, what="2 idle connections")
        proxy.cut()
        started = time.perf_counter()
        with pytest.raises(OperationalError, match=r"couldn.t get a connection after 1\.00 sec"):
            _query(alias)
        took = time.perf_counter() - started
        assert 0.9 <= took <= 2.0, f"the checkout failed after {took:.3f} s, timeout 1.0 s"
        connections[alias].close()
        proxy.restore()
        wait_until(lambda: _recovered(alias), what="the pool serves again after the outage")


def _recovered(alias: str) -> bool:
    try:
        _query(alias)
    except OperationalError:
        return False
    finally:
        connections[alias].close()
    return True
