"""The one place where pool settings in ``DATABASES`` are validated: the rules both engines
share and ``OPTIONS['pool']`` here, the second engine's ``POOL_OPTIONS`` in
``queue_options.py`` (with these rules).

Every rejection is an ``ImproperlyConfigured`` naming the alias, the key, what is accepted
and how to fix it: never a ``TypeError`` from deep inside psycopg_pool or SQLAlchemy.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeGuard, TypeVar

from django.core.exceptions import ImproperlyConfigured

from .engines import DJ_DB_CONN_POOL, PSYCOPG_POOL

ArgumentsT = TypeVar("ArgumentsT")

#: ``OPTIONS`` keys that belong to this package, not to ``psycopg.connect()``.
ENGINE_OPTION_KEYS = frozenset(
    {"pool", "trace_unclosed_cursors", "reset_on_return", "reuse_window"}
)

#: Seconds a connection given back stays ready for the next checkout without going back
#: through the pool (``OPTIONS['reuse_window']``, ``POOL_OPTIONS['REUSE_WINDOW']``; see gate.py).
DEFAULT_REUSE_WINDOW = 0.5

#: What ``reset_on_return`` True runs: every kind of session state, prepared statements too.
DISCARD_ALL = "DISCARD ALL"

#: ``ConnectionPool`` arguments the engine sets itself, and why a user may not.
OWNED_POOL_ARGUMENTS = {
    "conninfo": "the connection target comes from NAME, USER, PASSWORD, HOST, PORT and OPTIONS",
    "kwargs": "connection parameters come from NAME, USER, PASSWORD, HOST, PORT and OPTIONS",
    "open": "the engine opens the pool on first use",
    "configure": "the engine configures each new connection (time zone, assume_role, "
    "isolation_level); use Django's connection_created signal for your own setup",
}

_NUMBER_ARGUMENTS = {
    "timeout": "a positive number of seconds",
    "max_lifetime": "a positive number of seconds",
    "max_idle": "a positive number of seconds",
    "reconnect_timeout": "a positive number of seconds",
}
_INTEGER_ARGUMENTS = {
    "min_size": "an integer >= 0",
    "max_waiting": "an integer >= 0 (0 means unlimited)",
    "num_workers": "an integer >= 1",
}


@dataclass(frozen=True)
class PoolConfig(Generic[ArgumentsT]):
    """One alias's pool settings, validated once: what its engine builds the pool from."""

    #: The engine's own validated pool arguments.
    arguments: ArgumentsT
    #: ``OPTIONS['isolation_level']`` as a ``psycopg.IsolationLevel``, or None.
    isolation_level: Any
    #: ``OPTIONS['trace_unclosed_cursors']``.
    trace_unclosed_cursors: bool
    #: The SQL run on each connection given back (``OPTIONS['reset_on_return']``), or None.
    reset_on_return: str | None = None
    #: Seconds a connection given back is handed out again without a round trip through the
    #: pool (``gate.py``); 0: off. Each engine resolves it (``reuse_window()``).
    reuse_window: float = 0.0


def pool_config(
    alias: str, settings_dict: Mapping[str, Any], arguments: ArgumentsT
) -> PoolConfig[ArgumentsT]:
    """``arguments`` with the settings every engine shares, validated."""
    options = settings_dict.get("OPTIONS") or {}
    return PoolConfig(
        arguments=arguments,
        isolation_level=isolation_level(alias, options),
        trace_unclosed_cursors=options.get("trace_unclosed_cursors", trace_from_environment()),
        reset_on_return=reset_statement(
            setting_name(alias, "OPTIONS", "reset_on_return"), options.get("reset_on_return", False)
        ),
    )


#: django-pg-real-pool 1.1.0's switch for its unclosed-cursor warning; honoured where
#: ``OPTIONS['trace_unclosed_cursors']`` is not set.
WARN_UNCLOSED_CURSORS_VARIABLE = "DJANGO_PG_REAL_POOL_WARN_UNCLOSED_CURSORS"
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


def trace_from_environment() -> bool:
    """Whether ``DJANGO_PG_REAL_POOL_WARN_UNCLOSED_CURSORS`` turns the trace on (1.1.0's
    words: 1, true, yes, on; any case)."""
    value = os.environ.get(WARN_UNCLOSED_CURSORS_VARIABLE, "").strip().lower()
    if value in _TRUE_WORDS:
        return True
    if value in _FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"The environment variable {WARN_UNCLOSED_CURSORS_VARIABLE} is "
        f"{os.environ[WARN_UNCLOSED_CURSORS_VARIABLE]!r}; set it to 1, true, yes or on to trace "
        "unclosed cursors, or to 0, false, no, off or nothing to leave the trace off."
    )


