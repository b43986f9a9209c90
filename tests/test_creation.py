"""Test databases: the connection Django's create_test_db() checks out goes back."""

from __future__ import annotations

import django
import pytest
from django.db import connections

from helpers import released
from suite import superuser_connect


def test_create_test_db_leaves_no_connection_checked_out(alias: str, make_alias) -> None:
    # Django's create_test_db() ends with ensure_connection(): a checkout without a query,
    # which nothing gave back before the first close(): the first test started with one
    # connection in use.
    real = f"creation_{alias}"
    with superuser_connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS test_{real}")
    name = make_alias(alias, NAME=real)
    connection = connections[name]
    serialize = {} if django.VERSION >= (6, 0) else {"serialize": False}
    connection.creation.create_test_db(verbosity=0, autoclobber=True, **serialize)
    try:
        assert released(name)
    finally:
        connection.creation.destroy_test_db(real, verbosity=0)


@pytest.mark.skipif(django.VERSION < (6, 0), reason="the serialize argument is deprecated in 6.0")
def test_create_test_db_warnings_still_name_the_caller(make_alias) -> None:
    from django.utils.deprecation import RemovedInDjango2028Warning

    real = "creation_warning"
    with superuser_connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS test_{real}")
    connection = connections[make_alias("default", NAME=real)]
    try:
        with pytest.warns(RemovedInDjango2028Warning, match="serialize") as caught:
            connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    finally:
        connection.creation.destroy_test_db(real, verbosity=0)
    assert [warning.filename for warning in caught] == [__file__]
