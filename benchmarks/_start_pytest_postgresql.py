"""The pytest-postgresql contender: its executor and janitor, run in a child forked from us
that becomes user postgres (PostgreSQL refuses root, and the executor cannot run as another
user)."""

from __future__ import annotations

import multiprocessing
import os
import pwd
import shutil
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from django_pg_real_pool.testing.servers.binaries import PostgresBinaries

from ._start_common import (
    HOST,
    SERVER_OPTIONS,
    first_connection,
    free_port,
    names,
    owned_dir,
    server_account,
)


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
        run_dir = self.work / f"s{next(names)}"
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
        name = f"bench_worker_{next(names)}"
        janitor = self._janitor(executor, name, template_dbname=executor.template_dbname)
        started = time.perf_counter()
        janitor.init()
        first_connection(executor.port, name)
        janitor.drop()
        return time.perf_counter() - started

    def close(self) -> None:
        if self.running is not None:
            self._stop(self.running)
