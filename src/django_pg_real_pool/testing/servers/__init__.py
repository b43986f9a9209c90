"""Ways of getting a PostgreSQL server to run tests against.

The stable entry for scripts outside pytest: ``start_server(ServerConfig(...))`` (close the
server when done) or the context manager ``throwaway_server(major=None)``. Importing this
package loads neither psycopg nor the server modules until one of them is used, so that the
pytest plugin costs nothing to load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import ServerConfig

if TYPE_CHECKING:
    from .resolve import NoServerAvailable, RunningServer, start_server, throwaway_server

__all__ = ["NoServerAvailable", "RunningServer", "ServerConfig", "start_server", "throwaway_server"]

_FROM_RESOLVE = frozenset(
    {"NoServerAvailable", "RunningServer", "start_server", "throwaway_server"}
)


def __getattr__(name: str) -> Any:
    if name in _FROM_RESOLVE:
        from . import resolve

        return getattr(resolve, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
