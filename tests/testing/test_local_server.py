"""Throwaway servers started from the local PostgreSQL binaries (needs initdb and postgres)."""

from __future__ import annotations

import gc
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from django_pg_real_pool.testing.servers import cache as cache_module
from django_pg_real_pool.testing.servers import local
from django_pg_real_pool.testing.servers.cache import default_cache_dir
from django_pg_real_pool.testing.servers.local import (
    LocalServer,
    PostgresBinaries,
    ServerNotFound,
    ServerStartError,
    find_binaries,
)

DEADLINE = 10.0
IS_ROOT = os.geteuid() == 0


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still false after {timeout}s")
        time.sleep(0.005)  # poll interval, not synchronisation: the deadline decides


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # An orphan handed to an init that does not reap stays a zombie: it has exited all the same.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def taken_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.fixture
def server(binaries: PostgresBinaries) -> Iterator[LocalServer]:
    srv = LocalServer(binaries)
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


def test_find_binaries_reports_the_version_of_postgres(binaries: PostgresBinaries) -> None:
    out = subprocess.run(
        [binaries.path("postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"(PostgreSQL) {binaries.version}" in out
    assert binaries.version.startswith(f"{binaries.major}")
    assert os.access(binaries.path("initdb"), os.X_OK)


def test_find_binaries_resolves_path_symlinks_to_the_real_bindir(
    binaries: PostgresBinaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = tmp_path / "bin"
    links.mkdir()
    for name in ("initdb", "postgres"):
        (links / name).symlink_to(binaries.path(name))
    monkeypatch.setenv("PATH", str(links))

    found = find_binaries()

    assert (found.source, found.bindir) == ("PATH", binaries.bindir)


def test_find_binaries_uses_an_explicit_bindir(binaries: PostgresBinaries) -> None:
    found = find_binaries(bindir=str(binaries.bindir), major=binaries.major)

    assert found == PostgresBinaries(binaries.bindir, binaries.version, binaries.major, "argument")


def test_find_binaries_falls_back_to_the_debian_layout(
    binaries: PostgresBinaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not Path("/usr/lib/postgresql", str(binaries.major), "bin", "postgres").exists():
        pytest.skip("no Debian-style /usr/lib/postgresql/<major>/bin here")
    monkeypatch.setenv("PATH", str(tmp_path))  # hides postgres and pg_config

    found = find_binaries(major=binaries.major)

    assert found.source == "/usr/lib/postgresql"
    assert found.bindir == Path("/usr/lib/postgresql", str(binaries.major), "bin")


def test_find_binaries_with_a_bogus_bindir_names_it(tmp_path: Path) -> None:
    bogus = tmp_path / "no-such-bin"

    with pytest.raises(ServerNotFound) as excinfo:
        find_binaries(bindir=bogus)

    message = str(excinfo.value)
    assert message.startswith("Could not find PostgreSQL server binaries (initdb, postgres).")
    assert f"argument {bogus}: no executable postgres" in message
    assert "To fix this, either:" in message
    assert "PATH" not in message.partition("To fix")[0]  # an explicit bindir is the only candidate


def test_find_binaries_with_a_missing_major_names_it(binaries: PostgresBinaries) -> None:
    with pytest.raises(ServerNotFound) as excinfo:
        find_binaries(major=99)

    message = str(excinfo.value)
    assert f"PostgreSQL {binaries.version} is not the requested major 99" in message
    assert "no /usr/lib/postgresql/99/bin" in message
    assert "drop major=99" in message


@pytest.mark.skipif(not IS_ROOT, reason="only root runs the server as another user")
def test_binaries_in_a_private_directory_are_rejected_for_root(
    binaries: PostgresBinaries, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    bindir = home / "bin"
    bindir.mkdir()
    for name in ("initdb", "postgres"):
        shutil.copy2(binaries.path(name), bindir / name)

    with pytest.raises(ServerNotFound, match="cannot be reached by user"):
        find_binaries(bindir=bindir)
    private = PostgresBinaries(bindir, binaries.version, binaries.major, "argument")
    with pytest.raises(ServerStartError, match=r"has mode 700"):
        LocalServer(private)


def test_server_accepts_the_postgres_superuser_with_fsync_off(server: LocalServer) -> None:
    with psycopg.connect(**server.connect_kwargs()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
        assert conn.execute("SHOW max_connections").fetchone() == ("300",)
    assert server.user == "postgres"
    assert server.host == "127.0.0.1"


def test_dsn_names_the_database(server: LocalServer) -> None:
    assert server.dsn("template1") == (
        f"host=127.0.0.1 port={server.port} user=postgres dbname=template1"
    )
    with psycopg.connect(server.dsn("template1")) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("template1",)


@pytest.mark.skipif(not IS_ROOT, reason="only root hands the files to another user")
def test_server_files_belong_to_the_server_account(server: LocalServer) -> None:
    uids = []
    for name in ("postgres", "nobody"):
        try:
            uids.append(pwd.getpwnam(name).pw_uid)
        except KeyError:
            continue
    for path in (server.data_dir, server.socket_dir, server.log_path):
        assert path.stat().st_uid == uids[0]


def test_user_settings_reach_the_server(binaries: PostgresBinaries) -> None:
    with (
        LocalServer(binaries, settings={"work_mem": "7MB"}) as srv,
        psycopg.connect(srv.dsn()) as conn,
    ):
        assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)


def test_settings_managed_by_the_server_are_rejected(binaries: PostgresBinaries) -> None:
    with pytest.raises(ValueError, match="'port' is managed by LocalServer"):
        LocalServer(binaries, settings={"port": "5432"})


def test_stop_refuses_connections_and_ends_the_process(server: LocalServer) -> None:
    pid = server.pid
    assert pid is not None

    server.stop()

    assert not server.is_running
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.dsn(), connect_timeout=2)
    server.stop()  # idempotent


def test_restart_keeps_the_data(server: LocalServer) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    old_pid = server.pid

    server.restart()

    assert server.is_running
    assert server.pid != old_pid
    with psycopg.connect(server.dsn()) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]


def test_close_removes_the_base_dir_and_leaves_no_process(binaries: PostgresBinaries) -> None:
    srv = LocalServer(binaries)
    srv.start()
    pid = srv.pid
    assert pid is not None
    pids = [pid, *child_pids(pid)]
    assert len(pids) > 1  # checkpointer, walwriter, ...

    srv.close()

    assert not srv.base_dir.exists()
    wait_until(lambda: all(process_gone(each) for each in pids), f"processes {pids} gone")
    srv.close()  # idempotent
    with pytest.raises(ServerStartError, match="is closed"):
        srv.start()


def test_two_servers_side_by_side_get_different_ports(binaries: PostgresBinaries) -> None:
    with LocalServer(binaries) as first, LocalServer(binaries) as second:
        assert first.port != second.port
        assert first.base_dir != second.base_dir
        for srv in (first, second):
            with psycopg.connect(srv.dsn()) as conn:
                assert conn.execute("SHOW port").fetchone() == (str(srv.port),)


def test_base_dir_under_a_private_directory_still_works(
    binaries: PostgresBinaries, tmp_path: Path
) -> None:
    requested = tmp_path / "pg"
    tmp_mode = tmp_path.stat().st_mode

    with LocalServer(binaries, base_dir=requested) as srv:
        with psycopg.connect(srv.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        if IS_ROOT:  # pytest's tmp dirs are 0700 root: the server account cannot enter them
            assert tmp_path not in srv.base_dir.parents
        else:
            assert srv.base_dir == requested
        base_dir = srv.base_dir

    assert not base_dir.exists()
    assert tmp_path.stat().st_mode == tmp_mode  # never loosened


def test_base_dir_created_by_the_server_is_removed_but_not_its_parent(
    binaries: PostgresBinaries,
) -> None:
    parent = Path(tempfile.mkdtemp(prefix="pg-real-pool-test-"))
    try:
        parent.chmod(0o755)
        requested = parent / "a" / "b"
        with LocalServer(binaries, base_dir=requested) as srv:
            assert srv.base_dir == requested
            assert srv.data_dir == requested / "data"
        assert not (parent / "a").exists()
        assert parent.exists()
    finally:
        shutil.rmtree(parent)


def test_start_failure_reports_the_log_tail(binaries: PostgresBinaries) -> None:
    srv = LocalServer(binaries, settings={"shared_buffers": "lots"})
    try:
        with pytest.raises(ServerStartError, match="exited with code 1") as excinfo:
            srv.start()
        assert 'invalid value for parameter "shared_buffers": "lots"' in str(excinfo.value)
        assert srv.pid is None
    finally:
        srv.close()


def test_a_taken_port_is_retried_on_a_new_one(
    binaries: PostgresBinaries, monkeypatch: pytest.MonkeyPatch
) -> None:
    with taken_port() as blocker:
        port = blocker.getsockname()[1]
        ports = iter([port])
        real_free_port = local._free_port
        monkeypatch.setattr(local, "_free_port", lambda: next(ports, None) or real_free_port())

        with LocalServer(binaries) as srv:
            assert srv.port not in (port, None)
            with psycopg.connect(srv.dsn()) as conn:
                assert conn.execute("SHOW port").fetchone() == (str(srv.port),)


def test_an_explicit_taken_port_is_an_error(binaries: PostgresBinaries) -> None:
    with taken_port() as blocker:
        port = blocker.getsockname()[1]
        srv = LocalServer(binaries, port=port)
        try:
            with pytest.raises(ServerStartError, match=f"port {port} on 127.0.0.1 is in use"):
                srv.start()
        finally:
            srv.close()


def test_a_forgotten_server_is_stopped_when_collected(binaries: PostgresBinaries) -> None:
    srv = LocalServer(binaries)
    srv.start()
    pid, base_dir = srv.pid, srv.base_dir
    assert pid is not None

    del srv
    gc.collect()

    wait_until(lambda: process_gone(pid), f"postmaster {pid} gone")
    assert not base_dir.exists()


def test_a_server_started_from_a_thread_outlives_the_thread(binaries: PostgresBinaries) -> None:
    srv = LocalServer(binaries)
    try:
        thread = threading.Thread(target=srv.start)
        thread.start()
        thread.join(DEADLINE)
        assert not thread.is_alive()

        with psycopg.connect(srv.dsn()) as conn:  # no parent-death signal when the thread ended
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert srv.is_running
    finally:
        srv.close()


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux only")
def test_a_sigkilled_owner_does_not_orphan_the_server(binaries: PostgresBinaries) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from django_pg_real_pool.testing.servers.local import LocalServer, PostgresBinaries\n"
        f"srv = LocalServer(PostgresBinaries(Path({str(binaries.bindir)!r}), "
        f"{binaries.version!r}, {binaries.major}, 'argument'))\n"
        "srv.start()\n"
        "print(srv.pid, srv.base_dir, flush=True)\n"
        "sys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    owner = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    base_dir = None
    try:
        assert owner.stdout is not None
        pid_text, _, base_text = owner.stdout.readline().strip().partition(" ")
        pid, base_dir = int(pid_text), Path(base_text)
        assert not process_gone(pid)

        owner.send_signal(signal.SIGKILL)
        owner.wait(DEADLINE)

        wait_until(lambda: process_gone(pid), f"postmaster {pid} gone after its owner died")
    finally:
        owner.kill()
        owner.wait(DEADLINE)
        for stream in (owner.stdin, owner.stdout):
            if stream is not None:
                stream.close()
        if base_dir is not None:
            shutil.rmtree(base_dir, ignore_errors=True)  # the killed owner could not


# The template cache: initdb once, copy the data directory afterwards.

INITDB_OUTPUT = "The files belonging to this database system"


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if not p.name.startswith("."))


def started_log(binaries: PostgresBinaries, cache: Path) -> str:
    """Start a server on the template cache, check it works; its log."""
    with LocalServer(binaries, template_cache=cache) as srv, psycopg.connect(srv.dsn()) as conn:
        assert conn.execute("SELECT current_setting('data_directory')").fetchone() == (
            str(srv.data_dir),
        )
        return srv.log_path.read_text()


def test_a_template_cache_runs_initdb_once(binaries: PostgresBinaries, tmp_path: Path) -> None:
    cache = tmp_path / "templates"

    first, second = started_log(binaries, cache), started_log(binaries, cache)

    assert INITDB_OUTPUT in first
    assert INITDB_OUTPUT not in second
    [entry] = entries(cache)
    assert entry.name.startswith(f"pg{binaries.version}-")
    assert (entry / "data" / "PG_VERSION").read_text().strip() == str(binaries.major)


def test_a_template_does_not_depend_on_the_server_settings(
    binaries: PostgresBinaries, tmp_path: Path
) -> None:
    cache = tmp_path / "templates"
    started_log(binaries, cache)

    with (
        LocalServer(binaries, template_cache=cache, settings={"work_mem": "7MB"}) as srv,
        psycopg.connect(srv.dsn()) as conn,
    ):
        assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)
        assert INITDB_OUTPUT not in srv.log_path.read_text()
    assert len(entries(cache)) == 1


@pytest.mark.skipif(not IS_ROOT, reason="only root hands the files to another user")
def test_a_copied_data_directory_belongs_to_the_server_account(
    binaries: PostgresBinaries, tmp_path: Path
) -> None:
    cache = tmp_path / "templates"  # 0700 root: only we read it, the server gets a copy
    started_log(binaries, cache)

    with LocalServer(binaries, template_cache=cache) as srv:
        owner = srv.data_dir.stat().st_uid
        assert owner != 0
        assert {p.stat().st_uid for p in srv.data_dir.rglob("*")} == {owner}
        assert srv.data_dir.stat().st_mode & 0o777 == 0o700


def test_concurrent_servers_build_the_template_once(
    binaries: PostgresBinaries, tmp_path: Path
) -> None:
    cache = tmp_path / "templates"
    barrier = threading.Barrier(3)
    logs: list[str] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait(DEADLINE)
            logs.append(started_log(binaries, cache))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors
    assert len(logs) == 3
    assert sum(INITDB_OUTPUT in log for log in logs) == 1
    assert len(entries(cache)) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]


def test_a_damaged_template_is_rebuilt(binaries: PostgresBinaries, tmp_path: Path) -> None:
    cache = tmp_path / "templates"
    started_log(binaries, cache)
    [entry] = entries(cache)
    (entry / "data" / "PG_VERSION").unlink()  # as a temp cleaner would
    leftover = cache / f".tmp-{entry.name}-deadbuilder"
    leftover.mkdir()

    log = started_log(binaries, cache)

    assert INITDB_OUTPUT in log
    assert entries(cache) == [entry]
    assert (entry / "data" / "PG_VERSION").exists()
    assert not leftover.exists()
    assert INITDB_OUTPUT not in started_log(binaries, cache)


def test_a_template_cache_others_can_write_to_is_refused(
    binaries: PostgresBinaries, tmp_path: Path
) -> None:
    cache = tmp_path / "templates"
    cache.mkdir()
    cache.chmod(0o777)
    srv = LocalServer(binaries, template_cache=cache)
    try:
        with pytest.raises(ServerStartError, match=r"refusing to use .* mode 777"):
            srv.start()
    finally:
        srv.close()


def test_without_gnu_cp_the_template_is_copied_with_owners_and_modes(
    binaries: PostgresBinaries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "templates"
    started_log(binaries, cache)
    monkeypatch.setattr(cache_module.shutil, "which", lambda name: None)

    with LocalServer(binaries, template_cache=cache) as srv, psycopg.connect(srv.dsn()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert INITDB_OUTPUT not in srv.log_path.read_text()
        [entry] = entries(cache)
        for copied in [srv.data_dir, *srv.data_dir.rglob("*")]:
            if copied.name.startswith("postmaster.") or "pg_stat" in copied.parts:
                continue  # written by the running server
            original = entry / "data" / copied.relative_to(srv.data_dir)
            if original.exists():
                mine, theirs = copied.lstat(), original.lstat()
                assert (mine.st_uid, mine.st_mode) == (theirs.st_uid, theirs.st_mode), copied


@pytest.mark.timing
def test_a_cached_template_is_quicker_than_initdb(
    binaries: PostgresBinaries, tmp_path: Path
) -> None:
    cache = tmp_path / "templates"
    times = []
    for _ in range(3):
        srv = LocalServer(binaries, template_cache=cache)
        try:
            started = time.monotonic()
            srv.initdb()
            times.append(time.monotonic() - started)
        finally:
            srv.close()

    cold, warm = times[0], min(times[1:])
    assert warm < cold, f"initdb (building the template) {cold:.2f}s, copies {times[1:]}"
    assert warm < 3.0, f"copying the template took {warm:.2f}s"


def test_the_default_cache_follows_xdg_cache_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Path(tempfile.mkdtemp(prefix="pgrp-xdg-"))
    try:
        home.chmod(0o755)
        monkeypatch.setenv("XDG_CACHE_HOME", str(home))
        assert default_cache_dir() == home / "django-pg-real-pool"

        monkeypatch.delenv("XDG_CACHE_HOME")
        monkeypatch.setenv("HOME", str(home))
        assert default_cache_dir() == home / ".cache" / "django-pg-real-pool"
    finally:
        shutil.rmtree(home)


@pytest.mark.skipif(not IS_ROOT, reason="only root needs a cache another account can reach")
def test_the_default_cache_avoids_a_private_home_for_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # under a 0700 directory

    chosen = default_cache_dir()

    assert chosen.name == "django-pg-real-pool-uid0"
    assert chosen.parent in (Path("/var/tmp"), Path(tempfile.gettempdir()))
