"""Liveness and readiness probes, and the Prometheus metrics endpoint.

Readiness opens one connection of its own with the settings of ``READINESS_ALIAS`` and a
short ``connect_timeout``, never through a pool: a saturated pool neither fails the probe
(the database is up) nor hides a database that is down (idle pooled connections would).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import _internals, conf

logger = logging.getLogger("django_pg_real_pool")


@never_cache
@require_safe
def live(request: HttpRequest) -> HttpResponse:
    """200 while the process answers requests; touches no database."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def ready(request: HttpRequest) -> HttpResponse:
    """200 when the database answers ``SELECT 1`` on a new connection, 503 otherwise."""
    import psycopg
    from django.db import connections

    settings = conf.get()
    alias = settings.READINESS_ALIAS
    try:
        params = connections[alias].get_connection_params()
        params["connect_timeout"] = settings.READINESS_TIMEOUT
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        # libpq's messages name the host and the port, never the password.
        logger.warning("readiness probe: database of %r unreachable: %s", alias, exc)
        response = JsonResponse({"status": "unavailable", "alias": alias}, status=503)
        # The reason is logged above; django.request would log the 503 again as an error.
        _internals.mark_response_logged(response)
        return response
    return JsonResponse({"status": "ok", "alias": alias})


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition (404 unless ``DJANGO_PG_REAL_POOL['METRICS']``)."""
    if not conf.get().METRICS:
        return HttpResponse("metrics are off: set DJANGO_PG_REAL_POOL['METRICS']", status=404)
    from . import metrics as exported

    body, content_type = exported.exposition()
    return HttpResponse(body, content_type=content_type)
