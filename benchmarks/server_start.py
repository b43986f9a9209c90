"""What a test run pays for its PostgreSQL server, against pytest-postgresql and plain pg_ctl.

With the same PostgreSQL binaries for every contender, in interleaved rounds, the median of
--repeat runs of:

- cold start: a server from scratch, no cache: initdb, start, until a first connection
  (psycopg, SELECT 1) succeeds;
- warm start: a server from a data directory prepared beforehand (not timed), until a first
  connection succeeds;
- per-worker database: CREATE DATABASE on a running server, a first connection to it, and
  DROP: what each xdist worker pays once per session.

Each run stops its server and removes its directories before the next (not timed). Every
server runs with fsync, synchronous_commit and full_page_writes off, max_connections=300,
shared_buffers=32MB (the server layer's defaults, checked), as user postgres when we are root.

Contenders:
- django-pg-real-pool's server layer: cold is LocalServer(binaries) with no template cache;
  warm is start_server(ServerRequest(bindir=...)) from a template cache in a temporary
  directory, populated once (the user's own cache is neither read nor touched); the database
  is the plugin's create_database()/drop_database(), as the pg_database fixture does.
- pytest-postgresql's PostgreSQLExecutor (pg_ctl initdb, then pg_ctl start -w polled by
  mirakuru every 0.1 s), driven as its postgresql_proc fixture does, the settings passed
  through its postgres_options. PostgreSQL refuses root and the executor has no option to
  run as another user; the venv's interpreter lives under root's 0700 home, so
  `runuser -u postgres -- python` cannot start it either. So a child forked from this process
  drops to user postgres (setgid/setuid) and runs the executor's code unchanged, sending its
  times back through a pipe. It has no cache of a data directory: its "warm" start is what
  every later session pays, its whole postgresql_proc setup (initdb again, start, and its
  template database). Its initdb also syncs the data directory to disk (no -N), which the
  other two skip. Its database is a DatabaseJanitor cloning that template, as its postgresql
  fixture does for each test. Its start returns once the port accepts TCP connections, while
  its `pg_ctl start -w` may still be waiting: a cold run stopping the server right away makes
  that pg_ctl print "could not start server" on stderr, which is harmless.
- plain initdb -N + pg_ctl start -w, as user postgres: warm is cp -a of a data directory
  initdb'd beforehand, then pg_ctl start -w (which checks readiness every 0.1 s); the database
  is createdb and dropdb.

Run: python benchmarks/server_start.py [--repeat N]   (needs pytest-postgresql installed)
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import pwd
import select
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from django_pg_real_pool.testing.fixtures import create_database, drop_database
from django_pg_real_pool.testing.servers.local import LocalServer, PostgresBinaries, find_binaries
from django_pg_real_pool.testing.servers.resolve import ServerRequest, start_server

HOST = "127.0.0.1"
USER = "postgres"
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
}
SERVER_OPTIONS = " ".join(f"-c {key}={value}" for key, value in FAST_SETTINGS.items())
INITDB_OPTIONS = ("-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C", "-N", "--no-instructions")
MEASURES = ("cold", "warm", "database")
_names = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def first_connection(port: int, dbname: str = "postgres") -> None:
    with psycopg.connect(host=HOST, port=port, user=USER, dbname=dbname, autocommit=True) as conn:
        conn.execute("SELECT 1")


def server_account() -> pwd.struct_passwd | None:
    """The account the servers run as: postgres when we are root (PostgreSQL refuses root)."""
    return pwd.getpwnam(USER) if os.geteuid() == 0 else None


def owned_dir(path: Path, account: pwd.struct_passwd | None) -> Path:
    path.mkdir(mode=0o700)
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)
    return path


class RealPool:
    name = "django-pg-real-pool"

    def __init__(self, binaries: PostgresBinaries, work: Path) -> None:
        self.binaries = binaries
        self.request = ServerRequest(
            bindir=str(binaries.bindir), cache_dir=work / "cache", docker=False
        )
        self.server: Any = None
        self.first_run = 0.0

    def prepare(self) -> None:
        """Populate the template cache; the time of this first run is reported, not compared."""
        started = time.perf_counter()
        server = start_server(self.request)
        try:
            first_connection(server.port)
            self.first_run = time.perf_counter() - started
            if not isinstance(server, LocalServer) or server.settings != FAST_SETTINGS:
                raise SystemExit(
                    f"start_server() gave {server!r} with {getattr(server, 'settings', None)}, "
                    f"not a LocalServer with {FAST_SETTINGS}: update FAST_SETTINGS"
                )
        finally:
            server.close()

    def cold(self) -> float:
        started = time.perf_counter()
        server = LocalServer(self.binaries, settings=FAST_SETTINGS)
        try:
            server.start()
            first_connection(server.port)
            return time.perf_counter() - started
        finally:
            server.close()

    def warm(self) -> float:
        started = time.perf_counter()
        server = start_server(self.request)
        try:
            first_connection(server.port)
            return time.perf_counter() - started
        finally:
            server.close()

    def database(self) -> float:
        if self.server is None:
            self.server = start_server(self.request)
        name = f"bench_worker_{next(_names)}"
        started = time.perf_counter()
        create_database(self.server, name)
        first_connection(self.server.port, name)
        drop_database(self.server, name)
        return time.perf_counter() - started

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


class PlainPgCtl:
    name = "initdb + pg_ctl"

    def __init__(self, binaries: PostgresBinaries, work: Path) -> None:
        self.bindir = binaries.bindir
        self.account = server_account()
        self.work = owned_dir(work / "plain", self.account)
        self.running: tuple[Path, int] | None = None

    def _run(self, program: str, *arguments: str | Path, cwd: Path) -> None:
        """Run ``program`` (from the bindir unless a path) as the server account."""
        user = {}
        if self.account is not None:
            user = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        command = [str(self.bindir / program), *map(str, arguments)]
        result = subprocess.run(
            command,
            cwd=cwd,
            env={**os.environ, "LC_ALL": "C"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **user,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )

    def _new_dir(self) -> Path:
        return owned_dir(self.work / f"s{next(_names)}", self.account)

    def _start(self, run_dir: Path) -> int:
        port = free_port()
        options = f"-c listen_addresses={HOST} -p {port} -k {run_dir} {SERVER_OPTIONS}"
        data, log = run_dir / "data", run_dir / "log"
        self._run("pg_ctl", "start", "-w", "-D", data, "-l", log, "-o", options, cwd=run_dir)
        first_connection(port)
        return port

    def _stop(self, run_dir: Path) -> None:
        try:
            if (run_dir / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", run_dir / "data", cwd=run_dir)
        finally:
            shutil.rmtree(run_dir)

    def prepare(self) -> None:
        self.template = self._new_dir()
        self._run("initdb", "-D", self.template / "data", *INITDB_OPTIONS, cwd=self.template)

    def cold(self) -> float:
        started = time.perf_counter()
        run_dir = self._new_dir()
        try:
            self._run("initdb", "-D", run_dir / "data", *INITDB_OPTIONS, cwd=run_dir)
            self._start(run_dir)
            return time.perf_counter() - started
        finally:
            self._stop(run_dir)

    def _warm_server(self) -> tuple[Path, int]:
        run_dir = self._new_dir()
        try:
            self._run("/bin/cp", "-a", self.template / "data", run_dir / "data", cwd=run_dir)
            return run_dir, self._start(run_dir)
        except BaseException:
            self._stop(run_dir)
            raise

    def warm(self) -> float:
        started = time.perf_counter()
        run_dir, _ = self._warm_server()
        elapsed = time.perf_counter() - started
        self._stop(run_dir)
        return elapsed

    def database(self) -> float:
        if self.running is None:
            self.running = self._warm_server()
        run_dir, port = self.running
        name = f"bench_worker_{next(_names)}"
        where = ("-h", HOST, "-p", str(port), "-U", USER)
        started = time.perf_counter()
        self._run("createdb", *where, name, cwd=run_dir)
        first_connection(port, name)
        self._run("dropdb", *where, name, cwd=run_dir)
        return time.perf_counter() - started

    def close(self) -> None:
        if self.running is not None:
            self._stop(self.running[0])


class PytestPostgresql:
    """Its executor, run in a child forked from us that becomes user postgres."""

    name = "pytest-postgresql"

    def __init__(self, binaries: PostgresBinaries, work: Path) -> None:
        self.pg_ctl = str(binaries.bindir / "pg_ctl")
        self.account = server_account()
        self.work = owned_dir(work / "pytest-postgresql", self.account)
        self.pipe: Connection | None = None
        self.child: Any = None

    def prepare(self) -> None:
        # Forked only now: the modules psycopg loads lazily on a first connection are loaded,
        # as user postgres the child could not read them under root's home.
        context = multiprocessing.get_context("fork")
        self.pipe, theirs = context.Pipe()
        self.child = context.Process(
            target=_serve, args=(theirs, self.pg_ctl, self.work, self.account), daemon=True
        )
        self.child.start()
        theirs.close()

    def _ask(self, measure: str) -> float:
        assert self.pipe is not None
        self.pipe.send(measure)
        if not self.pipe.poll(300):
            raise RuntimeError(f"pytest-postgresql's {measure} gave no answer in 300 s")
        try:
            status, value = self.pipe.recv()
        except EOFError:
            code = self.child.exitcode if self.child is not None else None
            message = f"pytest-postgresql's child died during {measure} (exit code {code})"
            raise RuntimeError(message) from None
        if status != "ok":
            raise RuntimeError(f"pytest-postgresql's {measure} failed in the child:\n{value}")
        return float(value)

    def cold(self) -> float:
        return self._ask("cold")

    def warm(self) -> float:
        return self._ask("warm")

    def database(self) -> float:
        return self._ask("database")

    def close(self) -> None:
        if self.child is None:
            return
        try:
            assert self.pipe is not None
            self.pipe.send("quit")
        except OSError:
            pass
        self.child.join(60)
        if self.child.is_alive():
            print(f"pytest-postgresql's child {self.child.pid} did not quit; killing it")
            self.child.kill()
            self.child.join()


def _serve(pipe: Connection, pg_ctl: str, work: Path, account: pwd.struct_passwd | None) -> None:
    if account is not None:
        os.setgroups([])
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)
    runner = _ExecutorRuns(pg_ctl, work)
    try:
        while (measure := pipe.recv()) != "quit":
            try:
                pipe.send(("ok", getattr(runner, measure)()))
            except Exception:
                pipe.send(("error", traceback.format_exc()))
    finally:
        runner.close()


class _ExecutorRuns:
    """In the child: pytest-postgresql's executor and janitor, as its fixtures use them."""

    def __init__(self, pg_ctl: str, work: Path) -> None:
        self.pg_ctl, self.work = pg_ctl, work
        self.running: PostgreSQLExecutor | None = None

    def _session(self, *, template: bool) -> tuple[PostgreSQLExecutor, float]:
        started = time.perf_counter()
        run_dir = self.work / f"s{next(_names)}"
        run_dir.mkdir()
        executor = PostgreSQLExecutor(
            executable=self.pg_ctl,
            host=HOST,
            port=free_port(),
            datadir=str(run_dir / "data"),
            unixsocketdir=str(run_dir),
            logfile=str(run_dir / "postgresql.log"),
            startparams="-w",
            dbname="bench",
            postgres_options=SERVER_OPTIONS,
        )
        try:
            executor.start()
            executor.wait_for_postgres()
            if template:
                self._janitor(executor, executor.template_dbname, as_template=True).init()
            first_connection(executor.port)
        except BaseException:
            self._stop(executor)
            raise
        return executor, time.perf_counter() - started

    @staticmethod
    def _janitor(executor: PostgreSQLExecutor, dbname: str, **kwargs: Any) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=executor.user,
            host=executor.host,
            port=executor.port,
            dbname=dbname,
            maintenance_dbname=executor.maintenance_dbname,
            password=executor.password,
            **kwargs,
        )

    @staticmethod
    def _stop(executor: PostgreSQLExecutor) -> None:
        try:
            executor.stop()
        finally:
            executor.clean_directory()
            shutil.rmtree(Path(executor.datadir).parent)

    def cold(self) -> float:
        executor, elapsed = self._session(template=False)
        self._stop(executor)
        return elapsed

    def warm(self) -> float:
        executor, elapsed = self._session(template=True)
        self._stop(executor)
        return elapsed

    def database(self) -> float:
        if self.running is None:
            self.running, _ = self._session(template=True)
        executor = self.running
        name = f"bench_worker_{next(_names)}"
        janitor = self._janitor(executor, name, template_dbname=executor.template_dbname)
        started = time.perf_counter()
        janitor.init()
        first_connection(executor.port, name)
        janitor.drop()
        return time.perf_counter() - started

    def close(self) -> None:
        if self.running is not None:
            self._stop(self.running)


