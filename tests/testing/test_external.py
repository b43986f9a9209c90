"""An external server given by a DSN (played here by a throwaway local server)."""

from __future__ import annotations

import socket
import time

import psycopg
import pytest

from django_pg_real_pool.testing.servers.errors import ServerNotControllable, ServerUnreachable
from django_pg_real_pool.testing.servers.external import ExternalServer
from django_pg_real_pool.testing.servers.local import LocalServer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_uri_is_parsed_and_checked(server: LocalServer) -> None:
    external = ExternalServer(f"postgresql://postgres@127.0.0.1:{server.port}/template1")

    external.start()

    assert (external.host, external.port, external.user) == ("127.0.0.1", server.port, "postgres")
    assert external.password is None
    assert external.major == server.binaries.major
    assert external.source == "external"
    assert external.controllable is False


def test_connect_kwargs_and_dsn_name_the_database_and_keep_other_parameters(
    server: LocalServer,
) -> None:
    external = ExternalServer(
        f"host=127.0.0.1 port={server.port} user=postgres application_name=pgrp-test"
    )

    kwargs = external.connect_kwargs("template1")

    assert kwargs["dbname"] == "template1"
    assert kwargs["application_name"] == "pgrp-test"
    with psycopg.connect(external.dsn("template1")) as conn:
        assert conn.execute(
            "SELECT current_database(), current_setting('application_name')"
        ).fetchone() == ("template1", "pgrp-test")


def test_the_version_is_read_on_first_use(server: LocalServer) -> None:
    external = ExternalServer(f"postgresql://postgres@127.0.0.1:{server.port}")

    assert external.major == server.binaries.major


def test_libpq_defaults_from_the_environment_are_resolved(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(server.port))
    monkeypatch.setenv("PGUSER", "postgres")
    external = ExternalServer("dbname=postgres")

    external.start()

    assert (external.host, external.port, external.user) == ("127.0.0.1", server.port, "postgres")
    kwargs = external.connect_kwargs()
    assert (kwargs["host"], kwargs["port"], kwargs["user"]) == (
        "127.0.0.1",
        server.port,
        "postgres",
    )


def test_a_password_is_kept_for_connecting_but_never_shown(server: LocalServer) -> None:
    external = ExternalServer(f"postgresql://postgres:s3cr%40t@127.0.0.1:{server.port}/postgres")

    external.start()  # trust authentication: the password is not checked

    assert external.password == "s3cr@t"
    assert external.connect_kwargs()["password"] == "s3cr@t"
    assert "s3cr" not in repr(external)


def test_it_cannot_be_stopped_and_close_leaves_it_running(server: LocalServer) -> None:
    external = ExternalServer(server.dsn())
    external.start()

    with pytest.raises(ServerNotControllable, match="cannot stop the external server"):
        external.stop()
    with pytest.raises(ServerNotControllable, match="cannot restart"):
        external.restart()
    external.close()

    with psycopg.connect(server.dsn()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_server_that_does_not_answer_is_named_without_its_password() -> None:
    port = closed_port()
    external = ExternalServer(f"postgresql://app:hunter2@127.0.0.1:{port}/appdb")

    started = time.monotonic()
    with pytest.raises(ServerUnreachable) as excinfo:
        external.start()
    elapsed = time.monotonic() - started

    message = str(excinfo.value)
    assert message.startswith(
        f"the PostgreSQL server at 'user=app dbname=appdb host=127.0.0.1 port={port}' "
        "does not answer: "
    )
    assert "Connection refused" in message
    assert "hunter2" not in message
    assert elapsed < 5


def test_an_invalid_dsn_is_a_programming_error() -> None:
    with pytest.raises(psycopg.ProgrammingError, match="invalid PostgreSQL DSN"):
        ExternalServer("host=localhost port")
