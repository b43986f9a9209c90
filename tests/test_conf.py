"""DJANGO_PG_REAL_POOL: defaults, and a clear error for every bad value (no server needed)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_pg_real_pool import conf


def test_defaults_when_the_setting_is_absent() -> None:
    found = conf.validate(None)
    assert found == conf.PackageSettings()
    assert (found.WORKERS, found.METRICS, found.READINESS_ALIAS, found.READINESS_TIMEOUT) == (
        1,
        False,
        "default",
        2,
    )


def test_given_values_are_kept() -> None:
    found = conf.validate({"WORKERS": 8, "REQUEST_TIMEOUT": 30, "SLOW_CHECKOUT_WARNING": 0.5})
    assert (found.WORKERS, found.REQUEST_TIMEOUT, found.SLOW_CHECKOUT_WARNING) == (8, 30, 0.5)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([("WORKERS", 2)], "DJANGO_PG_REAL_POOL must be a dict, not list"),
        ({"WORKRES": 2}, "unknown key 'WORKRES'. Valid keys: WORKERS, .* Did you mean 'WORKERS'?"),
        ({"workers": 2}, "Did you mean 'WORKERS'?"),
        ({"WORKERS": 0}, r"\['WORKERS'\] must be an integer >= 1, not 0"),
        ({"WORKERS": True}, r"\['WORKERS'\] must be an integer >= 1, not True"),
        ({"READINESS_TIMEOUT": 0.5}, r"\['READINESS_TIMEOUT'\] must be an integer >= 1"),
        ({"REQUEST_TIMEOUT": -1}, r"\['REQUEST_TIMEOUT'\] must be a positive number of seconds"),
        ({"LONG_HOLD_WARNING": "1s"}, r"\['LONG_HOLD_WARNING'\] must be a positive number"),
        ({"METRICS": "yes"}, r"\['METRICS'\] must be True or False, not 'yes'"),
        ({"READINESS_ALIAS": None}, r"\['READINESS_ALIAS'\] must be an alias of DATABASES"),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(raw: object, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        conf.validate(raw)


def test_override_settings_is_seen_at_once() -> None:
    assert conf.get().WORKERS == 1
    with override_settings(DJANGO_PG_REAL_POOL={"WORKERS": 3}):
        assert conf.get().WORKERS == 3
    assert conf.get().WORKERS == 1
