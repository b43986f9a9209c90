"""Prometheus metrics, scraped through prometheus-client's exposition: in this process, and
from two forked workers in multiprocess mode (a subprocess, since prometheus-client picks its
mode when first imported)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.db import OperationalError
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from django_pg_real_pool import metrics
from django_pg_real_pool.testing.saturation import HeldConnections
from suite import server
from test_safety import run_scenario
from tight_pools import one_connection, query

ENGINES = {"default": "real_pool", "dj": "real_pool_dj"}


def samples(text: str, alias: str) -> dict[tuple[str, str], float]:
    """(sample name, state or le) -> value, for ``alias``'s pool."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("db_client_connection_pool_name") == alias:
                extra = sample.labels.get("state") or sample.labels.get("le") or ""
                found[sample.name, extra] = sample.value
    return found


@pytest.fixture
def metrics_on() -> Iterator[None]:
    with override_settings(DJANGO_PG_REAL_POOL={"METRICS": True}):
        yield


@pytest.mark.usefixtures("metrics_on")
def test_one_process_exports_the_opentelemetry_names(make_alias, alias: str) -> None:
    name = one_connection(make_alias, alias, timeout=0.3)
    for _ in range(3):
        query(name)
    with HeldConnections(name, 1).start(), pytest.raises(OperationalError):
        query(name)  # times out: the only connection is held
    text, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    found = samples(text.decode(), name)
    engine = f'engine="{ENGINES[alias]}"'
    assert engine in text.decode()
    assert found["db_client_connection_wait_time_seconds_count", ""] == 4  # 3 + the holder
    assert found["db_client_connection_use_time_seconds_count", ""] == 4
    assert found["db_client_connection_timeouts_total", ""] == 1
    assert found["db_client_connection_count", "used"] == 0
    assert found["db_client_connection_count", "idle"] == 1
    assert found["db_client_connection_pending_requests", ""] == 0
    assert found["db_client_connection_max", ""] == 1
    assert found["db_client_connection_idle_max", ""] == 1
    assert found["db_client_connection_idle_min", ""] == (1 if alias == "default" else 0)
    if alias == "default":  # psycopg_pool reports the time it took to connect
        assert found["db_client_connection_create_time_seconds_count", ""] >= 1


def test_labels_name_no_host_user_or_password(make_alias) -> None:
    name = make_alias("default", PASSWORD="pw-not-in-metrics")
    with override_settings(DJANGO_PG_REAL_POOL={"METRICS": True}):
        query(name)
    text = metrics.exposition()[0].decode()
    labels = {
        key
        for family in text_string_to_metric_families(text)
        if family.name.startswith("db_client_connection")
        for sample in family.samples
        for key in sample.labels
    }
    assert labels <= {"db_client_connection_pool_name", "engine", "state", "le"}
    assert "pw-not-in-metrics" not in text
    assert f":{server().port}" not in text


def test_off_unless_asked(make_alias) -> None:
    name = make_alias("default")
    query(name)
    assert samples(metrics.exposition()[0].decode(), name) == {}


@pytest.mark.slow
def test_two_forked_workers_add_up(tmp_path) -> None:
    result = run_scenario("metrics_workers.py", str(tmp_path), timeout=90)
    assert result.returncode == 0, result.stderr
    scraped = json.loads(result.stdout)
    alive, after = scraped["alive"], scraped["after_exit"]
    # The parent's query before fork(), then 3 and 5 queries in the two workers.
    assert alive["wait_count"] == 1 + 3 + 5
    assert alive["use_count"] == 1 + 3 + 5
    # Each live process's pool keeps its one connection idle: the gauges add up.
    assert alive["idle"] == 3
    assert alive["max"] == 3
    assert alive["used"] == 0
    # Dead workers' gauges are dropped (gunicorn's child_exit hook); histograms stay.
    assert after["idle"] == 1
    assert after["wait_count"] == 9
