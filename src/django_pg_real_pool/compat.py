"""Version differences of Django, psycopg, psycopg_pool and SQLAlchemy, in one place."""

from __future__ import annotations

import inspect
from functools import cache
from importlib import metadata
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from . import _internals

PSYCOPG_POOL_MIN = (3, 2, 0)
DJ_DB_CONN_POOL_MIN = (1, 2, 6)
SQLALCHEMY_MIN = (2, 0)

EXTRA_INSTALL = "pip install 'django-pg-real-pool[dj-db-conn-pool]'"


def parse_version(text: str) -> tuple[int, ...]:
    """Leading numeric release parts of a version string: '3.2.0.dev1' -> (3, 2, 0)."""
    parts: list[int] = []
    for piece in text.split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts)


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def require_psycopg3(engine: str) -> None:
    """Refuse psycopg2: the release mechanism is built on psycopg 3 connections."""
    if not _internals.django_uses_psycopg3():
        raise ImproperlyConfigured(
            f"ENGINE {engine!r} requires psycopg 3, which is not importable (Django's "
            "PostgreSQL backend would fall back to psycopg2). Install it with "
            "\"pip install 'psycopg[binary]'\" (or 'psycopg[c]'); psycopg2 can stay installed."
        )


def psycopg_pool_version() -> tuple[int, ...]:
    import psycopg_pool

    return parse_version(psycopg_pool.__version__)


def require_psycopg_pool() -> Any:
    """Return the ``psycopg_pool.ConnectionPool`` class, or explain how to install it."""
    try:
        import psycopg_pool
    except ImportError as exc:
        raise ImproperlyConfigured(
            "ENGINE 'django_pg_real_pool' needs psycopg_pool, which is not installed. "
            f"Install it with \"pip install 'psycopg-pool>={_dotted(PSYCOPG_POOL_MIN)}'\"."
        ) from exc
    found = psycopg_pool_version()
    if found < PSYCOPG_POOL_MIN:
        raise ImproperlyConfigured(
            f"ENGINE 'django_pg_real_pool' needs psycopg_pool >= {_dotted(PSYCOPG_POOL_MIN)} "
            f"(for its 'check' argument); psycopg_pool {psycopg_pool.__version__} is installed. "
            f"Upgrade it with \"pip install -U 'psycopg-pool>={_dotted(PSYCOPG_POOL_MIN)}'\"."
        )
    return psycopg_pool.ConnectionPool


@cache
def connection_pool_parameters() -> frozenset[str]:
    """Keyword arguments the installed ``psycopg_pool.ConnectionPool`` accepts."""
    pool_class = require_psycopg_pool()
    signature = inspect.signature(pool_class.__init__)
    return frozenset(
        name
        for name, parameter in signature.parameters.items()
        if name != "self"
        and parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    )


def require_dj_db_conn_pool() -> None:
    """Check that the ``dj-db-conn-pool`` extra is installed at usable versions."""
    missing = []
    for module in ("dj_db_conn_pool", "sqlalchemy"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImproperlyConfigured(
            "ENGINE 'django_pg_real_pool.dj_db_conn_pool' needs the optional dependencies "
            f"of django-pg-real-pool's 'dj-db-conn-pool' extra ({', '.join(missing)} "
            f'missing). Install them with "{EXTRA_INSTALL}".'
        )
    found = parse_version(metadata.version("django-db-connection-pool"))
    if found < DJ_DB_CONN_POOL_MIN:
        raise ImproperlyConfigured(
            "ENGINE 'django_pg_real_pool.dj_db_conn_pool' needs django-db-connection-pool >= "
            f"{_dotted(DJ_DB_CONN_POOL_MIN)} (the first release that pools psycopg 3 "
            f"connections correctly); {_dotted(found)} is installed. Upgrade with "
            f'"{EXTRA_INSTALL} -U".'
        )
    import sqlalchemy

    if parse_version(sqlalchemy.__version__) < SQLALCHEMY_MIN:
        raise ImproperlyConfigured(
            "ENGINE 'django_pg_real_pool.dj_db_conn_pool' needs SQLAlchemy >= 2.0: with "
            f"SQLAlchemy {sqlalchemy.__version__}, django-db-connection-pool silently falls back "
            f'to psycopg2. Upgrade with "{EXTRA_INSTALL} -U".'
        )


def close_what_a_closed_pool_kept(pool: Any) -> None:
    """Close the connections still in a closed ``psycopg_pool.ConnectionPool``.

    Early psycopg_pool 3.2 releases (3.2.0 among them; 3.2.8 and 3.3 are fixed) add a
    connection that a worker was still opening when the pool closed to the closed pool, and
    leave it open: a session that outlives ``close_pool()`` and makes Django's ``DROP DATABASE``
    of the test database fail ("being accessed by other users"). ``close()`` has joined the
    workers by now, so whatever such a connection is, it is there (``_pool``, private).
    """
    for conn in list(getattr(pool, "_pool", ())):
        conn.close()
