"""The one package-level setting, ``DJANGO_PG_REAL_POOL``, validated.

Pool sizes live in ``DATABASES``; this setting holds what concerns the whole deployment:
how many worker processes share the server, the request timeout, metrics, warning thresholds
and the readiness probe. Unknown keys and wrong types raise ``ImproperlyConfigured``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from django.core.exceptions import ImproperlyConfigured

SETTING = "DJANGO_PG_REAL_POOL"


@dataclass(frozen=True)
class PackageSettings:
    """``settings.DJANGO_PG_REAL_POOL`` with its defaults filled in."""

    #: Worker processes per deployment that each build their own pools (gunicorn
    #: ``--workers`` times the number of hosts); used by the connection budget check.
    WORKERS: int = 1
    #: The longest a request may run, in seconds (gunicorn ``--timeout``); None if unknown.
    REQUEST_TIMEOUT: float | None = None
    #: Export Prometheus metrics (needs the ``prometheus`` extra).
    METRICS: bool = False
    #: Log a warning when a checkout waited longer than this many seconds; None: never.
    SLOW_CHECKOUT_WARNING: float | None = None
    #: Log a warning when a connection was held longer than this many seconds; None: never.
    LONG_HOLD_WARNING: float | None = None
    #: Record where each connection was checked out, for the long-hold warning (costly).
    RECORD_CHECKOUT_ORIGIN: bool = False
    #: The alias whose settings the readiness probe connects with (never through its pool).
    READINESS_ALIAS: str = "default"
    #: ``connect_timeout`` of the readiness probe's connection, in whole seconds.
    READINESS_TIMEOUT: int = 2


_KEYS = tuple(field.name for field in fields(PackageSettings))
_cached: PackageSettings | None = None


def _seconds(key: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return
    also = " or None" if optional else ""
    raise ImproperlyConfigured(
        f"{SETTING}[{key!r}] must be a positive number of seconds{also}, not {value!r}."
    )


def validate(raw: object) -> PackageSettings:
    """``raw`` (the setting's value) checked, with defaults filled in."""
    if raw is None:
        return PackageSettings()
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"{SETTING} must be a dict, not {type(raw).__name__} {raw!r}.")
    for key in raw:
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key).upper(), _KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ImproperlyConfigured(
                f"{SETTING} has an unknown key {key!r}. Valid keys: {', '.join(_KEYS)}.{hint}"
            )
    for key in ("WORKERS", "READINESS_TIMEOUT"):
        value = raw.get(key, 1)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise ImproperlyConfigured(
                f"{SETTING}[{key!r}] must be an integer >= 1, not {value!r}."
            )
    for key in ("REQUEST_TIMEOUT", "SLOW_CHECKOUT_WARNING", "LONG_HOLD_WARNING"):
        _seconds(key, raw.get(key), optional=True)
    for key in ("METRICS", "RECORD_CHECKOUT_ORIGIN"):
        value = raw.get(key, False)
        if not isinstance(value, bool):
            raise ImproperlyConfigured(f"{SETTING}[{key!r}] must be True or False, not {value!r}.")
    alias = raw.get("READINESS_ALIAS", "default")
    if not isinstance(alias, str):
        raise ImproperlyConfigured(
            f"{SETTING}['READINESS_ALIAS'] must be an alias of DATABASES, not {alias!r}."
        )
    return PackageSettings(**raw)


def get() -> PackageSettings:
    """The validated setting, read once and again after ``override_settings`` changes it."""
    global _cached  # noqa: PLW0603
    if _cached is None:
        from django.conf import settings

        _cached = validate(getattr(settings, SETTING, None))
    return _cached


def _forget(*, setting: str, **kwargs: Any) -> None:
    global _cached  # noqa: PLW0603
    if setting == SETTING:
        _cached = None


def connect_signals() -> None:
    """Re-read the setting when a test overrides it (called by the app's ``ready()``)."""
    from django.test.signals import setting_changed

    setting_changed.connect(_forget, dispatch_uid="django_pg_real_pool.conf")
