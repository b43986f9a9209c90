"""A network cut between the pool and the server, through the plugin's TCP proxy: while it lasts
every request fails within the pool's ``timeout`` (none hangs), and after ``restore()`` the
pool serves again without being restarted.

Django's stock pool (``django_native``) is the control.
"""

from __future__ import annotations

import time

import pytest
from django.db import Error, connections

from django_pg_real_pool.testing.backends import backend_pid
from helpers import DJANGO_NATIVE

ENGINES = ["real_pool", "real_pool_dj", DJANGO_NATIVE]
TIMEOUT = 1.0
#: What a loaded 2-core machine may add to the pool's ``timeout`` before a request fails.
SLACK = 1.5
#: How long the pool may take to serve again after the network is back. psycopg_pool retries a
#: failed connection after 1 s, 2 s, 4 s... (10 % jitter), so after a cut of about 3 s the
#: next attempt may come up to 4 s after restore() (2.4 s and 3.6 s observed).
RECOVERY_LIMIT = 10.0


def _attempt(alias: str) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        backend_pid(alias)
    except Error as exc:
        return exc, time.monotonic() - started
    finally:
        connections[alias].close()
    return None, time.monotonic() - started


@pytest.mark.timing
@pytest.mark.parametrize("health_checks", [True, False], ids=["checks", "no-checks"])
@pytest.mark.parametrize("engine", ENGINES)
def test_requests_fail_within_timeout_during_a_cut_then_recover(
    engine, health_checks, pool_settings, pool_alias, tcp_proxy
) -> None:
    proxy = tcp_proxy()
    settings = pool_settings(
        engine, via=proxy, max_size=2, timeout=TIMEOUT, health_checks=health_checks
    )
    alias = pool_alias(settings)
    before = backend_pid(alias)
    proxy.cut()
    outcomes = [_attempt(alias) for _ in range(3)]
    assert all(error is not None for error, _ in outcomes), outcomes
    slowest = max(elapsed for _, elapsed in outcomes)
    assert slowest <= TIMEOUT + SLACK, (
        f"a request took {slowest:.3f} s to fail during the cut; timeout is {TIMEOUT} s"
    )
    proxy.restore()
    restored = time.monotonic()
    while True:
        error, _ = _attempt(alias)
        if error is None:
            break
        assert time.monotonic() - restored <= RECOVERY_LIMIT, (
            f"no request succeeded within {RECOVERY_LIMIT} s of restore(); last error: {error!r}"
        )
    recovery = time.monotonic() - restored
    assert backend_pid(alias) != before  # served by a new connection, the old one was reset
    print(f"{engine} checks={health_checks}: failed <= {slowest:.3f} s, back in {recovery:.3f} s")
