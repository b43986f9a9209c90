"""What a test session asks of its server: the one configuration class, from the pytest
options to the keeper process (through JSON) and to ``start_server()``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerConfig"]


@dataclass(frozen=True)
class ServerConfig:
    """Where the server comes from; ``start_server()`` documents the order.

    ``dsn``: a running server to use instead of starting one. ``bindir``: start it from the
    binaries in this directory only. ``major``: the PostgreSQL major version wanted.
    ``cache_dir``: where templates and unpacked binaries are cached (None: the default).
    ``docker``: whether a testcontainers container may be the last resort.
    """

    dsn: str | None = None
    bindir: str | None = None
    major: int | None = None
    cache_dir: Path | None = None
    docker: bool = True

    def to_json(self) -> str:
        """The configuration as JSON, for another process (the keeper)."""
        return json.dumps(
            {
                "dsn": self.dsn,
                "bindir": self.bindir,
                "major": self.major,
                "cache_dir": None if self.cache_dir is None else str(self.cache_dir),
                "docker": self.docker,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        """The configuration ``to_json()`` wrote."""
        fields = json.loads(text)
        cache_dir = fields.get("cache_dir")
        return cls(
            dsn=fields.get("dsn"),
            bindir=fields.get("bindir"),
            major=fields.get("major"),
            cache_dir=None if cache_dir is None else Path(cache_dir),
            docker=bool(fields.get("docker", True)),
        )
