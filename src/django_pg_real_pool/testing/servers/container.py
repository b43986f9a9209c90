"""A PostgreSQL server in a Docker container (testcontainers), after a probe that never hangs.

The probe speaks HTTP to the Docker engine over a raw socket (``GET /_ping``) within a deadline,
before anything imports the Docker SDK, whose client waits 60 s on a socket that accepts and
never answers. It looks where testcontainers will: ``tc.host`` in ~/.testcontainers.properties,
``DOCKER_HOST``, the current Docker context, then /var/run/docker.sock.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from ._dsn import HasDsn
from .errors import ServerNotControllable, ServerStartError

__all__ = [
    "DEFAULT_MAJOR",
    "ContainerServer",
    "DockerProbe",
    "docker_host",
    "probe_docker",
    "testcontainers_installed",
]

logger = logging.getLogger("django_pg_real_pool")

DEFAULT_MAJOR = 17
_DEFAULT_HOST = "unix:///var/run/docker.sock"
_PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
_CONTAINER_PORT = 5432
_READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class DockerProbe:
    """Whether a Docker engine answered at ``host`` (found via ``origin``), and why not."""

    available: bool
    host: str
    origin: str
    reason: str

    def __bool__(self) -> bool:
        return self.available


def docker_host() -> tuple[str, str]:
    """The Docker host testcontainers will use, and where that came from."""
    properties = Path.home() / ".testcontainers.properties"
    with contextlib.suppress(OSError):
        for line in properties.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "tc.host" and value.strip():
                return value.strip(), f"tc.host in {properties}"
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"], "DOCKER_HOST"
    context = _context_host()
    if context is not None:
        return context
    return _DEFAULT_HOST, "the default socket"


def _context_host() -> tuple[str, str] | None:
    config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    name = os.environ.get("DOCKER_CONTEXT")
    if not name:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            name = json.loads((config_dir / "config.json").read_text()).get("currentContext")
    if not name or name == "default":
        return None
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        host = json.loads((meta / "meta.json").read_text())["Endpoints"]["docker"]["Host"]
        if host:
            return str(host), f"the Docker context {name!r}"
    return None


def probe_docker(*, timeout: float = 0.5) -> DockerProbe:
    """Ask the Docker engine ``GET /_ping``; never takes much more than ``timeout`` seconds."""
    host, origin = docker_host()
    deadline = time.monotonic() + timeout
    target = _target(host)
    if isinstance(target, str):
        return DockerProbe(False, host, origin, target)
    family, address, tls = target
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            _connect(sock, address, deadline)
            if tls:  # a TLS handshake needs the client certificates: accepting will do
                return DockerProbe(True, host, origin, "it accepts connections (TLS, not pinged)")
            status = _ping(sock, deadline)
    except TimeoutError:
        return DockerProbe(False, host, origin, f"no answer within {timeout:g}s")
    except OSError as exc:
        return DockerProbe(False, host, origin, exc.strerror or str(exc))
    if status.startswith(b"HTTP/1.") and status.split(b" ")[1:2] == [b"200"]:
        return DockerProbe(True, host, origin, "it answered /_ping")
    return DockerProbe(False, host, origin, f"it answered {status[:60]!r} to /_ping")


def _target(host: str) -> tuple[socket.AddressFamily, Any, bool] | str:
    """(family, address, uses TLS) to reach the Docker ``host``, or why it cannot be probed."""
    url = urlsplit(host)
    if url.scheme == "unix":
        path = url.path or url.netloc
        if not os.path.exists(path):
            return f"there is no socket {path}"
        return socket.AF_UNIX, path, False
    if url.scheme in ("tcp", "http", "https"):
        if url.hostname is None:
            return "it names no host"
        tls = url.scheme == "https" or bool(os.environ.get("DOCKER_TLS_VERIFY"))
        family = socket.AF_INET6 if ":" in url.hostname else socket.AF_INET
        return family, (url.hostname, url.port or (2376 if tls else 2375)), tls
    return f"a {url.scheme or host}:// Docker host cannot be probed quickly"


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _connect(sock: socket.socket, address: Any, deadline: float) -> None:
    sock.settimeout(_remaining(deadline))
    sock.connect(address)


def _ping(sock: socket.socket, deadline: float) -> bytes:
    """The status line of the answer to GET /_ping."""
    sock.settimeout(_remaining(deadline))
    sock.sendall(_PING)
    received = b""
    while b"\r\n" not in received:
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(1024)
        if not chunk:
            break
        received += chunk
    return received.partition(b"\r\n")[0]


def testcontainers_installed() -> bool:
    """Whether ``testcontainers`` can be imported (it is an optional dependency)."""
    return importlib.util.find_spec("testcontainers") is not None


def _postgres_container_class() -> Any:
    try:  # testcontainers >= 4.15 deprecates testcontainers.postgres for this one
        module = importlib.import_module("testcontainers.community.postgres")
    except ModuleNotFoundError:
        module = importlib.import_module("testcontainers.postgres")
    return module.PostgresContainer


class ContainerServer(HasDsn):
    """PostgreSQL in a container of the image ``postgres:<major>``, removed by ``close()``.

    Not controllable: ``stop()`` and ``restart()`` raise ServerNotControllable (a restarted
    container may come back on another host port).
    """

    controllable = False
    user = "postgres"

    def __init__(self, *, major: int | None = None) -> None:
        self.image = f"postgres:{major or DEFAULT_MAJOR}"
        self.source = f"container:{self.image}"
        self.password: str | None = secrets.token_urlsafe(12)
        self.host = "127.0.0.1"
        self.port = 0
        self._major = major
        self._container: Any = None

    def __repr__(self) -> str:
        return f"<ContainerServer {self.image} on {self.host}:{self.port}>"

    @property
    def major(self) -> int:
        """The server's major version (known once started)."""
        if self._major is None:
            raise ServerStartError(f"the {self.image} container is not started")
        return self._major

    def connect_kwargs(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect()`` for ``dbname`` on this server."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": dbname,
        }

    def start(self) -> None:
        """Run the container (pulling the image if needed); return once PostgreSQL answers."""
        if self._container is not None:
            return
        container = _postgres_container_class()(
            self.image, username=self.user, password=self.password, dbname="postgres", driver=None
        )
        self._container = container
        try:
            container.start()
            self.host = str(container.get_container_host_ip())
            self.port = int(container.get_exposed_port(_CONTAINER_PORT))
            self._major = self._wait_ready()
        except BaseException:
            self.close()
            raise
        logger.info(
            "PostgreSQL %d ready in a container on %s:%d", self._major, self.host, self.port
        )

    def _wait_ready(self) -> int:
        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            try:
                with psycopg.connect(**self.connect_kwargs(), connect_timeout=2) as conn:
                    row = conn.execute("SHOW server_version_num").fetchone()
                    assert row is not None
                    return int(row[0]) // 10000
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"PostgreSQL in the {self.image} container did not answer on "
                        f"{self.host}:{self.port} within {_READY_TIMEOUT:g}s: {exc}"
                    ) from None
                time.sleep(0.1)  # polling the container's port to a deadline

    def stop(self) -> None:
        """Not supported for containers."""
        raise ServerNotControllable(f"cannot stop the {self.image} container from the tests")

    def restart(self) -> None:
        """Not supported for containers."""
        raise ServerNotControllable(f"cannot restart the {self.image} container from the tests")

    def close(self) -> None:
        """Stop and remove the container; failures are logged."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.stop()
            except Exception:
                logger.exception("could not remove the %s container", self.image)
