"""System checks, each with a stable id documented in docs/operations.md.

E001 CONN_MAX_AGE on a pooled alias; E002 POOL_OPTIONS on the psycopg_pool engine; E003
OPTIONS['pool'] on the django-db-connection-pool engine; E004 that engine without its extra;
E005 pool settings rejected; E006 DJANGO_PG_REAL_POOL rejected; E007 METRICS without
prometheus-client; E008 READINESS_ALIAS not in DATABASES; W001 a pool timeout not shorter
than REQUEST_TIMEOUT; W002 (``--deploy``) more connections than the server accepts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import compat, conf, in_force

logger = logging.getLogger("django_pg_real_pool")
_PREFIX = "django_pg_real_pool"
#: ``manage.py check --tag pgpool`` runs these checks only.
TAG = "pgpool"


def register() -> None:
    """Register the checks with Django (called by the app's ``ready()``)."""
    checks.register(check_settings, TAG)
    checks.register(check_connection_budget, TAG, deploy=True)


def _databases() -> dict[str, Mapping[str, Any]]:
    from django.db import connections

    return {alias: connections.settings[alias] for alias in connections.settings}


def check_settings(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[Any]:
    """Checks that need no database."""
    found: list[Any] = []
    try:
        package = conf.validate(_raw_package_setting())
    except ImproperlyConfigured as exc:
        found.append(checks.Error(str(exc), id=f"{_PREFIX}.E006"))
        package = conf.PackageSettings()
    databases = _databases()
    for alias, settings_dict in databases.items():
        found.extend(_check_alias(alias, settings_dict, package))
    if package.METRICS:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            found.append(
                checks.Error(
                    "DJANGO_PG_REAL_POOL['METRICS'] is True but prometheus-client is not "
                    "installed.",
                    hint="pip install 'django-pg-real-pool[prometheus]', or set METRICS to False.",
                    id=f"{_PREFIX}.E007",
                )
            )
    if package.READINESS_ALIAS not in databases:
        found.append(
            checks.Error(
                f"DJANGO_PG_REAL_POOL['READINESS_ALIAS'] is {package.READINESS_ALIAS!r}, which "
                "is not an alias of DATABASES.",
                hint=f"Use one of {', '.join(map(repr, databases))}.",
                id=f"{_PREFIX}.E008",
            )
        )
    return found


def _raw_package_setting() -> Any:
    from django.conf import settings

    return getattr(settings, conf.SETTING, None)


class _Misplaced(NamedTuple):
    """Pool settings of one engine found on the other."""

    engine: str
    key: str
    present: Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
    message: str
    hint: str
    id: str


_MISPLACED = (
    _Misplaced(
        engine="real_pool",
        key="['POOL_OPTIONS']",
        present=lambda settings_dict, options: "POOL_OPTIONS" in settings_dict,
        message="is django-db-connection-pool's setting; ENGINE 'django_pg_real_pool' refuses it.",
        hint="Move the pool settings to OPTIONS['pool'] (psycopg_pool.ConnectionPool "
        "arguments: min_size, max_size, timeout, ...), or use ENGINE "
        "'django_pg_real_pool.dj_db_conn_pool'.",
        id="E002",
    ),
    _Misplaced(
        engine="real_pool_dj",
        key="['OPTIONS']['pool']",
        # OPTIONS["pool"] = False means "no pool" on both engines.
        present=lambda settings_dict, options: options.get("pool", False) is not False,
        message="is psycopg_pool's setting; ENGINE 'django_pg_real_pool.dj_db_conn_pool' pools "
        "through SQLAlchemy.",
        hint="Move the pool settings to POOL_OPTIONS (POOL_SIZE, MAX_OVERFLOW, TIMEOUT, ...), "
        "or use ENGINE 'django_pg_real_pool'.",
        id="E003",
    ),
)


def _check_alias(
    alias: str, settings_dict: Mapping[str, Any], package: conf.PackageSettings
) -> list[Any]:
    engine = in_force.engine_of(settings_dict)
    if engine is None:
        return []
    where = f"DATABASES[{alias!r}]"
    options = settings_dict.get("OPTIONS") or {}
    found: list[Any] = []
    if in_force.is_pooled(settings_dict) and settings_dict.get("CONN_MAX_AGE", 0) != 0:
        found.append(
            checks.Error(
                f"{where}['CONN_MAX_AGE'] is {settings_dict['CONN_MAX_AGE']!r} on a pooled "
                "alias: pooled connections go back to the pool after each query.",
                hint="Set CONN_MAX_AGE to 0 (or remove it): the pool keeps connections open.",
                id=f"{_PREFIX}.E001",
            )
        )
    for misplaced in _MISPLACED:
        if engine == misplaced.engine and misplaced.present(settings_dict, options):
            found.append(
                checks.Error(
                    f"{where}{misplaced.key} {misplaced.message}",
                    hint=misplaced.hint,
                    id=f"{_PREFIX}.{misplaced.id}",
                )
            )
    if engine == "real_pool_dj":
        try:
            compat.require_dj_db_conn_pool()
        except ImproperlyConfigured as exc:
            found.append(checks.Error(f"{where}: {exc}", id=f"{_PREFIX}.E004"))
    if found or not in_force.is_pooled(settings_dict):
        return found
    try:
        limits = in_force.limits(alias, settings_dict)
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id=f"{_PREFIX}.E005")]
    request_timeout = package.REQUEST_TIMEOUT
    if request_timeout is not None and limits.timeout >= request_timeout:
        key = (
            "POOL_OPTIONS']['TIMEOUT" if engine == "real_pool_dj" else "OPTIONS']['pool']['timeout"
        )
        found.append(
            checks.Warning(
                f"{where}['{key}'] is {limits.timeout:g} s, not shorter than "
                f"DJANGO_PG_REAL_POOL['REQUEST_TIMEOUT'] ({request_timeout:g} s): a request "
                "waiting for a connection is killed before the pool can raise a clear error.",
                hint="Make the pool timeout a fraction of the request timeout (a few seconds).",
                id=f"{_PREFIX}.W001",
            )
        )
    return found


