"""One server per test run, shared by the pytest process and all its xdist workers.

The first process that needs it takes a lock in the run directory and starts a keeper
process (see ``keeper.py``); every process then attaches to the server the keeper describes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import keeper, run
from .servers.cache import locked
from .servers.config import ServerConfig
from .servers.resolve import RunningServer, attach

START_TIMEOUT = 120.0

logger = logging.getLogger("django_pg_real_pool")


def acquire(config: ServerConfig, this_run: run.Run) -> RunningServer:
    """The run's server, started by a keeper on first use; a non-controllable view of it."""
    run_dir = this_run.directory
    run_dir.mkdir(mode=0o700, exist_ok=True)
    described = run_dir / keeper.SERVER_FILE
    with locked(run_dir / "lock"):
        if not described.exists():
            _start_keeper(config, this_run)
    return attach(json.loads(described.read_text()))


def _start_keeper(config: ServerConfig, this_run: run.Run) -> None:
    run_dir = this_run.directory
    command = [sys.executable, "-m", "django_pg_real_pool.testing.keeper"]
    command += [this_run.id, str(this_run.owner_pid), config.to_json()]
    with (run_dir / "keeper.log").open("ab") as log:
        launcher = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C reaches pytest, which then stops the keeper
            check=False,
            timeout=60,
        )
    if launcher.returncode != 0:
        raise RuntimeError(f"could not start the server keeper:\n{_tail(run_dir / 'keeper.log')}")
    deadline = time.monotonic() + START_TIMEOUT
    described, failed = run_dir / keeper.SERVER_FILE, run_dir / keeper.ERROR_FILE
    while not described.exists():
        keeper_pid = _keeper_pid(run_dir)
        if failed.exists() or (keeper_pid is not None and not run.alive(keeper_pid)):
            reason = failed.read_text() if failed.exists() else _tail(run_dir / "keeper.log")
            raise RuntimeError(f"no PostgreSQL server for the tests:\n{reason}")
        if time.monotonic() > deadline:
            release(this_run.id)
            raise RuntimeError(
                f"the PostgreSQL server did not start within {START_TIMEOUT:.0f} s; its log: "
                f"{run_dir / 'keeper.log'}"
            )
        time.sleep(0.02)  # polling the keeper's progress file to a deadline


def _keeper_pid(run_dir: Path) -> int | None:
    """The keeper's pid, or None while it has not written it yet (or after it failed to)."""
    try:
        return int((run_dir / keeper.PID_FILE).read_text())
    except (OSError, ValueError):
        return None


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-4000:]
    except OSError:
        return "(no log)"


def release(run_id: str, *, timeout: float = 15.0) -> None:
    """Ask the run's keeper to stop the server and wait until the run directory is gone."""
    run_dir = run.directory(run_id)
    if not run_dir.exists():
        return
    keeper_pid = _keeper_pid(run_dir)
    if keeper_pid is not None and run.alive(keeper_pid):
        with contextlib.suppress(OSError):
            (run_dir / keeper.STOP_FILE).touch()
        with contextlib.suppress(ProcessLookupError):
            os.kill(keeper_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while run_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the keeper's cleanup to a deadline
        if run_dir.exists():
            logger.warning("the server keeper %s did not stop within %.0f s", keeper_pid, timeout)
    # No keeper (the start failed), or one that did not finish: clean up here.
    shutil.rmtree(run_dir, ignore_errors=True)
