"""Django alias plumbing for tests: configure a minimal Django, add an alias, close an alias
and its pool, close every alias that points at a database about to be dropped.

Django has no public API to add or forget a ``DATABASES`` entry at run time; this module is
the one place of the plugin that edits ``connections.settings`` (the dict Django reads
``DATABASES`` into) and deletes from ``connections`` (its per-thread wrappers).
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

__all__ = [
    "add_alias",
    "checked_out",
    "close_alias",
    "close_aliases_on",
    "ensure_django",
    "remove_alias",
]

#: What Django fills in for an entry of ``settings.DATABASES`` it reads at start-up.
_ENTRY_DEFAULTS: dict[str, Any] = {
    "ATOMIC_REQUESTS": False,
    "AUTOCOMMIT": True,
    "CONN_MAX_AGE": 0,
    "CONN_HEALTH_CHECKS": False,
    "OPTIONS": {},
    "TIME_ZONE": None,
    "USER": "",
    "PASSWORD": "",
    "HOST": "",
    "PORT": "",
    "TEST": {"CHARSET": None, "COLLATION": None, "MIGRATE": True, "MIRROR": None, "NAME": None},
}


def ensure_django() -> None:
    """Configure a Django without apps or databases, unless something configured one."""
    from django.conf import settings

    if not settings.configured:
        import django

        settings.configure(DATABASES={}, INSTALLED_APPS=[], USE_TZ=True)
        django.setup()


def add_alias(entry: dict[str, Any], *, name: str) -> str:
    """Add ``name`` to Django's databases with ``entry`` over Django's defaults."""
    from django.db import connections

    if name in connections.settings:
        raise ValueError(f"alias {name!r} is already in DATABASES; choose another name")
    connections.settings[name] = {**_ENTRY_DEFAULTS, **entry}
    return name


def close_alias(name: str) -> None:
    """Close ``name``'s connection in this thread and its pool, whichever engine built it."""
    from django.db import connections

    from django_pg_real_pool import pools

    if name in connections.settings:
        connection = connections[name]
        connection.close()
        close_pool = getattr(connection, "close_pool", None)  # Django 5.1+, and our engines
        if close_pool is not None:
            close_pool()
        with contextlib.suppress(AttributeError):  # no wrapper made in this thread
            del connections[name]
    pools.retire(name)
    with contextlib.suppress(ImportError):
        from dj_db_conn_pool.core import pool_container

        with pool_container.lock:
            pool = pool_container.pop(name, None)
        if pool is not None:
            pool.dispose()


def remove_alias(name: str) -> None:
    """Close ``name`` (see ``close_alias``) and forget its ``DATABASES`` entry."""
    from django.db import connections

    close_alias(name)
    connections.settings.pop(name, None)


def checked_out(alias: str) -> int:
    """How many connections of ``alias``'s pool (of this package's engines) are checked out."""
    from django_pg_real_pool import pool_stats

    stats = pool_stats(alias)
    return 0 if stats is None else stats.in_use


def close_aliases_on(database: str) -> None:
    """Close every alias whose ``NAME`` is ``database``, before the database is dropped."""
    if "django.db" not in sys.modules:
        return  # nothing can have connected through Django
    from django.conf import settings

    if not settings.configured:
        return
    from django.db import connections

    for name, entry in list(connections.settings.items()):
        if entry.get("NAME") == database:
            close_alias(name)
