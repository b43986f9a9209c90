"""The plain contender: initdb -N + pg_ctl start -w, as user postgres."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from django_pg_real_pool.testing.servers.binaries import PostgresBinaries

from ._start_common import (
    HOST,
    INITDB_OPTIONS,
    SERVER_OPTIONS,
    USER,
    first_connection,
    free_port,
    names,
    owned_dir,
    server_account,
)


class PlainPgCtl:
    name = "initdb + pg_ctl"

    def __init__(self, binaries: PostgresBinaries, work: Path) -> None:
        self.bindir = binaries.bindir
        self.account = server_account()
        self.work = owned_dir(work / "plain", self.account)
        self.running: tuple[Path, int] | None = None

    def _run(self, program: str, *arguments: str | Path, cwd: Path) -> None:
        """Run ``program`` (from the bindir unless a path) as the server account."""
        user: dict[str, Any] = {}
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
        return owned_dir(self.work / f"s{next(names)}", self.account)

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
        name = f"bench_worker_{next(names)}"
        where = ("-h", HOST, "-p", str(port), "-U", USER)
        started = time.perf_counter()
        self._run("createdb", *where, name, cwd=run_dir)
        first_connection(port, name)
        self._run("dropdb", *where, name, cwd=run_dir)
        return time.perf_counter() - started

    def close(self) -> None:
        if self.running is not None:
            self._stop(self.running[0])