def stop_leftover_servers(work: Path) -> None:
    """Stop any postmaster still running from ``work`` (after an error), without sleeping."""
    for pid_file in work.rglob("postmaster.pid"):
        try:
            pid = int(pid_file.read_text().split()[0])
            handle = os.pidfd_open(pid)
        except (OSError, ValueError, IndexError):
            continue
        print(f"stopping the leftover server {pid} of {pid_file.parent}")
        try:
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown
            if not select.select([handle], [], [], 10)[0]:
                os.kill(pid, signal.SIGKILL)
        finally:
            os.close(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measure (median)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    binaries = find_binaries()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-server-start-"))
    work.chmod(0o711)  # the server account passes through to its own directories
    contenders: list[Any] = []
    times: dict[str, dict[str, list[float]]] = {}
    try:
        for kind in (RealPool, PytestPostgresql, PlainPgCtl):
            contenders.append(kind(binaries, work))
        for contender in contenders:
            contender.prepare()
        times = {c.name: {measure: [] for measure in MEASURES} for c in contenders}
        for measure in MEASURES:
            for _ in range(args.repeat):
                for contender in contenders:
                    times[contender.name][measure].append(getattr(contender, measure)())
    finally:
        for contender in reversed(contenders):
            try:
                contender.close()
            except Exception:
                traceback.print_exc()
        stop_leftover_servers(work)
        shutil.rmtree(work, ignore_errors=True)
        if work.exists():
            print(f"could not remove {work}")
    report(binaries, args.repeat, times, contenders[0].first_run, load_before)


def report(
    binaries: PostgresBinaries,
    repeat: int,
    times: dict[str, dict[str, list[float]]],
    first_run: float,
    load_before: tuple[float, float, float],
) -> None:
    median = {name: {m: statistics.median(t) for m, t in ts.items()} for name, ts in times.items()}
    ours = median[RealPool.name]
    load_after = os.getloadavg()
    print(
        f"PostgreSQL {binaries.version} ({binaries.bindir}), median of {repeat} runs; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after, "
        f"{os.cpu_count()} CPUs\n"
    )
    scale: dict[str, tuple[str, float, str]] = {
        "cold": ("cold s", 1, ".2f"),
        "warm": ("warm s", 1, ".2f"),
        "database": ("db ms", 1000, ".1f"),
    }
    header = "".join(f" {label:>8} {'x ours':>7}" for label, _, _ in scale.values())
    print(f"{'contender':20}{header}")
    for name, values in median.items():
        row = "".join(
            f" {values[m] * factor:8{spec}} {values[m] / ours[m]:6.2f}x"
            for m, (_, factor, spec) in scale.items()
        )
        print(f"{name + ('*' if name == PytestPostgresql.name else ''):20}{row}")
    print(f"\n{'min-max':20}" + "".join(f" {label:>16}" for label, _, _ in scale.values()))
    for name, measures in times.items():
        spread = "".join(
            f" {f'{min(measures[m]) * factor:{spec}}-{max(measures[m]) * factor:{spec}}':>16}"
            for m, (_, factor, spec) in scale.items()
        )
        print(f"{name:20}{spread}")
    print(
        f"\nFirst start_server() with an empty cache (initdb, storing the template, start): "
        f"{first_run:.2f} s, one run.\n"
        "* pytest-postgresql has no cache of a data directory: its warm column is its whole "
        "session setup\n  (initdb again, start, template database), what every session pays; "
        "its initdb also syncs\n  to disk. Its db column clones its template database."
    )


if __name__ == "__main__":
    main()
