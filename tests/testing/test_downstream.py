"""What a downstream project with pytest-django met: the first database test of a session, the
leak check in any fixture order and on plain ``django_db`` tests (issue 7, section 2)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SETTINGS = """
DATABASES = {
    "default": {
        "ENGINE": "django_pg_real_pool",
        "NAME": "shop",
        "OPTIONS": {"pool": {"min_size": 1, "max_size": 2, "timeout": 2}},
    },
    "other": {
        "ENGINE": "django_pg_real_pool.dj_db_conn_pool",
        "NAME": "shop_other",
        "POOL_OPTIONS": {"POOL_SIZE": 2, "MAX_OVERFLOW": 0, "TIMEOUT": 2},
    },
}
INSTALLED_APPS = []
USE_TZ = True
SECRET_KEY = "only-for-tests"
"""


def project(pytester: pytest.Pytester, tests: str) -> pytest.RunResult:
    pytester.makepyfile(shop_settings=SETTINGS, test_it=tests)
    pytester.makeini("[pytest]\nDJANGO_SETTINGS_MODULE = shop_settings\npythonpath = .\n")
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


FIRST_DATABASE_TEST = """
import pytest
from django_pg_real_pool import pool_stats


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_first_database_test(hold_connections):
    for alias in ("default", "other"):
        stats = pool_stats(alias)
        assert stats is None or stats.in_use == 0, (alias, stats)
        hold_connections(alias, 2, timeout=5).release()


@pytest.mark.pool_leak_check
@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_leak_check_on_a_database_test():
    from django.db import connections

    for alias in ("default", "other"):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
"""


@pytest.mark.parametrize("only", ["test_first_database_test", "test_leak_check"])
def test_first_database_test_of_a_session_finds_every_connection_in_its_pool(
    pytester: pytest.Pytester, only: str
) -> None:
    """pytest-django's test database creation leaves no connection checked out (``-k``)."""
    pytester.makepyfile(shop_settings=SETTINGS, test_it=FIRST_DATABASE_TEST)
    pytester.makeini("[pytest]\nDJANGO_SETTINGS_MODULE = shop_settings\npythonpath = .\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", only)
    result.assert_outcomes(passed=1)


ORDERS = """
import pytest
from django.db import connections


def query(alias):
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")


def test_leak_check_after_pool_alias(pool_settings, pool_alias, no_pool_leaks):
    query(pool_alias(pool_settings("real_pool", max_size=1)))


def test_leak_check_before_pool_alias(no_pool_leaks, pool_settings, pool_alias):
    query(pool_alias(pool_settings("real_pool_dj", max_size=1)))


def test_holders_before_pool_alias(no_pool_leaks, hold_connections, pool_settings, pool_alias):
    hold_connections(pool_alias(pool_settings("real_pool", max_size=1)), 1)


@pytest.mark.pool_leak_check
def test_marker_with_pool_alias(pool_settings, pool_alias):
    query(pool_alias(pool_settings("real_pool", max_size=1)))


@pytest.mark.django_db
def test_plain_django_db_test(no_pool_leaks):
    query("default")


@pytest.mark.pool_leak_check
@pytest.mark.django_db
def test_plain_django_db_test_with_the_marker():
    query("default")


def test_leak_after_pool_alias(pool_settings, pool_alias, no_pool_leaks):
    connections[pool_alias(pool_settings("real_pool", max_size=1))].cursor().execute("SELECT 1")


def test_leak_before_pool_alias(no_pool_leaks, pool_settings, pool_alias):
    connections[pool_alias(pool_settings("real_pool", max_size=1))].cursor().execute("SELECT 1")

"""


def test_leak_check_gives_one_answer_in_any_fixture_order(pytester: pytest.Pytester) -> None:
    result = project(pytester, ORDERS)
    result.assert_outcomes(passed=8, errors=2)  # the two leaking bodies pass, then error
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leak_after_pool_alias*",
            "pool leak: 1 connection(s) of 'pool*' still checked out",
            "*ERROR at teardown of test_leak_before_pool_alias*",
            "pool leak: 1 connection(s) of 'pool*' still checked out",
        ]
    )


READINESS = """
DATABASES = {
    "default": {
        "ENGINE": "django_pg_real_pool",
        "NAME": "shop",
        "OPTIONS": {"pool": {"min_size": 1, "max_size": 2}},
    },
    "readiness": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "TEST": {"MIRROR": "default"},
    },
}
INSTALLED_APPS = []
USE_TZ = True
SECRET_KEY = "only-for-tests"
"""

READINESS_TEST = """
import pytest
from django.db import connections


@pytest.mark.django_db(databases=["default", "readiness"])
def test_readiness_answers_on_the_test_database():
    with connections["readiness"].cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone()[0] == connections["default"].settings_dict["NAME"]
"""


def test_readiness_alias_in_settings_does_not_block_dropping_the_test_database(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(shop_settings=READINESS, test_it=READINESS_TEST)
    pytester.makeini(
        "[pytest]\nDJANGO_SETTINGS_MODULE = shop_settings\npythonpath = .\nfilterwarnings = error\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*being accessed by other users*")