def check_connection_budget(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[Any]:
    """``--deploy``: the pools of every worker process fit in the server's connections."""
    try:
        package = conf.validate(_raw_package_setting())
    except ImproperlyConfigured:
        return []  # E006 reports it
    by_server: dict[tuple[Any, Any], list[tuple[str, int]]] = {}
    for alias, settings_dict in _databases().items():
        if not in_force.is_pooled(settings_dict) or _check_alias(alias, settings_dict, package):
            continue
        limit = in_force.limits(alias, settings_dict).max
        if limit is None:
            continue  # MAX_OVERFLOW -1: no bound to add up
        server = (settings_dict.get("HOST") or "", settings_dict.get("PORT") or "")
        by_server.setdefault(server, []).append((alias, limit))
    found: list[Any] = []
    for pooled in by_server.values():
        available = _server_budget(pooled[0][0])
        if available is None:
            continue
        per_process = sum(limit for _, limit in pooled)
        wanted = per_process * package.WORKERS
        if wanted > available:
            parts = " + ".join(f"{alias!r} {limit}" for alias, limit in pooled)
            found.append(
                checks.Warning(
                    f"the pools may open {wanted} connections ({parts} = {per_process} per "
                    f"process, times WORKERS {package.WORKERS}) but the server accepts "
                    f"{available} (max_connections minus the reserved ones).",
                    hint="Lower max_size (POOL_SIZE + MAX_OVERFLOW) or the worker count, or "
                    "raise the server's max_connections; see docs/operations.md.",
                    id=f"{_PREFIX}.W002",
                )
            )
    return found


def _server_budget(alias: str) -> int | None:
    """max_connections minus the reserved connections, or None when unreachable."""
    import psycopg
    from django.db import connections

    try:
        params = connections[alias].get_connection_params()
        params["connect_timeout"] = min(int(params.get("connect_timeout") or 2), 2)
        with psycopg.connect(**params, autocommit=True) as conn:
            row = conn.execute(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int"
                " - coalesce(current_setting('reserved_connections', true)::int, 0)"
            ).fetchone()
    except Exception as exc:
        logger.info("connection budget not checked: %r is unreachable (%s)", alias, exc)
        return None
    return None if row is None else int(row[0])
