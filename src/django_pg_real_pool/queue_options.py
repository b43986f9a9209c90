"""The second engine's ``POOL_OPTIONS``, validated with the rules of ``options.py``:
django-db-connection-pool itself drops a lowercase or unknown key without a word."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .engines import DJ_DB_CONN_POOL, PSYCOPG_POOL
from .options import (
    DEFAULT_REUSE_WINDOW,
    check_conn_max_age,
    check_engine_options,
    did_you_mean,
    is_number,
    reset_statement,
    reuse_window,
    setting_name,
)

#: django-db-connection-pool's effective defaults (its code, not its README).
QUEUE_POOL_DEFAULTS: Mapping[str, Any] = {
    "POOL_SIZE": 10,
    "MAX_OVERFLOW": 10,
    "RECYCLE": 900,
    "TIMEOUT": 30,
    "PRE_PING": True,
    "ECHO": False,
}
#: Keys this package adds to POOL_OPTIONS, with their defaults.
QUEUE_POOL_EXTENSIONS: Mapping[str, Any] = {
    "MAX_WAITING": 0,
    "RESET_ON_RETURN": False,
    "PRE_PING_SKIP_WINDOW": 0.5,
    "REUSE_WINDOW": DEFAULT_REUSE_WINDOW,
}


#: The psycopg_pool engine's OPTIONS keys, and this engine's POOL_OPTIONS key for each.
_OTHER_ENGINE_OPTIONS: Mapping[str, str] = {
    "reset_on_return": "RESET_ON_RETURN",
    "reuse_window": "REUSE_WINDOW",
}


@dataclass(frozen=True)
class QueuePoolOptions:
    """``POOL_OPTIONS`` of the django-db-connection-pool engine, validated, defaults applied."""

    pool_size: int
    max_overflow: int
    recycle: float
    timeout: float
    pre_ping: bool
    echo: bool | str
    #: Checkouts allowed to wait at once before the next is refused (0: no limit). Not a
    #: QueuePool argument: the engine enforces it, like psycopg_pool's ``max_waiting``.
    max_waiting: int = 0
    #: The SQL run on each connection given back (RESET_ON_RETURN), or None.
    reset_on_return: str | None = None
    #: PRE_PING skips a connection given back less than this many seconds ago whose socket
    #: has nothing to read (0: ping at every checkout).
    pre_ping_skip_window: float = 0.5
    #: A connection given back idle is handed to the next checkout without going back to the
    #: QueuePool if it left the QueuePool less than this many seconds ago (0: off).
    reuse_window: float = DEFAULT_REUSE_WINDOW

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``sqlalchemy.pool.QueuePool``."""
        return {
            key: value
            for key, value in asdict(self).items()
            if key not in ("max_waiting", "reset_on_return", "pre_ping_skip_window", "reuse_window")
        }


