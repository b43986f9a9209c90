"""The plugin's settings: one name each, read from the command line, the environment or the
ini file, in that order of precedence.

========================  ======================  ============================
command line              ini key                 environment variable
========================  ======================  ============================
``--pg-dsn``              ``pg_dsn``              ``PYTEST_PG_DSN``
``--pg-bindir``           ``pg_bindir``           ``PYTEST_PG_BINDIR``
``--pg-version``          ``pg_version``          ``PYTEST_PG_VERSION``
``--pg-docker``           ``pg_docker``           ``PYTEST_PG_DOCKER``
``--pg-cache-dir``        ``pg_cache_dir``        ``PYTEST_PG_CACHE_DIR``
========================  ======================  ============================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .servers.config import ServerConfig

__all__ = ["SETTINGS", "PluginUsageError", "environment_variable", "option", "parse", "read"]

#: name -> help
SETTINGS: dict[str, str] = {
    "pg_dsn": "use this running PostgreSQL server (libpq DSN or URI) instead of starting one",
    "pg_bindir": "start the throwaway server from the binaries in this directory",
    "pg_version": "PostgreSQL major version of the throwaway server (13 to 18)",
    "pg_docker": "allow a testcontainers container as the last resort: yes or no",
    "pg_cache_dir": "where template data directories are cached between sessions",
}


class PluginUsageError(ValueError):
    """A plugin setting has a value that cannot be used."""


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def environment_variable(name: str) -> str:
    return "PYTEST_" + name.upper()


def read(config: Any) -> ServerConfig:
    """The settings of a pytest ``config``: command line, else environment, else ini."""

    def value(name: str) -> str | None:
        given = config.getoption(name)
        if given not in (None, ""):
            return str(given)
        env = os.environ.get(environment_variable(name))
        if env:
            return env
        ini = config.getini(name)
        return str(ini) if ini else None

    return parse(value)


def _where(name: str) -> str:
    return f"set by {option(name)}, {environment_variable(name)} or the ini key {name}"


def parse(value: Callable[[str], str | None]) -> ServerConfig:
    """A checked ``ServerConfig`` from ``value(name)``, the text of each setting or None."""
    major_text = value("pg_version")
    major = None
    if major_text is not None:
        try:
            major = int(major_text)
        except ValueError:
            major = 0
        if not 9 < major < 100:
            raise PluginUsageError(
                f"pg_version must be a PostgreSQL major version such as 16, not "
                f"{major_text!r} ({_where('pg_version')})."
            )
    docker_text = (value("pg_docker") or "yes").lower()
    if docker_text not in ("yes", "no", "true", "false", "1", "0"):
        raise PluginUsageError(
            f"pg_docker must be yes or no, not {docker_text!r} ({_where('pg_docker')})."
        )
    cache_dir = value("pg_cache_dir")
    return ServerConfig(
        dsn=value("pg_dsn"),
        bindir=value("pg_bindir"),
        major=major,
        docker=docker_text in ("yes", "true", "1"),
        cache_dir=Path(cache_dir) if cache_dir else None,
    )
