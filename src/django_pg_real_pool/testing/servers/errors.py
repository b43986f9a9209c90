"""The errors raised while finding, starting or reaching a PostgreSQL server for tests."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ServerNotControllable", "ServerNotFound", "ServerStartError", "ServerUnreachable"]


class ServerNotFound(RuntimeError):
    """No usable PostgreSQL server binaries were found; the message lists where we looked.

    ``checked`` holds the same list, one line per place: why each was rejected.
    """

    def __init__(self, message: str, *, checked: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.checked = tuple(checked)


class ServerStartError(RuntimeError):
    """The server could not be initialised or started; the message ends with the log tail."""


class ServerUnreachable(ServerStartError):
    """A server that should already run does not answer; the message names it, no password."""


class ServerNotControllable(RuntimeError):
    """The server is not ours to stop, start or restart (external, container, or attached)."""
