"""Every bad setting gets an ImproperlyConfigured that names the alias, the key and the fix."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.utils import ConnectionHandler

from django_pg_real_pool import engines, options, queue_options

PSYCOPG = engines.PSYCOPG_POOL
DJ = engines.DJ_DB_CONN_POOL


def wrapper(engine: str, **settings: Any) -> Any:
    """Build the alias 'web' the way Django does on first use (no connection is opened)."""
    handler = ConnectionHandler(
        {"default": {}, "web": {"ENGINE": engine, "NAME": "app", **settings}}
    )
    return handler["web"]


def rejects(engine: str, message: str, **settings: Any) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        wrapper(engine, **settings)


def test_missing_pool_option_says_how_to_enable_pooling() -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        wrapper(PSYCOPG)
    message = str(info.value)
    assert message.startswith(
        "DATABASES['web'] uses ENGINE 'django_pg_real_pool' without OPTIONS['pool']."
    )
    assert "Set OPTIONS['pool'] to True" in message
    assert "set it to False to use this engine exactly like Django's PostgreSQL backend" in message


@pytest.mark.parametrize("max_age", [None, 60])
@pytest.mark.parametrize(
    "settings",
    [{"OPTIONS": {"pool": True}}, {"OPTIONS": {}, "POOL_OPTIONS": {}}],
    ids=["psycopg_pool", "dj_db_conn_pool"],
)
def test_persistent_connections_are_refused(settings: dict[str, Any], max_age: Any) -> None:
    engine = PSYCOPG if "pool" in settings["OPTIONS"] else DJ
    with pytest.raises(ImproperlyConfigured) as info:
        wrapper(engine, CONN_MAX_AGE=max_age, **settings)
    assert str(info.value).startswith("Pooling doesn't support persistent connections.")
    assert f"DATABASES['web']['CONN_MAX_AGE'] is {max_age!r}; set it to 0" in str(info.value)


def test_unknown_pool_argument_is_named_with_a_suggestion() -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        wrapper(PSYCOPG, OPTIONS={"pool": {"min_sise": 2}})
    message = str(info.value)
    assert message.startswith(
        "DATABASES['web']['OPTIONS']['pool'] has an unknown key 'min_sise': the installed "
        "psycopg_pool.ConnectionPool accepts "
    )
    assert "max_waiting" in message
    assert "'kwargs'" not in message
    assert message.endswith("Did you mean 'min_size'?")


@pytest.mark.parametrize("key", ["kwargs", "open", "configure", "conninfo"])
def test_arguments_the_engine_owns_are_refused(key: str) -> None:
    rejects(
        PSYCOPG,
        f"DATABASES['web']['OPTIONS']['pool'][{key!r}] cannot be set: "
        f"{options.OWNED_POOL_ARGUMENTS[key]}. Remove the key.",
        OPTIONS={"pool": {key: None}},
    )


@pytest.mark.parametrize("value", ["yes", 1, None, ["min_size"]])
def test_pool_option_must_be_bool_or_dict(value: Any) -> None:
    rejects(
        PSYCOPG,
        "DATABASES['web']['OPTIONS']['pool'] must be True, False or a dict of "
        f"psycopg_pool.ConnectionPool arguments, not {type(value).__name__} {value!r}.",
        OPTIONS={"pool": value},
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("min_size", "4", "an integer >= 0"),
        ("min_size", True, "an integer >= 0"),
        ("max_size", 0, "an integer >= 1 or None (same as min_size)"),
        ("timeout", 0, "a positive number of seconds"),
        ("max_waiting", -1, "an integer >= 0 (0 means unlimited)"),
        ("num_workers", 0, "an integer >= 1"),
        ("check", "yes", "a callable or None"),
    ],
)
def test_pool_argument_values_are_checked(key: str, value: Any, expected: str) -> None:
    rejects(
        PSYCOPG,
        f"DATABASES['web']['OPTIONS']['pool'][{key!r}] must be {expected}",
        OPTIONS={"pool": {key: value}},
    )


def test_psycopg_pool_own_checks_are_reported_with_the_alias() -> None:
    handler_wrapper = wrapper(PSYCOPG, OPTIONS={"pool": {"min_size": 4, "max_size": 2}})
    with pytest.raises(ImproperlyConfigured) as info:
        handler_wrapper._build_pool(handler_wrapper._pool_config())
    assert str(info.value).startswith(
        "DATABASES['web']['OPTIONS']['pool'] was rejected by psycopg_pool.ConnectionPool: "
    )
    assert "max_size" in str(info.value)


def test_pool_false_behaves_like_stock_django() -> None:
    from django.db.backends.utils import CursorWrapper

    connection = wrapper(PSYCOPG, OPTIONS={"pool": False})
    assert connection.pool is None
    assert not connection._asap
    assert "pool" not in connection.get_connection_params()
    assert type(connection.make_cursor(object())) is CursorWrapper


def test_trace_option_must_be_boolean() -> None:
    rejects(
        PSYCOPG,
        "DATABASES['web']['OPTIONS']['trace_unclosed_cursors'] must be True or False, not 'yes'.",
        OPTIONS={"pool": True, "trace_unclosed_cursors": "yes"},
    )


@pytest.mark.parametrize(
    ("engine", "settings"),
    [(PSYCOPG, {"OPTIONS": {"pool": True}}), (DJ, {"OPTIONS": {}})],
    ids=["real_pool", "real_pool_dj"],
)
def test_invalid_isolation_level_keeps_djangos_message(
    engine: str, settings: dict[str, Any]
) -> None:
    settings["OPTIONS"]["isolation_level"] = 99
    with pytest.raises(ImproperlyConfigured) as info:
        wrapper(engine, **settings)
    # Django's sentence first, as code and tests match on it; then the alias and the values.
    assert str(info.value).startswith(
        "Invalid transaction isolation level 99 specified. Use one of the "
        "psycopg.IsolationLevel values. DATABASES['web']['OPTIONS']['isolation_level'] is 99; "
        "valid values: IsolationLevel.READ_UNCOMMITTED, "
    )


def test_pool_options_on_psycopg_pool_engine_are_refused() -> None:
    rejects(
        PSYCOPG,
        "DATABASES['web']['POOL_OPTIONS'] cannot be used with ENGINE 'django_pg_real_pool': it "
        "is django-db-connection-pool's setting, and this engine pools through psycopg_pool. "
        "Move the pool settings to DATABASES['web']['OPTIONS']['pool']",
        OPTIONS={"pool": True},
        POOL_OPTIONS={"POOL_SIZE": 2},
    )


@pytest.mark.parametrize(
    ("variable", "expected"),
    [("1", True), ("TRUE", True), (" on ", True), ("yes", True), ("0", False), ("", False)],
)
def test_warn_unclosed_cursors_variable_of_1_1_turns_the_trace_on(
    monkeypatch: pytest.MonkeyPatch, variable: str, expected: bool
) -> None:
    monkeypatch.setenv("DJANGO_PG_REAL_POOL_WARN_UNCLOSED_CURSORS", variable)
    for engine, settings in ((PSYCOPG, {"OPTIONS": {"pool": True}}), (DJ, {"OPTIONS": {}})):
        config = wrapper(engine, **settings)._pool_config()
        assert config.trace_unclosed_cursors is expected


def test_trace_option_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_PG_REAL_POOL_WARN_UNCLOSED_CURSORS", "1")
    connection = wrapper(PSYCOPG, OPTIONS={"pool": True, "trace_unclosed_cursors": False})
    assert connection._pool_config().trace_unclosed_cursors is False


def test_warn_unclosed_cursors_variable_must_be_a_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_PG_REAL_POOL_WARN_UNCLOSED_CURSORS", "maybe")
    rejects(
        PSYCOPG,
        "The environment variable DJANGO_PG_REAL_POOL_WARN_UNCLOSED_CURSORS is 'maybe'; set it "
        "to 1, true, yes or on",
        OPTIONS={"pool": True},
    )


# -- django-db-connection-pool engine -----------------------------------------------------


def test_queue_pool_defaults_are_the_packages_effective_ones() -> None:
    connection = wrapper(DJ)
    assert queue_options.queue_pool_options("web", connection.settings_dict).as_kwargs() == {
        "pool_size": 10,
        "max_overflow": 10,
        "recycle": 900.0,
        "timeout": 30.0,
        "pre_ping": True,
        "echo": False,
    }


def test_queue_pool_defaults_match_django_db_connection_pool() -> None:
    from dj_db_conn_pool.core import pool_container

    assert {key.lower(): value for key, value in queue_options.QUEUE_POOL_DEFAULTS.items()} == (
        pool_container.pool_default_params
    )


def test_lowercase_pool_options_key_is_refused() -> None:
    rejects(
        DJ,
        "DATABASES['web']['POOL_OPTIONS'] has the key 'pool_size'; keys must be UPPERCASE: "
        "use 'POOL_SIZE'. Valid keys: POOL_SIZE, MAX_OVERFLOW, RECYCLE, TIMEOUT, PRE_PING, "
        "ECHO, MAX_WAITING, RESET_ON_RETURN, PRE_PING_SKIP_WINDOW, REUSE_WINDOW.",
        POOL_OPTIONS={"pool_size": 4},
    )


def test_unknown_pool_options_key_is_refused() -> None:
    rejects(
        DJ,
        "DATABASES['web']['POOL_OPTIONS'] has an unknown key 'POOL_SIZES'. Valid keys: "
        "POOL_SIZE, MAX_OVERFLOW, RECYCLE, TIMEOUT, PRE_PING, ECHO, MAX_WAITING, RESET_ON_RETURN, "
        "PRE_PING_SKIP_WINDOW, REUSE_WINDOW. "
        "Did you mean 'POOL_SIZE'?",
        POOL_OPTIONS={"POOL_SIZES": 4},
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("POOL_SIZE", 0, "an integer >= 1"),
        ("MAX_OVERFLOW", -2, "an integer >= 0, or -1 for no limit"),
        ("RECYCLE", 0, "a positive number of seconds, or -1 to never recycle"),
        ("TIMEOUT", "30", "a positive number of seconds"),
        ("PRE_PING", 1, "True or False"),
        ("ECHO", "yes", "True, False or 'debug'"),
        ("MAX_WAITING", -1, "an integer >= 0 (0 means unlimited)"),
    ],
)
def test_pool_options_values_are_checked(key: str, value: Any, expected: str) -> None:
    rejects(
        DJ,
        f"DATABASES['web']['POOL_OPTIONS'][{key!r}] must be {expected}, not {value!r}.",
        POOL_OPTIONS={key: value},
    )


def test_pool_option_on_dj_engine_would_pool_twice() -> None:
    rejects(
        DJ,
        "DATABASES['web']['OPTIONS']['pool'] cannot be used with ENGINE "
        "'django_pg_real_pool.dj_db_conn_pool' except as False (no pool): that engine pools "
        "through SQLAlchemy already, so connections would be pooled twice.",
        OPTIONS={"pool": True},
    )


def test_pool_false_on_dj_engine_behaves_like_stock_django() -> None:
    from django.db.backends.utils import CursorWrapper

    # What Django's own tests (no_pool_connection) and users of the first engine write.
    connection = wrapper(DJ, OPTIONS={"pool": False}, POOL_OPTIONS={"POOL_SIZE": 2})
    assert connection.pool is None
    assert not connection._asap
    assert "pool" not in connection.get_connection_params()
    assert type(connection.make_cursor(object())) is CursorWrapper


def test_pool_options_are_still_checked_when_pool_is_false() -> None:
    rejects(
        DJ,
        "DATABASES['web']['POOL_OPTIONS'] has an unknown key 'POOL_SISE'.",
        OPTIONS={"pool": False},
        POOL_OPTIONS={"POOL_SISE": 2},
    )


@pytest.mark.parametrize("engine", engines.ENGINES)
def test_settings_are_validated_once_per_value_and_again_when_they_change(engine: str) -> None:
    if engine == PSYCOPG:
        handler_wrapper = wrapper(engine, OPTIONS={"pool": {"min_size": 1}})
        pool_settings = handler_wrapper.settings_dict["OPTIONS"]["pool"]
        bad_key, message = "min_sise", "has an unknown key 'min_sise'"
    else:
        handler_wrapper = wrapper(engine, OPTIONS={}, POOL_OPTIONS={"POOL_SIZE": 1})
        pool_settings = handler_wrapper.settings_dict["POOL_OPTIONS"]
        bad_key, message = "POOL_SISE", "has an unknown key 'POOL_SISE'"
    first = handler_wrapper._pool_config()
    assert first is not None
    assert handler_wrapper._pool_config() is first
    pool_settings[bad_key] = 2  # an in-place edit is noticed
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        handler_wrapper._pool_config()