def queue_pool_options(alias: str, settings_dict: Mapping[str, Any]) -> QueuePoolOptions | None:
    """Validated ``POOL_OPTIONS``, or None when ``OPTIONS['pool']`` is False (no pool, as on
    the other engine); django-db-connection-pool itself drops bad keys silently."""
    options = settings_dict.get("OPTIONS") or {}
    check_engine_options(alias, options)
    pooled = options.get("pool", True) is not False
    if "pool" in options and pooled:
        raise ImproperlyConfigured(
            f"{setting_name(alias, 'OPTIONS', 'pool')} cannot be used with ENGINE "
            f"{DJ_DB_CONN_POOL!r} except as False (no pool): that engine pools through "
            "SQLAlchemy already, so connections would be pooled twice. Configure the pool with "
            f"{setting_name(alias, 'POOL_OPTIONS')} (POOL_SIZE, MAX_OVERFLOW, RECYCLE, TIMEOUT, "
            f"PRE_PING, ECHO), or switch to ENGINE {PSYCOPG_POOL!r} to keep OPTIONS['pool']."
        )
    for key, own in _OTHER_ENGINE_OPTIONS.items():
        if key in options:
            raise ImproperlyConfigured(
                f"{setting_name(alias, 'OPTIONS', key)} belongs to ENGINE {PSYCOPG_POOL!r}; "
                f"with ENGINE {DJ_DB_CONN_POOL!r} set "
                f"{setting_name(alias, 'POOL_OPTIONS', own)} instead."
            )
    if pooled:
        check_conn_max_age(alias, settings_dict)
    raw = settings_dict.get("POOL_OPTIONS") or {}
    where = setting_name(alias, "POOL_OPTIONS")
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict, not {type(raw).__name__} {raw!r}.")
    known = {**QUEUE_POOL_DEFAULTS, **QUEUE_POOL_EXTENSIONS}
    _check_keys(where, raw, known)
    merged = {**known, **raw}

    def integer(key: str, minimum: int, meaning: str) -> int:
        value = merged[key]
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
            raise ImproperlyConfigured(f"{where}[{key!r}] must be {meaning}, not {value!r}.")
        return value

    def seconds(key: str, meaning: str, *, allow_disable: bool) -> float:
        value = merged[key]
        if is_number(value) and (value > 0 or (allow_disable and value == -1)):
            return float(value)
        raise ImproperlyConfigured(f"{where}[{key!r}] must be {meaning}, not {value!r}.")

    pre_ping = merged["PRE_PING"]
    if not isinstance(pre_ping, bool):
        raise ImproperlyConfigured(f"{where}['PRE_PING'] must be True or False, not {pre_ping!r}.")
    echo = merged["ECHO"]
    if not (isinstance(echo, bool) or echo == "debug"):
        raise ImproperlyConfigured(f"{where}['ECHO'] must be True, False or 'debug', not {echo!r}.")
    skip_window = merged["PRE_PING_SKIP_WINDOW"]
    if not (is_number(skip_window) and skip_window >= 0):
        raise ImproperlyConfigured(
            f"{where}['PRE_PING_SKIP_WINDOW'] must be a number of seconds >= 0 (0: ping at "
            f"every checkout), not {skip_window!r}."
        )
    if not pre_ping and "PRE_PING_SKIP_WINDOW" in raw:
        raise ImproperlyConfigured(
            f"{where}['PRE_PING_SKIP_WINDOW'] only applies with PRE_PING on, and PRE_PING is "
            "False: remove PRE_PING_SKIP_WINDOW, or set PRE_PING to True."
        )
    reset = reset_statement(f"{where}['RESET_ON_RETURN']", merged["RESET_ON_RETURN"])
    window = _reuse_window(where, raw, reset=reset, pre_ping=pre_ping, skip_window=skip_window)
    if not pooled:
        # Still validated: a typo must not wait for the day pooling is turned back on.
        return None
    return QueuePoolOptions(
        pool_size=integer("POOL_SIZE", 1, "an integer >= 1"),
        max_overflow=integer("MAX_OVERFLOW", -1, "an integer >= 0, or -1 for no limit"),
        recycle=seconds(
            "RECYCLE", "a positive number of seconds, or -1 to never recycle", allow_disable=True
        ),
        timeout=seconds("TIMEOUT", "a positive number of seconds", allow_disable=False),
        pre_ping=pre_ping,
        echo=echo,
        max_waiting=integer("MAX_WAITING", 0, "an integer >= 0 (0 means unlimited)"),
        reset_on_return=reset,
        pre_ping_skip_window=float(skip_window),
        reuse_window=window,
    )


def _reuse_window(
    where: str, raw: Mapping[str, Any], *, reset: str | None, pre_ping: bool, skip_window: float
) -> float:
    """REUSE_WINDOW in force: with PRE_PING on at most PRE_PING_SKIP_WINDOW, since a
    connection reused within the window is not pinged."""
    window = reuse_window(
        f"{where}['REUSE_WINDOW']",
        raw.get("REUSE_WINDOW"),
        reset=None if reset is None else f"RESET_ON_RETURN ({reset!r})",
    )
    if not (pre_ping and window > skip_window):
        return window
    if "REUSE_WINDOW" in raw:
        raise ImproperlyConfigured(
            f"{where}['REUSE_WINDOW'] is {raw['REUSE_WINDOW']!r}, longer than "
            f"PRE_PING_SKIP_WINDOW ({skip_window!r}): a connection reused within the window is "
            "not pinged, so with PRE_PING on it may be at most PRE_PING_SKIP_WINDOW. Lower "
            "REUSE_WINDOW or raise PRE_PING_SKIP_WINDOW."
        )
    return float(skip_window)  # the default follows a shorter skip window


def _check_keys(where: str, raw: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    valid = ", ".join(known)
    for key in raw:
        if key in known:
            continue
        if isinstance(key, str) and key.upper() in known:
            raise ImproperlyConfigured(
                f"{where} has the key {key!r}; keys must be UPPERCASE: use {key.upper()!r}. "
                f"Valid keys: {valid}."
            )
        hint = did_you_mean(str(key).upper(), known)
        raise ImproperlyConfigured(
            f"{where} has an unknown key {key!r}. Valid keys: {valid}.{hint}"
        )
