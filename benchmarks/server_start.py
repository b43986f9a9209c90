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
  warm is start_server(ServerConfig(bindir=...)) from a template cache in a temporary
  directory, populated once (the user's own cache is neither read nor touched); the database
  is the plugin's janitor.create_database()/drop_database(), as the pg_database fixture does.
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

Run: python -m benchmarks.server_start [--repeat N]   (needs pytest-postgresql: the bench extra)
``python -m benchmarks`` measures ours alone, or all three with --server-start-compare.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import signal
import statistics
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from django_pg_real_pool.testing.janitor import create_database, drop_database
from django_pg_real_pool.testing.servers import ServerConfig, start_server
from django_pg_real_pool.testing.servers.local import LocalServer, PostgresBinaries, find_binaries

from ._start_common import FAST_SETTINGS, MEASURES, first_connection, names
from ._start_pg_ctl import PlainPgCtl


class RealPool:
    name = "django-pg-real-pool"

    def __init__(self, binaries: PostgresBinaries, work: Path) -> None:
        self.binaries = binaries
        self.request = ServerConfig(
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
        name = f"bench_worker_{next(names)}"
        started = time.perf_counter()
        create_database(self.server, name)
        first_connection(self.server.port, name)
        drop_database(self.server, name)
        return time.perf_counter() - started

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


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


def measure(
    *, repeat: int, compare: bool, binaries: PostgresBinaries | None = None
) -> dict[str, Any]:
    """Every measure ``repeat`` times, interleaved across contenders (ours alone unless
    ``compare``, which needs pytest-postgresql); raw times in seconds."""
    binaries = binaries or find_binaries()
    kinds: list[Any] = [RealPool]
    if compare:
        from ._start_pytest_postgresql import PytestPostgresql

        kinds += [PytestPostgresql, PlainPgCtl]
    work = Path(tempfile.mkdtemp(prefix="bench-server-start-"))
    work.chmod(0o711)  # the server account passes through to its own directories
    contenders: list[Any] = []
    times: dict[str, dict[str, list[float]]] = {}
    try:
        for kind in kinds:
            contenders.append(kind(binaries, work))
        for contender in contenders:
            contender.prepare()
        times = {c.name: {measure: [] for measure in MEASURES} for c in contenders}
        for measure in MEASURES:
            for _ in range(repeat):
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
    return {
        "postgresql": binaries.version,
        "bindir": str(binaries.bindir),
        "repeat": repeat,
        "first_run": contenders[0].first_run,
        "times": times,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measure (median)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    binaries = find_binaries()
    load_before = os.getloadavg()
    found = measure(repeat=args.repeat, compare=True, binaries=binaries)
    report(binaries, args.repeat, found["times"], found["first_run"], load_before)


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
        print(f"{name + ('*' if name == 'pytest-postgresql' else ''):20}{row}")
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
