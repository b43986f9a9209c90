"""The logger django_pg_real_pool warns about slow checkouts and long holds, never leaking a
password."""

from __future__ import annotations

import logging
import time

import pytest
from django.db import transaction
from django.test import override_settings

from django_pg_real_pool import pool_stats
from helpers import released
from tight_pools import make_one_checkout_wait, one_connection, query

LOGGER = "django_pg_real_pool"
PASSWORD = "s3cr3t-never-logged"


def template(alias: str) -> str:
    return "dj" if alias == "dj" else "default"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]


def hold_for_a_while(alias: str, seconds: float) -> None:
    with transaction.atomic(using=alias):
        query(alias)
        time.sleep(seconds)  # the hold being measured


def test_slow_checkout_is_warned(make_alias, alias, caplog) -> None:
    name = one_connection(make_alias, template(alias))
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with override_settings(DJANGO_PG_REAL_POOL={"SLOW_CHECKOUT_WARNING": 0.1}):
        query(name)
        assert warnings_of(caplog) == []
        make_one_checkout_wait(name, at_least=0.2)
    (message,) = warnings_of(caplog)
    assert message.startswith(f"checkout from the pool {name!r} waited ")
    assert "(SLOW_CHECKOUT_WARNING is 0.100 s)" in message


def test_no_warning_without_thresholds(make_alias, alias, caplog) -> None:
    name = one_connection(make_alias, template(alias))
    caplog.set_level(logging.WARNING, logger=LOGGER)
    make_one_checkout_wait(name, at_least=0.2)
    hold_for_a_while(name, 0.2)
    assert warnings_of(caplog) == []


@pytest.mark.timing  # a query must be held less than 50 ms: not so on a machine under load
def test_long_hold_is_warned_with_where_it_was_taken(make_alias, alias, caplog) -> None:
    name = make_alias(template(alias), PASSWORD=PASSWORD)
    query(name)  # the pool opened and Django's first-connection checks done, before timing
    caplog.set_level(logging.WARNING, logger=LOGGER)
    settings = {"LONG_HOLD_WARNING": 0.05, "RECORD_CHECKOUT_ORIGIN": True}
    with override_settings(DJANGO_PG_REAL_POOL=settings):
        query(name)
        assert warnings_of(caplog) == []
        hold_for_a_while(name, 0.1)
    (message,) = warnings_of(caplog)
    assert message.startswith(f"a connection of the pool {name!r} was held ")
    assert "(LONG_HOLD_WARNING is 0.050 s); checked out at:" in message
    assert "in hold_for_a_while" in message
    assert "test_logging.py" in message
    assert "release.py" not in message, "the package's own frames are left out"
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)


def test_long_hold_without_origin_says_how_to_get_it(make_alias, alias, caplog) -> None:
    name = one_connection(make_alias, template(alias))
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with override_settings(DJANGO_PG_REAL_POOL={"LONG_HOLD_WARNING": 0.05}):
        hold_for_a_while(name, 0.1)
    (message,) = warnings_of(caplog)
    assert message.endswith("(set RECORD_CHECKOUT_ORIGIN to see where it was checked out)")


def test_a_failing_observer_never_breaks_a_checkout(make_alias, alias, caplog) -> None:
    name = one_connection(make_alias, template(alias))
    caplog.set_level(logging.ERROR, logger=LOGGER)
    with override_settings(DJANGO_PG_REAL_POOL={"LONG_HOLD_WARNINGS": 1}):  # refused
        query(name)
        query(name)
    assert released(name)
    assert pool_stats(name).checkouts == 2
    failures = [r for r in caplog.records if r.getMessage() == "a checkout observer failed"]
    assert failures
    assert "Did you mean 'LONG_HOLD_WARNING'?" in str(failures[0].exc_info[1])
