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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: name -> (help, ini type)
SETTINGS: dict[str, tuple[str, str]] = {
    "pg_dsn": (
        "use this running PostgreSQL server (libpq DSN or URI) instead of starting one",
        "string",
    ),
    "pg_bindir": ("start the throwaway server from the binaries in this directory", "string"),
    "pg_version": ("PostgreSQL major version of the throwaway server (13 to 18)", "string"),
    "pg_docker": ("allow a testcontainers container as the last resort: yes or no", "string"),
    "pg_cache_dir": ("where template data directories are cached between sessions", "string"),
}


class PluginUsageError(ValueError):
    """A plugin setting has a value that cannot be used."""


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def environment_variable(name: str) -> str:
    return "PYTEST_" + name.upper()


@dataclass(frozen=True)
class PluginConfig:
    dsn: str | None = None
    bindir: str | None = None
    major: int | None = None
    docker: bool = True
    cache_dir: Path | None = None

    @classmethod
    def from_pytest(cls, config: Any) -> PluginConfig:
        def value(name: str) -> str | None:
            given = config.getoption(name)
            if given not in (None, ""):
                return str(given)
            env = os.environ.get(environment_variable(name))
            if env:
                return env
            ini = config.getini(name)
            return str(ini) if ini else None

        return cls.from_values(value)

    @classmethod
    def from_values(cls, value: Any) -> PluginConfig:
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
                    f"{major_text!r} (set by {option('pg_version')}, "
                    f"{environment_variable('pg_version')} or the ini key pg_version)."
                )
        docker_text = (value("pg_docker") or "yes").lower()
        if docker_text not in ("yes", "no", "true", "false", "1", "0"):
            raise PluginUsageError(
                f"pg_docker must be yes or no, not {docker_text!r} (set by "
                f"{option('pg_docker')}, {environment_variable('pg_docker')} or the ini key "
                "pg_docker)."
            )
        cache_dir = value("pg_cache_dir")
        return cls(
            dsn=value("pg_dsn"),
            bindir=value("pg_bindir"),
            major=major,
            docker=docker_text in ("yes", "true", "1"),
            cache_dir=Path(cache_dir) if cache_dir else None,
        )