def reset_statement(where: str, value: object) -> str | None:
    """The SQL a ``reset_on_return`` setting runs when a connection goes back, or None."""
    if value is False:
        return None
    if value is True:
        return DISCARD_ALL
    if isinstance(value, str) and value.strip():
        return value
    raise ImproperlyConfigured(
        f"{where} must be True (run {DISCARD_ALL!r} on each connection given back), False, "
        "or the SQL to run instead (e.g. DISCARD ALL without DEALLOCATE ALL, which keeps "
        f"prepared statements: see docs/reliability.md), not {value!r}."
    )


def validation_key(settings_dict: Mapping[str, Any]) -> tuple[Any, ...]:
    """The settings that the validation of an alias's pool settings depends on."""
    return (
        settings_dict.get("OPTIONS"),
        settings_dict.get("POOL_OPTIONS"),
        settings_dict.get("CONN_MAX_AGE"),
    )


def setting_name(alias: str, *keys: str) -> str:
    return f"DATABASES[{alias!r}]" + "".join(f"[{key!r}]" for key in keys)


def did_you_mean(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_conn_max_age(alias: str, settings_dict: Mapping[str, Any]) -> None:
    """Pooled connections are returned after each query, so they cannot persist."""
    max_age = settings_dict.get("CONN_MAX_AGE", 0)
    if max_age != 0:
        raise ImproperlyConfigured(
            "Pooling doesn't support persistent connections. "
            f"{setting_name(alias, 'CONN_MAX_AGE')} is {max_age!r}; set it to 0 (or remove it): "
            "the pool keeps the connections open."
        )


def check_engine_options(alias: str, options: Mapping[str, Any]) -> None:
    trace = options.get("trace_unclosed_cursors", False)
    if not isinstance(trace, bool):
        raise ImproperlyConfigured(
            f"{setting_name(alias, 'OPTIONS', 'trace_unclosed_cursors')} must be True or False, "
            f"not {trace!r}."
        )
    reset_statement(
        setting_name(alias, "OPTIONS", "reset_on_return"), options.get("reset_on_return", False)
    )
    if options.get("reuse_window") is not None:
        window_seconds(setting_name(alias, "OPTIONS", "reuse_window"), options["reuse_window"])


def psycopg_pool_reuse_window(
    alias: str, settings_dict: Mapping[str, Any], pool_options: Mapping[str, Any]
) -> float:
    """``OPTIONS['reuse_window']`` in force for the psycopg_pool engine, whose resets are
    ``OPTIONS['reset_on_return']`` and ``OPTIONS['pool']['reset']``."""
    options = settings_dict.get("OPTIONS") or {}
    reset = reset_statement(
        setting_name(alias, "OPTIONS", "reset_on_return"), options.get("reset_on_return", False)
    )
    described = None if reset is None else f"reset_on_return ({reset!r})"
    if pool_options.get("reset") is not None:
        described = setting_name(alias, "OPTIONS", "pool", "reset")
    return reuse_window(
        setting_name(alias, "OPTIONS", "reuse_window"),
        options.get("reuse_window"),
        reset=described,
    )


def window_seconds(where: str, value: object) -> float:
    """A reuse window setting's seconds: a finite number >= 0."""
    if is_number(value) and value >= 0 and math.isfinite(value):
        return float(value)
    raise ImproperlyConfigured(
        f"{where} must be a number of seconds >= 0 (0: every connection given back goes "
        f"back through the pool), not {value!r}."
    )


def reuse_window(where: str, value: object, *, reset: str | None) -> float:
    """The reuse window in force: ``value`` (None: not set) validated, the default when not
    set, 0 by default when a reset runs on each connection given back (a reused connection
    would skip it)."""
    if value is None:
        return 0.0 if reset else DEFAULT_REUSE_WINDOW
    window = window_seconds(where, value)
    if window and reset:
        raise ImproperlyConfigured(
            f"{where} is {value!r}, but {reset} runs on each connection given back, and a "
            "connection reused within the window would skip it. Remove the reuse window (it "
            "is off by default with a reset on return) or set it to 0, or remove the reset."
        )
    return window


def psycopg_pool_options(
    alias: str, settings_dict: Mapping[str, Any], *, accepted: frozenset[str]
) -> dict[str, Any] | None:
    """Validated ``ConnectionPool`` keyword arguments, or None when pooling is off.

    ``accepted`` is what the installed psycopg_pool's ``ConnectionPool`` takes.
    """
    options = settings_dict.get("OPTIONS") or {}
    check_engine_options(alias, options)
    if "POOL_OPTIONS" in settings_dict:
        raise ImproperlyConfigured(
            f"{setting_name(alias, 'POOL_OPTIONS')} cannot be used with ENGINE "
            f"{PSYCOPG_POOL!r}: it is django-db-connection-pool's setting, and this engine "
            "pools through psycopg_pool. Move the pool settings to "
            f"{setting_name(alias, 'OPTIONS', 'pool')} (psycopg_pool.ConnectionPool arguments: "
            "min_size, max_size, timeout, ...), or "
            f"switch to ENGINE {DJ_DB_CONN_POOL!r} to keep POOL_OPTIONS."
        )
    if "pool" not in options:
        raise ImproperlyConfigured(
            f"{setting_name(alias)} uses ENGINE {PSYCOPG_POOL!r} without OPTIONS['pool']. "
            "This engine returns the connection to its pool after every query; without a pool "
            "that would open a new PostgreSQL connection per query. Set OPTIONS['pool'] to True "
            "(psycopg_pool's defaults) or to a dict of psycopg_pool.ConnectionPool arguments, "
            "e.g. {'min_size': 2, 'max_size': 4}; set it to False to use this engine exactly "
            "like Django's PostgreSQL backend."
        )
    value = options["pool"]
    if value is False:
        return None
    if value is True:
        pool_options: dict[str, Any] = {}
    elif isinstance(value, Mapping):
        pool_options = dict(value)
    else:
        raise ImproperlyConfigured(
            f"{setting_name(alias, 'OPTIONS', 'pool')} must be True, False or a dict of "
            f"psycopg_pool.ConnectionPool arguments, not {type(value).__name__} {value!r}."
        )
    check_conn_max_age(alias, settings_dict)
    for key, val in pool_options.items():
        _check_pool_argument(alias, key, val, accepted=accepted)
    if options.get("reset_on_return", False) is not False and pool_options.get("reset"):
        raise ImproperlyConfigured(
            f"{setting_name(alias, 'OPTIONS')} sets both 'reset_on_return' and pool['reset']: the "
            "engine runs reset_on_return through psycopg_pool's reset callback. Keep one: put "
            "your SQL in reset_on_return, or call it from your own reset callback."
        )
    return pool_options


def _check_pool_argument(
    alias: str, key: object, value: object, *, accepted: frozenset[str]
) -> None:
    where = setting_name(alias, "OPTIONS", "pool")
    if not isinstance(key, str):
        raise ImproperlyConfigured(f"{where} has a non-string key {key!r}.")
    if key in OWNED_POOL_ARGUMENTS:
        raise ImproperlyConfigured(
            f"{where}[{key!r}] cannot be set: {OWNED_POOL_ARGUMENTS[key]}. Remove the key."
        )
    if key not in accepted:
        usable = sorted(accepted - OWNED_POOL_ARGUMENTS.keys())
        raise ImproperlyConfigured(
            f"{where} has an unknown key {key!r}: the installed psycopg_pool.ConnectionPool "
            f"accepts {', '.join(usable)}.{did_you_mean(key, usable)}"
        )
    if key in _NUMBER_ARGUMENTS and not (is_number(value) and value > 0):
        raise ImproperlyConfigured(
            f"{where}[{key!r}] must be {_NUMBER_ARGUMENTS[key]}, not {value!r}."
        )
    if key in _INTEGER_ARGUMENTS:
        minimum = 1 if key == "num_workers" else 0
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
            raise ImproperlyConfigured(
                f"{where}[{key!r}] must be {_INTEGER_ARGUMENTS[key]}, not {value!r}."
            )
    if (
        key == "max_size"
        and value is not None
        and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
    ):
        raise ImproperlyConfigured(
            f"{where}['max_size'] must be an integer >= 1 or None (same as min_size), "
            f"not {value!r}."
        )
    if key in ("check", "reset", "reconnect_failed") and value is not None and not callable(value):
        raise ImproperlyConfigured(f"{where}[{key!r}] must be a callable or None, not {value!r}.")


def isolation_level(alias: str, options: Mapping[str, Any]) -> Any:
    """The ``psycopg.IsolationLevel`` from ``OPTIONS['isolation_level']``, or None."""
    from psycopg import IsolationLevel

    if "isolation_level" not in options:
        return None
    value = options["isolation_level"]
    try:
        return IsolationLevel(value)
    except ValueError:
        names = ", ".join(f"IsolationLevel.{level.name}" for level in IsolationLevel)
        raise ImproperlyConfigured(
            # Django's own sentence first: code and tests match on it.
            f"Invalid transaction isolation level {value} specified. Use one of the "
            "psycopg.IsolationLevel values. "
            f"{setting_name(alias, 'OPTIONS', 'isolation_level')} is {value!r}; valid values: "
            f"{names}."
        ) from None
