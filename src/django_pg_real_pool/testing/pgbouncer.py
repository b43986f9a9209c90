"""A throwaway PgBouncer in front of a test server, in transaction pooling mode by default.

PgBouncer refuses to run as root: when this process is root, it runs as the account the
throwaway PostgreSQL servers run as (``postgres``, else ``nobody``), with its configuration
in a temporary directory that account owns. It listens on 127.0.0.1, on a free port, accepts
the server's user without a password (``auth_type = trust``) and logs in to the server as that
user; ``close()`` stops it and removes the directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

from .servers._account import Account, server_account
from .servers._process import log_tail, parent_death_hook, startup_exit, terminate, wait
from .servers.resolve import RunningServer

__all__ = ["PgBouncer", "PgBouncerNotFound", "PgBouncerStartError", "find_pgbouncer"]

logger = logging.getLogger("django_pg_real_pool")

_HOST = "127.0.0.1"
_SEARCHED = ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer")
_POOL_MODES = ("session", "transaction", "statement")
_PORT_ATTEMPTS = 3
#: Settings this module writes itself: the ones that decide where PgBouncer listens and logs.
_MANAGED = frozenset({"listen_addr", "listen_port", "unix_socket_dir", "logfile", "auth_file"})
_DEFAULTS = {
    "auth_type": "trust",
    "max_client_conn": "500",
    "default_pool_size": "20",
    # psycopg sends none of these, but libpq-based tools and drivers may.
    "ignore_startup_parameters": "extra_float_digits",
    "server_login_retry": "1",
}


class PgBouncerNotFound(RuntimeError):
    """No ``pgbouncer`` executable was found."""


class PgBouncerStartError(RuntimeError):
    """PgBouncer did not start; the message holds the tail of its log."""


def find_pgbouncer() -> Path:
    """The ``pgbouncer`` executable: on ``PATH``, else where Debian and Homebrew install it."""
    found = shutil.which("pgbouncer")
    if found is not None:
        return Path(found)
    for candidate in _SEARCHED:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    raise PgBouncerNotFound(
        f"could not find pgbouncer. Checked: PATH, {', '.join(_SEARCHED)}. To fix this, "
        "install it (Debian/Ubuntu: apt-get install pgbouncer; macOS: brew install pgbouncer) "
        "or put its directory on PATH."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    terminate(proc, timeout, program="PgBouncer", how=signal.SIGTERM)


def _release(state: dict[str, Any]) -> None:
    """Stop the process and remove the directory; log failures instead of raising."""
    if os.getpid() != state["owner_pid"]:
        return  # a forked child must not stop its parent's PgBouncer
    proc = state.pop("proc", None)
    if proc is not None:
        try:
            _stop(proc, 10.0)
        except Exception:
            logger.exception("could not stop PgBouncer pid %d", proc.pid)
    directory = state.pop("directory", None)
    if directory is not None:
        try:
            shutil.rmtree(directory)
        except OSError as exc:
            logger.warning("could not remove %s: %s", directory, exc)


class PgBouncer:
    """PgBouncer on ``host``:``port`` in front of ``server``, every database passed through.

    ``settings`` adds to or overrides the ``[pgbouncer]`` section (``default_pool_size``,
    ``max_client_conn``, ...); ``pool_mode`` is ``transaction`` unless given. Use ``host`` and
    ``port`` in a ``DATABASES`` entry (or ``pool_settings(..., via=bouncer)``) with the
    server's user and password.
    """

    def __init__(
        self,
        server: RunningServer,
        *,
        pool_mode: str = "transaction",
        settings: Mapping[str, str] | None = None,
        executable: Path | None = None,
    ) -> None:
        if pool_mode not in _POOL_MODES:
            raise ValueError(
                f"pool_mode must be one of {', '.join(_POOL_MODES)}, not {pool_mode!r}"
            )
        for key, value in (settings or {}).items():
            if key in _MANAGED:
                raise ValueError(f"the PgBouncer setting {key!r} is managed by PgBouncer()")
            if not isinstance(value, str):
                raise TypeError(f"the PgBouncer setting {key!r} must be a string, got {value!r}")
        self.server = server
        self.pool_mode = pool_mode
        self.host = _HOST
        self.port = 0
        self.executable = executable or find_pgbouncer()
        self._settings = {**_DEFAULTS, "pool_mode": pool_mode, **(settings or {})}
        self._account: Account | None = server_account()
        self._directory = Path()
        self._state: dict[str, Any] = {"owner_pid": os.getpid()}
        self._finalizer = weakref.finalize(self, _release, self._state)

    def __repr__(self) -> str:
        return f"<PgBouncer {self.pool_mode} mode on {self.host}:{self.port} -> {self.server.port}>"

    @property
    def user(self) -> str:
        return self.server.user

    @property
    def password(self) -> str | None:
        return self.server.password

    @property
    def pid(self) -> int | None:
        """PgBouncer's process id while it runs."""
        proc = self._state.get("proc")
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def log_path(self) -> Path:
        """PgBouncer's log (gone after ``close()``)."""
        return self._directory / "pgbouncer.log"

    def connect_kwargs(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect()`` to ``dbname`` through PgBouncer."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": dbname,
        }
        if self.password:
            kwargs["password"] = self.password
        return kwargs

    def start(self, *, timeout: float = 15.0) -> PgBouncer:
        """Start PgBouncer; return once a query through it reaches the server."""
        if "proc" in self._state:
            return self
        if not self._finalizer.alive:
            raise PgBouncerStartError("this PgBouncer is closed; make a new one")
        directory = Path(tempfile.mkdtemp(prefix="pgbouncer-", dir=self._temp_parent()))
        self._state["directory"] = self._directory = directory
        users = directory / "users.txt"
        users.write_text(f"{_quote(self.user)} {_quote(self.password or '')}\n")
        users.chmod(0o600)
        self.log_path.touch(0o600)
        if self._account is not None:
            for path in (directory, users, self.log_path):
                os.chown(path, self._account.uid, self._account.gid)
        deadline = time.monotonic() + timeout
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = _free_port()
            taken = self._launch(directory, deadline, timeout)
            if taken is None:
                return self
            if attempt == _PORT_ATTEMPTS:
                raise PgBouncerStartError(f"port {self.port} on {self.host} is in use:\n{taken}")
        return self  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        """Stop PgBouncer and remove its directory; failures are logged."""
        self._finalizer()

    def __enter__(self) -> PgBouncer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _temp_parent(self) -> str | None:
        # pytest's temporary directories are 0700 root: PgBouncer's account cannot enter them.
        return "/tmp" if self._account is not None and os.path.isdir("/tmp") else None

    def _write_config(self, directory: Path) -> Path:
        target = f"host={self.server.host} port={self.server.port} user={self.user}"
        lines = ["[databases]", f"* = {target}", "", "[pgbouncer]"]
        settings = {
            **self._settings,
            "listen_addr": self.host,
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "logfile": str(self.log_path),
            "auth_file": str(directory / "users.txt"),
        }
        lines += [f"{key} = {value}" for key, value in settings.items()]
        config = directory / "pgbouncer.ini"
        config.write_text("\n".join(lines) + "\n")
        if self._account is not None:
            os.chown(config, self._account.uid, self._account.gid)
        return config

    def _launch(self, directory: Path, deadline: float, timeout: float) -> str | None:
        """Run PgBouncer; None once it answers, or the log tail if its port was taken."""
        config = self._write_config(directory)
        offset = self.log_path.stat().st_size
        kwargs: dict[str, Any] = {}
        if self._account is not None:
            kwargs = {"user": self._account.uid, "group": self._account.gid, "extra_groups": []}
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [str(self.executable), str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
                start_new_session=True,
                # The hook only calls prctl and getppid: nothing that takes a lock.
                preexec_fn=parent_death_hook(),  # noqa: PLW1509
                **kwargs,
            )
        self._state["proc"] = proc
        while not self._answers():
            code = wait(proc, 0.01)
            if code is not None:
                del self._state["proc"]
                return startup_exit("PgBouncer", code, self.log_path, offset, PgBouncerStartError)
            if time.monotonic() >= deadline:
                tail = log_tail(self.log_path, offset)
                self.close()
                raise PgBouncerStartError(
                    f"PgBouncer did not pass a query to {self.server.host}:{self.server.port} "
                    f"within {timeout:g} s; the tail of its log:\n{tail}"
                )
        logger.info("PgBouncer ready on %s:%d (pid %d)", self.host, self.port, proc.pid)
        return None

    def _answers(self) -> bool:
        try:
            with psycopg.connect(
                **self.connect_kwargs(), connect_timeout=2, autocommit=True
            ) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True
