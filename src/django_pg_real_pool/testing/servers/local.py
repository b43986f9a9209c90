"""Throwaway PostgreSQL servers started from locally installed server binaries, for test suites.

PostgreSQL refuses to run as root. When this process is root, ``initdb`` and ``postgres`` run as
the ``postgres`` user (or ``nobody``), and everything the server writes is handed over to it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import make_conninfo

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
_SERVER_ACCOUNTS = ("postgres", "nobody")
_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_MIN_MAJOR = 10
_NO_INSTRUCTIONS_MAJOR = 13  # initdb --no-instructions appeared in PostgreSQL 13
_DEFAULT_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
}
_MANAGED_SETTINGS = frozenset({"listen_addresses", "port", "unix_socket_directories"})
_PORT_ATTEMPTS = 3
_PORT_TAKEN = "Address already in use"
_SOCKET_DIR_MAX = 100 - len("/.s.PGSQL.65535")  # sun_path is 108 bytes on Linux, 104 on macOS
_LOG_TAIL_BYTES = 4000
_COMMAND_TIMEOUT = 120.0
_CLOSE_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1

_S = TypeVar("_S", bound="LocalServer")


class ServerNotFound(RuntimeError):
    """No usable PostgreSQL server binaries were found; the message lists where we looked."""


class ServerStartError(RuntimeError):
    """The server could not be initialised or started; the message ends with the log tail."""


class _Rejected(Exception):
    """A candidate binary directory is unusable; the message says why."""


@dataclass(frozen=True)
class PostgresBinaries:
    """A directory holding ``initdb`` and ``postgres``, with the version they report."""

    bindir: Path
    version: str
    major: int
    source: str

    def path(self, name: str) -> Path:
        """The path of the program ``name`` in this directory."""
        return self.bindir / name


@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int


def _server_account() -> _Account | None:
    """The unprivileged account the server must run as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in _SERVER_ACCOUNTS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return _Account(name, entry.pw_uid, entry.pw_gid)
    raise ServerStartError(
        "PostgreSQL refuses to run as root and there is no 'postgres' or 'nobody' user "
        "to run it as; create one (useradd --system postgres) or run as a normal user"
    )


def _first_blocked(path: Path, account: _Account) -> Path | None:
    """The first existing component of ``path`` that ``account`` may not enter or execute."""
    for part in [*reversed(path.parents), path]:
        try:
            st = part.stat()
        except FileNotFoundError:
            return None
        if st.st_uid == account.uid:
            allowed = st.st_mode & 0o100
        elif st.st_gid == account.gid:
            allowed = st.st_mode & 0o010
        else:
            allowed = st.st_mode & 0o001
        if not allowed:
            return part
    return None


def _blocked_message(path: Path, blocked: Path, account: _Account) -> str:
    return (
        f"{path} cannot be reached by user {account.name!r}, which PostgreSQL must run as "
        f"because this process is root: {blocked} has mode {blocked.stat().st_mode & 0o7777:o}"
    )


def find_binaries(
    *, bindir: str | os.PathLike[str] | None = None, major: int | None = None
) -> PostgresBinaries:
    """Find ``initdb`` and ``postgres``, optionally of one major version.

    Search order: the explicit ``bindir`` (then nothing else); ``postgres`` on ``PATH`` (symlinks
    resolved to the real bindir); ``pg_config --bindir``; ``/usr/lib/postgresql/<major>/bin``
    (the Debian layout, the requested major or else the highest first). The version comes from
    ``postgres --version``. Raises ServerNotFound listing every place checked and why it failed.
    """
    account = _server_account()
    checked: list[str] = []
    for source, directory in _candidates(bindir, major, checked):
        try:
            found = _inspect(source, directory, major, account)
        except _Rejected as exc:
            checked.append(f"{source} {directory}: {exc}")
            continue
        logger.debug("found PostgreSQL %s in %s (via %s)", found.version, found.bindir, source)
        return found
    raise ServerNotFound(_not_found_message(checked, major, account))


