"""The Docker probe: a quick, never hanging answer to "does a Docker engine answer here?"."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from django_pg_real_pool.testing.servers.container import (
    DEFAULT_MAJOR,
    ContainerServer,
    DockerProbe,
    docker_host,
    probe_docker,
)
from django_pg_real_pool.testing.servers.errors import ServerNotControllable, ServerStartError

DEADLINE = 10.0


@pytest.fixture(autouse=True)
def clean_docker_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ~/.testcontainers.properties, Docker config or DOCKER_* variables but the test's."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory for unix sockets (their paths are limited to ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="pgrp-d-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
def fake_engine(socket_dir: Path) -> Iterator[Callable[[bytes | None], Path]]:
    """``fake_engine(answer)``: a unix socket that accepts and sends ``answer`` (None: nothing,
    ever) to each client; its path."""
    servers: list[socket.socket] = []
    stop = threading.Event()

    def serve(server: socket.socket, answer: bytes | None) -> None:
        held = []
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                break
            held.append(client)
            if answer is not None:
                client.recv(1024)
                client.sendall(answer)
        for client in held:
            client.close()

    def make(answer: bytes | None) -> Path:
        path = socket_dir / f"docker{len(servers)}.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen()
        servers.append(server)
        threading.Thread(target=serve, args=(server, answer), daemon=True).start()
        return path

    yield make
    stop.set()
    for server in servers:
        server.shutdown(socket.SHUT_RDWR)
        server.close()


def timed_probe() -> tuple[DockerProbe, float]:
    started = time.monotonic()
    probe = probe_docker()
    return probe, time.monotonic() - started


@pytest.mark.timing
def test_an_absent_socket_is_no_engine_at_once(
    socket_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_dir}/absent.sock")

    probe, elapsed = timed_probe()

    assert not probe
    assert probe.reason == f"there is no socket {socket_dir}/absent.sock"
    assert elapsed < 0.5, f"took {elapsed:.3f}s"


@pytest.mark.timing
def test_a_socket_that_accepts_but_never_answers_is_no_engine_within_a_second(
    fake_engine: Callable[[bytes | None], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{fake_engine(None)}")

    probe, elapsed = timed_probe()

    assert not probe
    assert probe.reason == "no answer within 0.5s"
    assert elapsed < 1.0, f"took {elapsed:.3f}s"


def test_an_engine_answering_ping_is_available(
    fake_engine: Callable[[bytes | None], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fake_engine(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")

    probe = probe_docker()

    assert probe
    assert (probe.host, probe.origin, probe.reason) == (
        f"unix://{path}",
        "DOCKER_HOST",
        "it answered /_ping",
    )


def test_an_engine_answering_an_error_is_not_available(
    fake_engine: Callable[[bytes | None], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fake_engine(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")

    probe = probe_docker()

    assert not probe
    assert "500 Internal Server Error" in probe.reason


def test_a_tcp_host_that_refuses_is_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port}")

    probe = probe_docker()

    assert not probe
    assert probe.reason == "Connection refused"


def test_an_ssh_host_is_not_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@example.invalid")

    probe = probe_docker()

    assert not probe
    assert probe.reason == "a ssh:// Docker host cannot be probed quickly"


def test_without_configuration_the_default_socket_is_probed() -> None:
    assert docker_host() == ("unix:///var/run/docker.sock", "the default socket")
    assert probe_docker().host == "unix:///var/run/docker.sock"


def test_the_current_docker_context_is_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "home" / ".docker"
    meta = config / "contexts" / "meta" / hashlib.sha256(b"colima").hexdigest()
    meta.mkdir(parents=True)
    (config / "config.json").write_text(json.dumps({"currentContext": "colima"}))
    endpoint = {"Endpoints": {"docker": {"Host": "unix:///run/colima.sock"}}}
    (meta / "meta.json").write_text(json.dumps({"Name": "colima", **endpoint}))

    assert docker_host() == ("unix:///run/colima.sock", "the Docker context 'colima'")
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/explicit.sock")
    assert docker_host() == ("unix:///run/explicit.sock", "DOCKER_HOST")


def test_tc_host_in_testcontainers_properties_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".testcontainers.properties").write_text("ryuk.disabled=true\ntc.host=tcp://h:1\n")
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/explicit.sock")

    assert docker_host() == ("tcp://h:1", f"tc.host in {home / '.testcontainers.properties'}")


def test_a_container_server_names_its_image_and_is_not_controllable() -> None:
    server = ContainerServer(major=16)

    assert server.image == "postgres:16"
    assert server.source == "container:postgres:16"
    assert server.controllable is False
    assert ContainerServer().image == f"postgres:{DEFAULT_MAJOR}"
    with pytest.raises(ServerNotControllable):
        server.restart()
    server.close()  # never started: nothing to do


def test_the_major_of_a_container_never_started_is_an_error() -> None:
    with pytest.raises(ServerStartError, match="is not started"):
        _ = ContainerServer().major
