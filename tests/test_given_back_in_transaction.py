"""A connection given back in the middle of a transaction (``close()`` at the end of a request
that left a manual transaction open) is rolled back before anyone else gets it, on the same
physical connection, by both engines."""

from __future__ import annotations

import pytest
from django.db import connections

from django_pg_real_pool.testing.backends import backend_pid


@pytest.mark.parametrize("engine", ["real_pool", "real_pool_dj"])
def test_an_open_transaction_is_rolled_back_when_given_back(
    engine, pool_settings, pool_alias
) -> None:
    alias = pool_alias(pool_settings(engine, max_size=1))
    connection = connections[alias]
    pid = backend_pid(alias)
    connection.set_autocommit(False)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE left_uncommitted (id int)")
    connection.close()  # the request ends without commit()

    assert backend_pid(alias) == pid  # the same physical connection (pool of one)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('left_uncommitted') IS NULL")
        assert cursor.fetchone() == (True,)