def _candidates(
    bindir: str | os.PathLike[str] | None, major: int | None, checked: list[str]
) -> Iterator[tuple[str, Path]]:
    """Yield (source, directory) in search order; note sources with no candidate in checked."""
    if bindir is not None:
        yield "argument", Path(bindir)
        return
    on_path = shutil.which("postgres")
    if on_path is None:
        checked.append("PATH: no 'postgres' executable on PATH")
    else:
        yield "PATH", Path(on_path).parent
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        checked.append("pg_config: no 'pg_config' on PATH")
    else:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            yield "pg_config", Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError) as exc:
            checked.append(f"pg_config: '{pg_config} --bindir' failed: {exc}")
    versions = sorted(
        (p for p in _DEBIAN_ROOT.glob("*/bin") if p.parent.name.replace(".", "").isdigit()),
        key=lambda p: tuple(int(n) for n in p.parent.name.split(".")),
        reverse=True,
    )
    if major is not None:
        versions = [p for p in versions if p.parent.name == str(major)]
    if not versions:
        wanted = _DEBIAN_ROOT / (str(major) if major is not None else "<major>") / "bin"
        checked.append(f"{_DEBIAN_ROOT}: no {wanted}")
    for directory in versions:
        yield str(_DEBIAN_ROOT), directory


