"""A view of a server that another process started and owns (an xdist worker's view of the
session's server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._dsn import HasDsn
from .errors import ServerNotControllable

__all__ = ["AttachedServer"]


@dataclass(frozen=True)
class AttachedServer(HasDsn):
    """Connection details of a running server; it cannot be stopped or restarted from here and
    ``close()`` leaves it running. ``pid`` and ``data_dir`` are set for local servers."""

    host: str
    port: int
    user: str
    password: str | None
    source: str
    major: int
    params: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    data_dir: str | None = None
    controllable = False

    def connect_kwargs(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect()`` for ``dbname`` on this server."""
        kwargs = {**self.params, "host": self.host, "port": self.port, "user": self.user}
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs | {"dbname": dbname}

    def start(self) -> None:
        """Nothing to do: the owner started it."""

    def stop(self) -> None:
        """Not possible from a view."""
        raise ServerNotControllable(self._refusal("stop"))

    def restart(self) -> None:
        """Not possible from a view."""
        raise ServerNotControllable(self._refusal("restart"))

    def close(self) -> None:
        """Nothing to do: the owner closes it."""

    def _refusal(self, action: str) -> str:
        return (
            f"cannot {action} the {self.source} server at {self.host}:{self.port} from an "
            "attached view; its owner controls it"
        )
