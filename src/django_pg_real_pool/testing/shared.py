"""One server per test run, shared by the pytest process and all its xdist workers.

The first process that needs it takes a lock in the run directory and starts a keeper
process (see ``keeper.py``); every process then attaches to the server the keeper describes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import keeper
from .config import PluginConfig

START_TIMEOUT = 120.0

logger = logging.getLogger("django_pg_real_pool")


def run_directory(run_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"django-pg-real-pool-run-{run_id}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def acquire(settings: PluginConfig, *, run_id: str, owner_pid: int) -> Any:
    """The run's server, started by a keeper on first use; a non-controllable view of it."""
    from .servers.resolve import attach

    run_dir = run_directory(run_id)
    run_dir.mkdir(mode=0o700, exist_ok=True)
    described = run_dir / keeper.SERVER_FILE
    with _locked(run_dir / "lock"):
        if not described.exists():
            _start_keeper(settings, run_dir, owner_pid)
    return attach(json.loads(described.read_text()))


def _start_keeper(settings: PluginConfig, run_dir: Path, owner_pid: int) -> None:
    request = {field.name: getattr(settings, field.name) for field in dataclasses.fields(settings)}
    request = {
        "dsn": request["dsn"],
        "bindir": request["bindir"],
        "major": request["major"],
        "docker": request["docker"],
        "cache_dir": str(request["cache_dir"]) if request["cache_dir"] else None,
    }
    with (run_dir / "keeper.log").open("ab") as log:
        launcher = subprocess.run(
            [
                sys.executable,
                "-m",
                "django_pg_real_pool.testing.keeper",
                str(run_dir),
                str(owner_pid),
                json.dumps(request),
            ],
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
        if failed.exists() or not _keeper_alive(run_dir):
            reason = failed.read_text() if failed.exists() else _tail(run_dir / "keeper.log")
            raise RuntimeError(f"no PostgreSQL server for the tests:\n{reason}")
        if time.monotonic() > deadline:
            release(run_dir.name.rsplit("-", 1)[-1])
            raise RuntimeError(
                f"the PostgreSQL server did not start within {START_TIMEOUT:.0f} s; its log: "
                f"{run_dir / 'keeper.log'}"
            )
        time.sleep(0.02)  # polling the keeper's progress file to a deadline


def _keeper_alive(run_dir: Path) -> bool:
    try:
        pid = int((run_dir / keeper.PID_FILE).read_text())
    except (OSError, ValueError):
        return True  # not written yet: the keeper is starting
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-4000:]
    except OSError:
        return "(no log)"


def release(run_id: str, *, timeout: float = 15.0) -> None:
    """Ask the run's keeper to stop the server and wait until the run directory is gone."""
    run_dir = run_directory(run_id)
    if not run_dir.exists():
        return
    keeper_pid = None
    with contextlib.suppress(OSError, ValueError):
        keeper_pid = int((run_dir / keeper.PID_FILE).read_text())
    if keeper_pid is not None and keeper._alive(keeper_pid):
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