def _inspect(
    source: str, directory: Path, major: int | None, account: _Account | None
) -> PostgresBinaries:
    if not _is_executable(directory / "postgres"):
        raise _Rejected(
            "no executable postgres" + ("" if directory.is_dir() else " (no such directory)")
        )
    real = (directory / "postgres").resolve().parent
    if not _is_executable(real / "initdb"):
        raise _Rejected(f"'postgres' resolves to {real}, which has no executable initdb")
    try:
        out = subprocess.run(
            [str(real / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise _Rejected(f"'postgres --version' failed: {exc}") from None
    match = re.search(r"\(PostgreSQL\) ((\d+)\S*)", out)
    if match is None:
        raise _Rejected(f"cannot read the version in {out.strip()!r}")
    version, found_major = match[1], int(match[2])
    if major is not None and found_major != major:
        raise _Rejected(f"PostgreSQL {version} is not the requested major {major}")
    if found_major < _MIN_MAJOR:
        raise _Rejected(f"PostgreSQL {version} is too old (need {_MIN_MAJOR} or later)")
    if account is not None:
        for name in ("initdb", "postgres"):
            blocked = _first_blocked(real / name, account)
            if blocked is not None:
                raise _Rejected(_blocked_message(real / name, blocked, account))
    return PostgresBinaries(bindir=real, version=version, major=found_major, source=source)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _not_found_message(checked: list[str], major: int | None, account: _Account | None) -> str:
    package = f"postgresql-{major}" if major is not None else "postgresql"
    fixes = [
        "pass bindir= the directory holding initdb and postgres,",
        "put that directory on PATH, or a pg_config that reports it with --bindir,",
        f"install the server (Debian/Ubuntu: apt-get install {package}; "
        "macOS: brew install postgresql; Fedora: dnf install postgresql-server),",
    ]
    if major is not None:
        fixes.append(f"drop major={major} to accept any installed version,")
    if account is not None:
        fixes.append(
            f"keep the binaries where user {account.name!r} can reach them (not under a 0700 "
            "home directory): PostgreSQL refuses root, so it runs as that user,"
        )
    fixes[-1] = fixes[-1].rstrip(",") + "."
    return (
        "Could not find PostgreSQL server binaries (initdb, postgres). Checked:\n"
        + "".join(f"  - {line}\n" for line in checked)
        + "To fix this, either:\n"
        + "".join(f"  - {line}\n" for line in fixes)
    ).rstrip()


@dataclass
class _Resources:
    """What a LocalServer must release; shared with its finalizer, so it never refers back."""

    owner_pid: int
    proc: subprocess.Popen[bytes] | None = None
    owned: list[Path] = field(default_factory=list)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait up to ``timeout`` seconds for ``proc`` to exit; its exit code, or None.

    Popen.wait() polls with sleeps of up to 50 ms; a pidfd wakes us as soon as the child exits.
    """
    code = proc.poll()
    if code is not None or sys.platform != "linux":
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        # The pid cannot be reused yet: it stays a zombie until we reap it.
        fd = os.pidfd_open(proc.pid)
    except OSError:  # Linux < 5.3
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(max(timeout, 0.0) * 1000)
    finally:
        os.close(fd)
    return proc.poll()


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        # SIGINT is PostgreSQL's fast shutdown: SIGTERM (smart) would wait for every client.
        proc.send_signal(signal.SIGINT)
        if _wait(proc, timeout) is None:
            logger.warning(
                "PostgreSQL pid %d still up %.1fs after SIGINT; killing it", proc.pid, timeout
            )
            proc.kill()
            proc.wait()


def _release(resources: _Resources) -> None:
    """Stop the server and remove what we created; log failures instead of raising."""
    if os.getpid() != resources.owner_pid:
        return  # a forked child must not stop its parent's server
    proc, resources.proc = resources.proc, None
    if proc is not None:
        try:
            _terminate(proc, _CLOSE_TIMEOUT)
        except Exception:
            logger.exception("could not stop PostgreSQL pid %d", proc.pid)
    for path in reversed(resources.owned):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not remove %s: %s", path, exc)
    resources.owned.clear()


def _parent_death_hook() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to stop the server (fast shutdown) when we die, even by SIGKILL.

    CPython runs preexec_fn after switching user, which would otherwise clear the setting. Linux
    sends the signal when the *thread* that started the child exits, not the process, so the hook
    is only used from the main thread; elsewhere the finalizer and atexit are the only guard.
    """
    if sys.platform != "linux":
        return None
    if threading.current_thread() is not threading.main_thread():
        logger.debug("not starting PostgreSQL from the main thread: no parent-death signal")
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGINT))
        if os.getppid() != parent:  # we died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, offset: int = 0) -> str:
    try:
        with open(path, "rb") as log:
            start = max(offset, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES)
            log.seek(start)
            text = log.read().decode(errors="replace")
    except OSError as exc:
        return f"(could not read {path}: {exc})"
    if start > offset:
        text = text.partition("\n")[2]
    return text.strip() or "(the log is empty)"


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


class LocalServer:
    """A throwaway PostgreSQL server on 127.0.0.1, trust authentication, superuser ``postgres``.

    Everything lives under ``base_dir`` (a fresh temporary directory by default); ``close()``
    stops the server and removes what this object created. The server is also stopped when the
    object is garbage collected, at interpreter exit, and (Linux) when the starting process dies.
    """

    def __init__(
        self,
        binaries: PostgresBinaries,
        *,
        base_dir: Path | None = None,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.binaries = binaries
        self.host = _HOST
        self.user = _SUPERUSER
        self.settings = _check_settings(settings)
        self._explicit_port = port is not None
        self.port = port if port is not None else _free_port()
        self._account = _server_account()
        if self._account is not None:
            for name in ("initdb", "postgres"):
                blocked = _first_blocked(binaries.path(name), self._account)
                if blocked is not None:
                    message = _blocked_message(binaries.path(name), blocked, self._account)
                    raise ServerStartError(message)
        self._resources = _Resources(owner_pid=os.getpid())
        self._finalizer = weakref.finalize(self, _release, self._resources)
        try:
            self.base_dir = self._make_base_dir(base_dir)
            self.data_dir = self.base_dir / "data"
            self.log_path = self.base_dir / "postgres.log"
            socket_dir = self.base_dir / "socket"
            if len(str(socket_dir)) > _SOCKET_DIR_MAX:
                socket_dir = Path(tempfile.mkdtemp(prefix="pgs-", dir=self._temp_parent()))
                self._resources.owned.append(socket_dir)
            self.socket_dir = socket_dir
            for directory in (self.data_dir, self.socket_dir):
                self._make_server_dir(directory)
            if not self.log_path.exists():
                self.log_path.touch(0o600)
                self._resources.owned.append(self.log_path)
                self._hand_over(self.log_path)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return (
            f"<LocalServer PostgreSQL {self.binaries.version} on {self.host}:{self.port}, {state}>"
        )

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq conninfo string for ``dbname`` on this server."""
        return make_conninfo("", **self.connect_kwargs(dbname))

    def connect_kwargs(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect()`` (or Django's OPTIONS) for ``dbname``."""
        return {"host": self.host, "port": self.port, "user": self.user, "dbname": dbname}

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
        """Create the cluster in ``data_dir`` unless it already holds one."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        if any(self.data_dir.iterdir()):
            raise ServerStartError(f"{self.data_dir} is not empty but holds no PostgreSQL cluster")
        command = [
            str(self.binaries.path("initdb")),
            *("-D", str(self.data_dir), "-U", self.user, "--auth=trust"),
            *("-E", "UTF8", "--locale=C", "-N"),
        ]
        if self.binaries.major >= _NO_INSTRUCTIONS_MAJOR:
            command.append("--no-instructions")
        offset = self.log_path.stat().st_size
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            try:
                result = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.base_dir,
                    env=self._env(),
                    timeout=_COMMAND_TIMEOUT,
                    check=False,
                    **self._account_kwargs(),
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise ServerStartError(
                    f"initdb failed: {exc}\n{_log_tail(self.log_path, offset)}"
                ) from exc
        if result.returncode != 0:
            tail = _log_tail(self.log_path, offset)
            raise ServerStartError(f"initdb exited with code {result.returncode}:\n{tail}")
        logger.debug("initdb of %s took %.2fs", self.data_dir, time.monotonic() - started)

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
            _terminate(proc, timeout)
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
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                env=self._env(),
                start_new_session=True,  # a Ctrl-C in the terminal is for the tests, not the server
                # The hook only calls prctl and getppid: nothing that takes a lock.
                preexec_fn=_parent_death_hook(),  # noqa: PLW1509
                **self._account_kwargs(),
            )
        self._resources.proc = proc
        delay = 0.002
        while not self._answers():
            now = time.monotonic()
            if now >= deadline:
                self.stop()
                tail = _log_tail(self.log_path, offset)
                raise ServerStartError(
                    f"PostgreSQL did not accept connections within {timeout:g}s; "
                    f"the tail of {self.log_path}:\n{tail}"
                )
            code = _wait(proc, min(delay, deadline - now))
            if code is None:
                delay = min(delay * 2, 0.01)
                continue
            self._resources.proc = None
            tail = _log_tail(self.log_path, offset)
            if _PORT_TAKEN in tail:
                return tail
            raise ServerStartError(
                f"PostgreSQL exited with code {code} during startup; "
                f"the tail of {self.log_path}:\n{tail}"
            )
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

    def _env(self) -> dict[str, str]:
        # English messages, so a taken port can be recognised in the log.
        return {**os.environ, "LC_ALL": "C"}

    def _account_kwargs(self) -> dict[str, Any]:
        account = self._account
        if account is None:
            return {}
        return {"user": account.uid, "group": account.gid, "extra_groups": []}

    def _hand_over(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.uid, self._account.gid)

    def _make_server_dir(self, path: Path) -> None:
        """Create a directory the server writes to, owned by the server's account."""
        if path.exists():
            return
        path.mkdir(mode=0o700)
        self._resources.owned.append(path)
        self._hand_over(path)

    def _make_base_dir(self, requested: Path | None) -> Path:
        if requested is not None:
            requested = Path(requested).absolute()
            blocked = self._blocked(requested)
            if blocked is None:
                self._make_dirs(requested)
                return requested
            logger.info(
                "the server account cannot enter %s (mode %o): using a temporary directory "
                "instead of %s",
                blocked,
                blocked.stat().st_mode & 0o7777,
                requested,
            )
        path = Path(tempfile.mkdtemp(prefix="pg-real-pool-", dir=self._temp_parent()))
        self._resources.owned.append(path)
        if self._account is not None:
            path.chmod(0o711)  # ours: the server account only needs to pass through
        return path

    def _make_dirs(self, path: Path) -> None:
        missing = [p for p in [*reversed(path.parents), path] if not p.exists()]
        for directory in missing:
            directory.mkdir()
            if self._account is not None:
                directory.chmod(0o711)  # ours, so opening it up to the server account is fine
        if missing:
            self._resources.owned.append(missing[0])

    def _blocked(self, path: Path) -> Path | None:
        return None if self._account is None else _first_blocked(path, self._account)

    def _temp_parent(self) -> str:
        candidates = dict.fromkeys([tempfile.gettempdir(), "/tmp", "/var/tmp"])
        for candidate in candidates:
            if os.path.isdir(candidate) and self._blocked(Path(candidate)) is None:
                return candidate
        raise ServerStartError(
            f"none of {', '.join(candidates)} can be entered by the server account; "
            "set TMPDIR to a directory it can enter"
        )
