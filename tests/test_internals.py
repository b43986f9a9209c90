"""The installed Django, SQLAlchemy and psycopg still have every private name and every method
body that ``_internals.py`` relies on; each failure names what changed and what to review."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import django
import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.creation import BaseDatabaseCreation
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper
from django.db.utils import ConnectionHandler, OperationalError

from django_pg_real_pool import _internals, engines

DJANGO = django.VERSION[:2]
DJANGO_NAME = ".".join(map(str, DJANGO))


def reviewed(known: dict[tuple[int, int], str], found: str) -> bool:
    """A fingerprint read in this Django's release, or, for a release not read yet, in any."""
    if DJANGO in known:
        return known[DJANGO] == found
    return found in known.values()


def test_source_fingerprint_ignores_layout_and_comments_but_not_code() -> None:
    base = _internals.source_fingerprint("def f(a):\n    x = a  # why\n    return x\n")
    assert _internals.source_fingerprint("def f( a ):\n\n    x=a\n    return x\n") == base
    assert _internals.source_fingerprint("def f(a):\n    x = a\n    return a\n") != base


def test_copied_connect_is_still_djangos() -> None:
    found = _internals.connect_fingerprint()
    assert reviewed(_internals.CONNECT_FINGERPRINTS, found), (
        f"Django {DJANGO_NAME} changed BaseDatabaseWrapper.connect() (fingerprint {found}); "
        "review _internals.connect_from_pool against it, then add the fingerprint to "
        "_internals.CONNECT_FINGERPRINTS"
    )


def test_skipped_session_setup_is_still_what_session_py_does() -> None:
    found = _internals.session_setup_fingerprint()
    assert reviewed(_internals.SESSION_SETUP_FINGERPRINTS, found), (
        f"Django {DJANGO_NAME} changed how its PostgreSQL backend sets up a new connection "
        f"({', '.join(_internals.SESSION_SETUP_METHODS)}; fingerprint {found}); review "
        "session.py against it, then add the fingerprint to _internals.SESSION_SETUP_FINGERPRINTS"
    )


@pytest.mark.parametrize("hook", sorted(_internals.OVERRIDDEN_HOOKS))
def test_overridden_hooks_are_still_called_by_django(hook: str) -> None:
    class_name, name = hook.split(".")
    owner = {
        "BaseDatabaseWrapper": BaseDatabaseWrapper,
        "BaseDatabaseCreation": BaseDatabaseCreation,
    }
    cls = owner[class_name]
    caller, _reason = _internals.OVERRIDDEN_HOOKS[hook]
    assert hasattr(cls, name), f"Django {DJANGO_NAME} has no {hook} any more; review _internals"
    assert f"self.{name}(" in inspect.getsource(getattr(cls, caller)), (
        f"Django {DJANGO_NAME}'s {class_name}.{caller}() no longer calls {name}(), so the "
        "engines' override of it does nothing; review _internals.OVERRIDDEN_HOOKS"
    )


def stock_wrapper() -> Any:
    return ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "app"}}
    )["default"]


@pytest.mark.parametrize("attribute", _internals.CONNECTION_STATE_ATTRIBUTES)
def test_connection_state_attributes_exist(attribute: str) -> None:
    assert hasattr(stock_wrapper(), attribute), (
        f"Django {DJANGO_NAME}'s BaseDatabaseWrapper no longer sets {attribute!r}; review "
        "_internals.connect_from_pool and CONNECTION_STATE_ATTRIBUTES"
    )


def test_names_used_without_a_wrapper_exist() -> None:
    assert _internals.NO_DATABASE_ALIAS == "__no_db__"
    assert _internals.django_uses_psycopg3() is True
    assert PostgresDatabaseWrapper.init_connection_state is not None


def test_django_db_connection_pool_still_has_its_pool_container() -> None:
    # _internals.list_in_dj_db_conn_pool() and its siblings rely on these.
    from dj_db_conn_pool.core import pool_container

    for name in ("lock", "has", "put", "get"):
        assert hasattr(pool_container, name), f"pool_container.{name} is gone"
    assert isinstance(pool_container, dict)


@pytest.mark.parametrize("method", ["connect", "ensure_connection"])
@pytest.mark.parametrize("engine", engines.ENGINES)
def test_connect_refuses_to_run_in_an_event_loop_as_djangos_does(
    engine: str, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"OPTIONS": {"pool": True}} if engine == engines.PSYCOPG_POOL else {}
    handler = ConnectionHandler(
        {"default": {}, "web": {"ENGINE": engine, "NAME": "app", **settings}}
    )
    wrapper = handler["web"]

    async def connect_in_loop() -> None:
        getattr(wrapper, method)()

    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE", raising=False)
    with pytest.raises(SynchronousOnlyOperation, match="use a thread or sync_to_async"):
        asyncio.run(connect_in_loop())
    if method == "ensure_connection":
        # Allowed, as Django allows it: the checkout goes ahead (and fails: no such server
        # or database), its error mapped to Django's, as Django's ensure_connection() does.
        monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with pytest.raises(OperationalError):
            asyncio.run(connect_in_loop())


def test_sqlalchemy_proxy_shows_psycopg_connection_info(make_alias) -> None:
    from psycopg import ConnectionInfo

    name = make_alias("dj")
    connection = connections[name]
    with connection.cursor():
        assert isinstance(connection.connection.info, ConnectionInfo), (
            "SQLAlchemy's connection proxy no longer takes psycopg's info; review "
            "_internals.expose_driver_info"
        )
        assert connection.pg_version >= 120000


def test_django_test_skips_is_still_what_add_django_test_skips_extends() -> None:
    """``_internals.add_django_test_skips`` reads Django's skips through ``super()``: a dict
    (Django 4.2, 5.0) or a cached_property giving one (5.1+)."""
    from django.db.backends.postgresql.features import DatabaseFeatures as PostgresFeatures
    from django.utils.functional import cached_property

    found = inspect.getattr_static(PostgresFeatures, "django_test_skips")
    assert isinstance(found, cached_property | dict), (
        f"Django {DJANGO_NAME} changed DatabaseFeatures.django_test_skips (now {found!r}); "
        "review _internals.add_django_test_skips"
    )


@pytest.mark.parametrize("alias", ["default", "dj"])
def test_our_features_add_to_djangos_test_skips(alias: str) -> None:
    from django_pg_real_pool import features

    skips = connections[alias].features.django_test_skips
    assert skips[features.IMPLICIT_HEALTH_CHECKS] >= features.IMPLICIT_HEALTH_CHECK_TESTS
    # Django's own skips are kept.
    stock = PostgresDatabaseWrapper(connections[alias].settings_dict, alias)
    for reason, tests in stock.features.django_test_skips.items():
        assert tests <= skips[reason]
