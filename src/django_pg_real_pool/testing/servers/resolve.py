"""Where the tests' PostgreSQL server comes from, in one order of precedence.

1. An external server, when a DSN is given (and then nothing else).
2. A throwaway server from binaries: the given ``bindir`` only, else the system's (PATH,
   pg_config, /usr/lib/postgresql) then those shipped by wheels, of ``major`` if given; its
   data directory comes from the template cache.
3. A testcontainers container ``postgres:<major>``, when a Docker engine answers the probe.
4. NoServerAvailable, listing each attempt, why it failed and how to fix it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .attached import AttachedServer
from .binaries import PostgresBinaries, find_binaries
from .cache import default_cache_dir
from .config import ServerConfig
from .container import DEFAULT_MAJOR, ContainerServer, probe_docker, testcontainers_installed
from .errors import ServerNotFound, ServerStartError, ServerUnreachable
from .external import ExternalServer
from .local import LocalServer
from .wheel import find_wheel_binaries, wheel_install_hint

__all__ = [
    "Attempt",
    "NoServerAvailable",
    "RunningServer",
    "ServerConfig",
    "attach",
    "default_cache_dir",
    "describe",
    "start_server",
    "throwaway_server",
]

logger = logging.getLogger("django_pg_real_pool")

_CONNECTION_KEYS = frozenset({"host", "port", "user", "password", "dbname"})


class RunningServer(Protocol):
    """What every source of servers provides (LocalServer, ExternalServer, ContainerServer,
    AttachedServer)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def password(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def major(self) -> int: ...
    @property
    def controllable(self) -> bool: ...
    def connect_kwargs(self, dbname: str = "postgres") -> dict[str, Any]: ...
    def dsn(self, dbname: str = "postgres") -> str: ...
    def stop(self) -> None: ...
    def start(self) -> None: ...
    def restart(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Attempt:
    """One way of getting a server that did not work."""

    what: str
    problem: str
    fix: str
    details: tuple[str, ...] = ()


class NoServerAvailable(RuntimeError):
    """No way of getting a server worked; ``attempts`` says what was tried, in order."""

    def __init__(self, attempts: Sequence[Attempt]) -> None:
        self.attempts = tuple(attempts)
        lines = ["No PostgreSQL server for the tests. Tried, in order:"]
        for number, attempt in enumerate(self.attempts, 1):
            problem = attempt.problem.replace("\n", "\n     ")
            lines.append(f"  {number}. {attempt.what}: {problem}")
            lines += [f"       - {detail}" for detail in attempt.details]
            lines.append(f"     fix: {attempt.fix}")
        super().__init__("\n".join(lines))


def start_server(request: ServerConfig | None = None) -> RunningServer:
    """A started server, from the first source in the module docstring's order that works.

    The stable entry for scripts outside pytest; ``close()`` it when done (or use
    ``throwaway_server()``).
    """
    request = request or ServerConfig()
    if request.dsn is not None:
        return _external(request.dsn)
    attempts = [Attempt("an external server", "no DSN given", "give the DSN of a running server")]
    cache = request.cache_dir if request.cache_dir is not None else default_cache_dir()
    for binaries in _binaries(request, cache, attempts):
        server = None
        try:
            server = LocalServer(binaries, template_cache=cache / "templates")
            server.start()
        except (ServerStartError, OSError) as exc:
            if server is not None:
                server.close()
            attempts.append(
                Attempt(
                    f"a server from {binaries.bindir} ({binaries.source})",
                    str(exc),
                    "see the error above; or use other binaries",
                )
            )
            continue
        return server
    if request.docker:
        container = _container(request.major, attempts)
        if container is not None:
            return container
    else:
        attempts.append(
            Attempt("a Docker container", "not allowed", "allow the container fallback")
        )
    raise NoServerAvailable(attempts)


@contextlib.contextmanager
def throwaway_server(
    major: int | None = None, *, cache_dir: Path | None = None
) -> Iterator[RunningServer]:
    """A server from binaries (local, else a wheel's) of ``major`` if given, closed on exit.

    For scripts outside pytest (benchmarks, Django's own test suite)::

        with throwaway_server(major=16) as server:
            psycopg.connect(**server.connect_kwargs())
    """
    server = start_server(ServerConfig(major=major, cache_dir=cache_dir, docker=False))
    try:
        yield server
    finally:
        server.close()


def _external(dsn: str) -> RunningServer:
    server = ExternalServer(dsn)
    try:
        server.start()
    except ServerUnreachable as exc:
        fix = "start that server, or correct the DSN (host, port, user, password, sslmode)"
        raise NoServerAvailable([Attempt("the external server", str(exc), fix)]) from None
    return server


def _binaries(
    request: ServerConfig, cache: Path, attempts: list[Attempt]
) -> Iterator[PostgresBinaries]:
    major, wanted = request.major, "" if request.major is None else f" {request.major}"
    finders: list[tuple[str, str, Callable[[], PostgresBinaries]]]
    if request.bindir is not None:
        finders = [
            (
                f"PostgreSQL{wanted} binaries in {request.bindir}",
                "pass a directory holding initdb and postgres"
                + (f" of PostgreSQL {major}" if major is not None else ""),
                lambda: find_binaries(bindir=request.bindir, major=major),
            )
        ]
    else:
        package = f"postgresql-{major}" if major is not None else "postgresql"
        finders = [
            (
                f"PostgreSQL{wanted} binaries on this system",
                f"install the server (Debian/Ubuntu: apt-get install {package}; macOS: brew "
                "install postgresql) or pass its bin directory",
                lambda: find_binaries(major=major),
            ),
            (
                f"PostgreSQL{wanted} binaries from a wheel",
                wheel_install_hint(major),
                lambda: find_wheel_binaries(major=major, cache_dir=cache),
            ),
        ]
    for what, fix, find in finders:
        try:
            yield find()
        except ServerNotFound as exc:
            attempts.append(Attempt(what, "not found", fix, exc.checked))
        except (ServerStartError, OSError) as exc:
            attempts.append(Attempt(what, str(exc), fix))


def _container(major: int | None, attempts: list[Attempt]) -> RunningServer | None:
    image = f"postgres:{major or DEFAULT_MAJOR}"
    what = f"a Docker container ({image})"
    probe = probe_docker()
    installed = testcontainers_installed()
    if not probe or not installed:
        problems, fixes = [], []
        if not probe:
            problems.append(f"no Docker engine answered at {probe.host} ({probe.origin}): ")
            problems[-1] += probe.reason
            fixes.append("start a Docker engine or point DOCKER_HOST at one")
        if not installed:
            problems.append("testcontainers is not installed")
            fixes.append("pip install testcontainers")
        attempts.append(Attempt(what, "; ".join(problems), ", and ".join(fixes)))
        return None
    server = ContainerServer(major=major)
    try:
        server.start()
    except Exception as exc:
        attempts.append(Attempt(what, f"{type(exc).__name__}: {exc}", "see the error"))
        return None
    return server


def describe(server: RunningServer) -> dict[str, Any]:
    """A JSON-serialisable description from which ``attach()`` makes a view in another process.

    It holds the password, if any: keep it where only the test run can read it.
    """
    info: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "source": server.source,
        "major": server.major,
        "params": {
            key: value
            for key, value in server.connect_kwargs().items()
            if key not in _CONNECTION_KEYS
        },
    }
    if isinstance(server, LocalServer):
        info |= {"pid": server.pid, "data_dir": str(server.data_dir)}
    return info


def attach(info: Mapping[str, Any]) -> RunningServer:
    """A non-controllable view of the server ``describe()`` described; other keys are ignored."""
    return AttachedServer(
        host=str(info["host"]),
        port=int(info["port"]),
        user=str(info["user"]),
        password=info.get("password"),
        source=str(info["source"]),
        major=int(info["major"]),
        params=dict(info.get("params") or {}),
        pid=info.get("pid"),
        data_dir=info.get("data_dir"),
    )
