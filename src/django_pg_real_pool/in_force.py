"""The pool settings in force for an alias, with the defaults filled in, read from
``DATABASES`` alone (no pool is built, no connection opened)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import compat, engines, options, queue_options

#: Arguments whose values are callables or objects; shown by name only.
_HIDDEN = frozenset({"conninfo", "kwargs", "open", "configure", "connection_class"})


@dataclass(frozen=True)
class PoolLimits:
    """How many connections one process's pool of an alias may hold."""

    #: Open connections allowed (``max_size``; ``POOL_SIZE`` + ``MAX_OVERFLOW``); None:
    #: unbounded (``MAX_OVERFLOW`` -1).
    max: int | None
    #: Idle connections the pool keeps at least (``min_size``; 0 for QueuePool).
    idle_min: int
    #: Idle connections the pool keeps at most (``max_size``; ``POOL_SIZE``).
    idle_max: int
    #: Seconds a checkout waits before giving up.
    timeout: float


def engine_of(settings_dict: Mapping[str, Any]) -> str | None:
    """The short name of the alias's engine, or None if it is not one of this package's."""
    engine = settings_dict.get("ENGINE")
    return engines.short_name(engine) if engine in engines.ENGINES else None


def is_pooled(settings_dict: Mapping[str, Any]) -> bool:
    """Whether the alias pools through one of this package's engines."""
    short = engine_of(settings_dict)
    pool = (settings_dict.get("OPTIONS") or {}).get("pool")
    if short == "real_pool":
        return pool is not None and pool is not False
    return short == "real_pool_dj" and pool is not False


def pool_settings(alias: str, settings_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Every pool argument of a pooled alias, the user's merged over the defaults."""
    if engine_of(settings_dict) == "real_pool_dj":
        queue = queue_options.queue_pool_options(alias, settings_dict)
        if queue is None:
            return {}
        return {
            "POOL_SIZE": queue.pool_size,
            "MAX_OVERFLOW": queue.max_overflow,
            "RECYCLE": queue.recycle,
            "TIMEOUT": queue.timeout,
            "PRE_PING": queue.pre_ping,
            "ECHO": queue.echo,
            "MAX_WAITING": queue.max_waiting,
            "RESET_ON_RETURN": queue.reset_on_return or False,
            "PRE_PING_SKIP_WINDOW": queue.pre_ping_skip_window,
            "REUSE_WINDOW": queue.reuse_window,
        }
    given = options.psycopg_pool_options(
        alias, settings_dict, accepted=compat.connection_pool_parameters()
    )
    pool_class = compat.require_psycopg_pool()
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(pool_class.__init__).parameters.items()
        if name != "self" and name not in _HIDDEN
    }
    merged = {**defaults, "name": alias, **(given or {})}
    # Not a ConnectionPool argument: the engine's own, in OPTIONS beside "pool".
    merged["reuse_window"] = options.psycopg_pool_reuse_window(alias, settings_dict, given or {})
    if merged["max_size"] is None:
        merged["max_size"] = merged["min_size"]
    return {
        key: getattr(value, "__qualname__", value) if callable(value) else value
        for key, value in merged.items()
    }


def limits(alias: str, settings_dict: Mapping[str, Any]) -> PoolLimits:
    """The connection limits of one process's pool of a pooled alias."""
    found = pool_settings(alias, settings_dict)
    if engine_of(settings_dict) == "real_pool_dj":
        overflow = found["MAX_OVERFLOW"]
        return PoolLimits(
            max=None if overflow < 0 else found["POOL_SIZE"] + overflow,
            idle_min=0,
            idle_max=found["POOL_SIZE"],
            timeout=found["TIMEOUT"],
        )
    return PoolLimits(
        max=found["max_size"],
        idle_min=found["min_size"],
        idle_max=found["max_size"],
        timeout=found["timeout"],
    )
