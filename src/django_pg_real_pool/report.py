"""One alias's report for ``manage.py pgpool``: engine, settings in force, a probe checkout
through its pool, this process's pool stats and the server's view of the alias's sessions."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from . import in_force
from .stats import pool_stats


def package_aliases() -> list[str]:
    """The aliases served by one of this package's engines, in DATABASES order."""
    from django.db import connections

    return [
        alias for alias in connections.settings if in_force.engine_of(connections.settings[alias])
    ]


def report(alias: str) -> dict[str, Any]:
    """Everything ``pgpool`` shows for ``alias``, JSON-ready; ``probe.ok`` is False when no
    connection could be checked out."""
    from django.db import connections

    settings_dict = connections.settings[alias]
    pooled = in_force.is_pooled(settings_dict)
    found: dict[str, Any] = {
        "alias": alias,
        "engine": in_force.engine_of(settings_dict),
        "pooled": pooled,
        "settings": in_force.pool_settings(alias, settings_dict) if pooled else {},
    }
    found["probe"], found["server"] = _probe(alias)
    stats = pool_stats(alias) if pooled else None
    if stats is None:
        found["stats"] = None
    else:
        found["stats"] = {
            **{key: value for key, value in asdict(stats).items() if not key.endswith("_time")},
            "wait_time": _summary(stats.wait_time),
            "hold_time": _summary(stats.hold_time),
        }
    return found


def _summary(distribution: Any) -> dict[str, Any]:
    return {
        "count": distribution.count,
        "p50": distribution.quantile(0.5),
        "p95": distribution.quantile(0.95),
        "p99": distribution.quantile(0.99),
        **distribution.as_dict(),
    }


def _probe(alias: str) -> tuple[dict[str, Any], dict[str, int] | None]:
    """Check a connection out through the alias's pool, and count the alias's sessions on the
    server (every process's, by state)."""
    from django.db import connections

    start = time.perf_counter()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND usename = current_user"
                " GROUP BY 1 ORDER BY 1"
            )
            sessions = {str(state): int(count) for state, count in cursor.fetchall()}
    except Exception as exc:
        cause = exc.__cause__ or exc
        return {"ok": False, "error": f"{type(cause).__name__}: {cause}"}, None
    finally:
        connections[alias].close()
    return {"ok": True, "seconds": round(time.perf_counter() - start, 6)}, sessions
