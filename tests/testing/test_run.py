"""Run identity, the naming rule the keeper drops by, the one configuration and the entry
for scripts outside pytest."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from django_pg_real_pool.testing.run import database_name, directory, run_database_pattern
from django_pg_real_pool.testing.servers import ServerConfig, throwaway_server
from django_pg_real_pool.testing.servers.local import LocalServer


def test_configuration_crosses_to_the_keeper_unchanged() -> None:
    for config in (
        ServerConfig(),
        ServerConfig(dsn="host=db port=5433", docker=False),
        ServerConfig(bindir="/usr/lib/postgresql/16/bin", major=16, cache_dir=Path("/tmp/c")),
    ):
        assert ServerConfig.from_json(config.to_json()) == config


def test_the_run_directory_is_named_by_the_run_id_alone() -> None:
    assert directory("0123456789ab").name == "django-pg-real-pool-run-0123456789ab"


def test_the_drop_pattern_matches_every_database_of_the_run_and_no_other(
    server: LocalServer,
) -> None:
    run_id, other_run = "0123456789ab", "01234567ffff"
    ours = [database_name(run_id, "main"), database_name(run_id, "gw1", test=3)]
    theirs = [database_name("abcdef012345", "main"), "pgrp_0123456_main", "shop"]
    assert database_name(other_run, "gw0").startswith("pgrp_01234567_")  # 8 characters only
    with psycopg.connect(**server.connect_kwargs(), autocommit=True) as conn:
        for name, expected in [(name, True) for name in ours] + [(n, False) for n in theirs]:
            row = conn.execute("SELECT %s LIKE %s", [name, run_database_pattern(run_id)])
            assert row.fetchone() == (expected,), name


def test_throwaway_server_for_scripts_is_stopped_after_its_block(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    tmp_path.chmod(0o755)  # the server account reaches the cache when we are root
    with throwaway_server(cache_dir=cache) as server:
        kwargs = server.connect_kwargs()
        with psycopg.connect(**kwargs) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(**kwargs, connect_timeout=2)
