"""System checks: each id triggered, and not triggered, through Django's check framework."""

from __future__ import annotations

import copy
import itertools
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

PREFIX = "django_pg_real_pool."
_names = itertools.count()


@pytest.fixture
def make_alias() -> Iterator[Callable[..., str]]:
    """Like conftest's, for settings only: the alias is never connected, so a setting the
    engine would refuse can be checked (and removed) without building a wrapper."""
    from django.db import connections

    made: list[str] = []

    def make(template: str, **overrides: Any) -> str:
        name = f"checked{next(_names)}_{template}"
        connections.settings[name] = {**copy.deepcopy(connections.settings[template]), **overrides}
        made.append(name)
        return name

    yield make
    for name in made:
        for wrapper in connections.all(initialized_only=True):
            if wrapper.alias == name:  # the budget check made one
                wrapper.close()
                del connections[name]
        del connections.settings[name]


def our_messages(*, deploy: bool = False) -> list[tuple[str, str]]:
    return [
        (message.id, message.msg)
        for message in run_checks(include_deployment_checks=deploy, tags=["pgpool"])
        if (message.id or "").startswith(PREFIX)
    ]


def ids_for(alias: str, *, deploy: bool = False) -> list[str]:
    return [id_ for id_, msg in our_messages(deploy=deploy) if repr(alias) in msg]


def test_the_suite_settings_pass() -> None:
    assert our_messages() == []


def test_e001_conn_max_age_on_a_pooled_alias(make_alias, alias: str) -> None:
    assert ids_for(make_alias(alias, CONN_MAX_AGE=0)) == []
    name = make_alias(alias, CONN_MAX_AGE=60)
    assert ids_for(name) == [PREFIX + "E001"]


def test_e001_not_for_the_engine_with_its_pool_off(make_alias) -> None:
    assert ids_for(make_alias("default", CONN_MAX_AGE=60, OPTIONS={"pool": False})) == []


def test_e002_pool_options_on_the_psycopg_pool_engine(make_alias) -> None:
    name = make_alias("default", POOL_OPTIONS={"POOL_SIZE": 2})
    assert ids_for(name) == [PREFIX + "E002"]
    assert ids_for(make_alias("dj", POOL_OPTIONS={"POOL_SIZE": 2})) == []


def test_e003_options_pool_on_the_dj_engine(make_alias) -> None:
    name = make_alias("dj", OPTIONS={"pool": {"max_size": 2}})
    assert ids_for(name) == [PREFIX + "E003"]
    assert ids_for(make_alias("default", OPTIONS={"pool": {"max_size": 2}})) == []
    assert ids_for(make_alias("dj", OPTIONS={"pool": False})) == []  # no pool, as on the first


def test_e004_dj_engine_without_its_extra(monkeypatch) -> None:
    assert ids_for("dj") == []
    monkeypatch.setitem(sys.modules, "dj_db_conn_pool", None)  # import raises ImportError
    assert ids_for("dj") == [PREFIX + "E004"]
    (message,) = [msg for id_, msg in our_messages() if id_ == PREFIX + "E004"]
    assert "pip install 'django-pg-real-pool[dj-db-conn-pool]'" in message


def test_e005_pool_settings_rejected(make_alias) -> None:
    name = make_alias("default", OPTIONS={"pool": {"max_sise": 2}})
    assert ids_for(name) == [PREFIX + "E005"]
    (message,) = [msg for id_, msg in our_messages() if id_ == PREFIX + "E005"]
    assert "Did you mean 'max_size'?" in message


def test_e006_package_setting_rejected() -> None:
    with override_settings(DJANGO_PG_REAL_POOL={"WORKRES": 4}):
        ((id_, message),) = our_messages()
    assert id_ == PREFIX + "E006"
    assert "Did you mean 'WORKERS'?" in message


def test_e007_metrics_without_prometheus_client(monkeypatch) -> None:
    with override_settings(DJANGO_PG_REAL_POOL={"METRICS": True}):
        assert our_messages() == []
        monkeypatch.setitem(sys.modules, "prometheus_client", None)
        assert [id_ for id_, _ in our_messages()] == [PREFIX + "E007"]


def test_e008_readiness_alias_not_in_databases() -> None:
    with override_settings(DJANGO_PG_REAL_POOL={"READINESS_ALIAS": "plain"}):
        assert our_messages() == []
    with override_settings(DJANGO_PG_REAL_POOL={"READINESS_ALIAS": "replica"}):
        assert [id_ for id_, _ in our_messages()] == [PREFIX + "E008"]


def test_w001_pool_timeout_not_shorter_than_the_request_timeout() -> None:
    # The suite's pools wait up to 10 s.
    with override_settings(DJANGO_PG_REAL_POOL={"REQUEST_TIMEOUT": 30}):
        assert our_messages() == []
    with override_settings(DJANGO_PG_REAL_POOL={"REQUEST_TIMEOUT": 10}):
        found = our_messages()
    assert [id_ for id_, _ in found] == [PREFIX + "W001"] * 2
    assert "DATABASES['default']['OPTIONS']['pool']['timeout'] is 10 s" in found[0][1]
    assert "DATABASES['dj']['POOL_OPTIONS']['TIMEOUT'] is 10 s" in found[1][1]


def test_w002_more_connections_than_the_server_accepts() -> None:
    # The suite's pools: 4 + 4 per process, on a server with max_connections 100 or more.
    with override_settings(DJANGO_PG_REAL_POOL={"WORKERS": 2}):
        assert our_messages(deploy=True) == []
    with override_settings(DJANGO_PG_REAL_POOL={"WORKERS": 1000}):
        ((id_, message),) = our_messages(deploy=True)
        assert our_messages(deploy=False) == [], "a --deploy check only"
    assert id_ == PREFIX + "W002"
    assert message.startswith(
        "the pools may open 8000 connections ('default' 4 + 'dj' 4 = 8 per process, times "
        "WORKERS 1000) but the server accepts "
    )


def test_w002_skipped_when_the_server_is_unreachable(make_alias) -> None:
    make_alias("default", PORT=1, OPTIONS={"pool": {"max_size": 50}})
    with override_settings(DJANGO_PG_REAL_POOL={"WORKERS": 1000}):
        found = our_messages(deploy=True)
    assert [msg for _, msg in found if "'checked" in msg] == []


@pytest.mark.parametrize("template", ["default", "dj"])
def test_not_our_aliases_are_left_alone(make_alias, template: str) -> None:
    name = make_alias(template, ENGINE="django.db.backends.postgresql", CONN_MAX_AGE=60)
    assert ids_for(name) == []
