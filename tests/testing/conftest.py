"""Fixtures the server-layer tests share."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_pg_real_pool.testing.servers.local import (
    LocalServer,
    PostgresBinaries,
    ServerNotFound,
    find_binaries,
)


@pytest.fixture(scope="module")
def binaries() -> PostgresBinaries:
    try:
        return find_binaries()
    except ServerNotFound as exc:
        pytest.skip(f"no PostgreSQL server binaries here: {exc}")


@pytest.fixture(scope="module")
def server(binaries: PostgresBinaries) -> Iterator[LocalServer]:
    """One running server for a module's tests (test_local_server.py has its own per test)."""
    srv = LocalServer(binaries)
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="module")
def cache_dir() -> Iterator[Path]:
    """A cache the server account can reach (pytest's tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="pgrp-test-cache-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)
