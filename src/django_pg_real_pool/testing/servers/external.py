"""A PostgreSQL server that already runs somewhere, given by a libpq DSN or URI."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ._dsn import HasDsn
from .errors import ServerNotControllable, ServerUnreachable

__all__ = ["ExternalServer", "redacted"]

logger = logging.getLogger("django_pg_real_pool")

_CONNECT_TIMEOUT = 5
_DEFAULT_PORT = 5432


def redacted(params: dict[str, Any]) -> str:
    """The conninfo string of ``params`` without the password, for messages."""
    return make_conninfo("", **{k: v for k, v in params.items() if k != "password"})


class ExternalServer(HasDsn):
    """A server we only connect to: ``postgresql://user:pw@host:port/db`` or ``host=... port=...``.

    ``start()`` checks that it answers and reads its version; until then ``host``, ``port`` and
    ``user`` are what the DSN says, afterwards what libpq resolved (environment, defaults). The
    DSN's other parameters (sslmode...) are kept in ``connect_kwargs()``; its database name is
    only used for that first check. ``stop()`` and ``restart()`` raise ServerNotControllable and
    ``close()`` leaves the server alone.
    """

    controllable = False
    source = "external"

    def __init__(self, dsn: str) -> None:
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise psycopg.ProgrammingError(f"invalid PostgreSQL DSN: {exc}") from None
        self._params: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        self._resolved: dict[str, Any] = {}
        self._major: int | None = None

    def __repr__(self) -> str:
        return f"<ExternalServer {redacted(self._params)}>"

    @property
    def host(self) -> str:
        """The host (or socket directory) of the server."""
        return str(self._resolved.get("host") or self._params.get("host") or "")

    @property
    def port(self) -> int:
        """The server's port."""
        port = self._resolved.get("port") or self._params.get("port") or _DEFAULT_PORT
        try:
            return int(port)
        except ValueError:  # several hosts and ports, before start()
            return int(str(port).split(",")[0])

    @property
    def user(self) -> str:
        """The role we connect as."""
        return str(self._resolved.get("user") or self._params.get("user") or "")

    @property
    def password(self) -> str | None:
        """The password, if the DSN (or libpq, from PGPASSWORD or .pgpass) gave one."""
        password = self._resolved.get("password") or self._params.get("password")
        return str(password) if password else None

    @property
    def major(self) -> int:
        """The server's major version, from ``server_version_num`` (connects on first use)."""
        if self._major is None:
            self.start()
        assert self._major is not None
        return self._major

    def connect_kwargs(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect()`` for ``dbname`` on this server."""
        kwargs = {**self._params, **self._resolved, "dbname": dbname}
        if self.password is None:
            kwargs.pop("password", None)
        return kwargs

    def start(self) -> None:
        """Check that the server answers; learn its version and the resolved host, port, user."""
        params = {"connect_timeout": _CONNECT_TIMEOUT, **self._params}
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                row = conn.execute("SHOW server_version_num").fetchone()
                info = conn.info
                resolved = {"host": info.host, "port": info.port, "user": info.user}
                if info.password:
                    resolved["password"] = info.password
        except psycopg.OperationalError as exc:
            reason = " ".join(line.strip() for line in str(exc).splitlines()) or repr(exc)
            raise ServerUnreachable(
                f"the PostgreSQL server at {redacted(self._params)!r} does not answer: {reason}"
            ) from None
        assert row is not None
        self._resolved = resolved
        self._major = int(row[0]) // 10000
        logger.info(
            "using the external PostgreSQL %d server at %s:%d", self._major, self.host, self.port
        )

    def stop(self) -> None:
        """Not possible: the server is not ours."""
        raise ServerNotControllable(f"cannot stop the external server at {self.host}:{self.port}")

    def restart(self) -> None:
        """Not possible: the server is not ours."""
        raise ServerNotControllable(
            f"cannot restart the external server at {self.host}:{self.port}"
        )

    def close(self) -> None:
        """Nothing to do: the server keeps running."""
