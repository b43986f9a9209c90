"""Liveness, readiness and metrics views, through Django's test client."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.test import Client, override_settings
from django.urls import include, path

from django_pg_real_pool import pool_stats
from django_pg_real_pool.testing.saturation import HeldConnections
from tight_pools import one_connection, query

urlpatterns = [path("health/", include("django_pg_real_pool.urls"))]


@pytest.fixture
def client() -> Iterator[Client]:
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"]):
        yield Client()


def probe(client: Client, url: str, **package: object):
    with override_settings(DJANGO_PG_REAL_POOL=package):
        return client.get(url)


def test_live_touches_no_database(client, make_alias) -> None:
    dead = make_alias("plain", PORT=1)
    query("default")
    before = pool_stats("default")
    response = probe(client, "/health/live/", READINESS_ALIAS=dead)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert pool_stats("default") == before
    assert "no-cache" in response["Cache-Control"]


def test_ready_when_the_database_answers(client) -> None:
    response = probe(client, "/health/ready/", READINESS_ALIAS="plain")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "alias": "plain"})


def test_not_ready_when_the_database_is_unreachable(client, make_alias, caplog) -> None:
    dead = make_alias("plain", PORT=1, PASSWORD="pw-not-logged")
    response = probe(client, "/health/ready/", READINESS_ALIAS=dead)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "alias": dead}
    assert f"readiness probe: database of {dead!r} unreachable" in caplog.text
    assert "pw-not-logged" not in caplog.text
    # Django logs 5xx responses as errors (and mails the admins): not for a failing probe.
    # Fails if Django drops the private flag response._has_been_logged that views.py sets.
    assert [r for r in caplog.records if r.name == "django.request"] == []


@pytest.mark.parametrize("template", ["default", "dj"])
def test_ready_beside_a_saturated_pool(client, make_alias, template) -> None:
    """The probe neither waits for the saturated pool nor takes a connection from it."""
    pooled = one_connection(make_alias, template, timeout=10)
    with HeldConnections(pooled, 1).start():
        start = time.monotonic()
        response = probe(client, "/health/ready/", READINESS_ALIAS=pooled)
        took = time.monotonic() - start
        stats = pool_stats(pooled)
    assert response.status_code == 200
    assert took < 5, f"the probe took {took:.1f} s: did it wait for the pool?"
    assert stats is not None
    assert (stats.in_use, stats.waiting, stats.checkouts) == (1, 0, 1)


def test_only_safe_methods(client) -> None:
    assert client.post("/health/live/").status_code == 405


def test_metrics_view_is_off_unless_asked(client) -> None:
    assert probe(client, "/health/metrics/").status_code == 404
    with override_settings(DJANGO_PG_REAL_POOL={"METRICS": True}):
        query("default")
        response = client.get("/health/metrics/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"db_client_connection_max{" in response.content
