"""Waiting for, stopping and tying the lifetime of a server process to ours."""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger("django_pg_real_pool")

_LOG_TAIL_BYTES = 4000
_PR_SET_PDEATHSIG = 1


def wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait up to ``timeout`` seconds for ``proc`` to exit; its exit code, or None.

    Popen.wait() polls with sleeps of up to 50 ms; a pidfd wakes us as soon as the child exits.
    """
    code = proc.poll()
    if code is not None or sys.platform != "linux":
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        # The pid cannot be reused yet: it stays a zombie until we reap it.
        fd = os.pidfd_open(proc.pid)
    except OSError:  # Linux < 5.3
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(max(timeout, 0.0) * 1000)
    finally:
        os.close(fd)
    return proc.poll()


def terminate(
    proc: subprocess.Popen[bytes],
    timeout: float,
    *,
    program: str = "PostgreSQL",
    how: signal.Signals = signal.SIGINT,
) -> None:
    """Stop ``proc`` with ``how``, killing it after ``timeout`` seconds.

    SIGINT is PostgreSQL's fast shutdown (SIGTERM, smart, would wait for every client);
    PgBouncer's immediate shutdown is SIGTERM (its SIGINT waits for every client).
    """
    if proc.poll() is None:
        proc.send_signal(how)
        if wait(proc, timeout) is None:
            logger.warning(
                "%s pid %d still up %.1fs after %s; killing it",
                program,
                proc.pid,
                timeout,
                how.name,
            )
            proc.kill()
            proc.wait()


#: What a server's log says when another process took the port between choosing and binding it.
PORT_TAKEN = "Address already in use"


def startup_exit(
    program: str, code: int, log_path: Path, offset: int, error: type[Exception]
) -> str:
    """A server process exited while starting: its log tail if the port was taken (the caller
    retries on another port), else ``error`` naming the exit code and the tail."""
    tail = log_tail(log_path, offset)
    if PORT_TAKEN in tail:
        return tail
    raise error(
        f"{program} exited with code {code} during startup; the tail of {log_path}:\n{tail}"
    )


def parent_death_hook() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to stop the server (fast shutdown) when we die, even by SIGKILL.

    CPython runs preexec_fn after switching user, which would otherwise clear the setting. Linux
    sends the signal when the *thread* that started the child exits, not the process, so the hook
    is only used from the main thread; elsewhere the finalizer and atexit are the only guard.
    """
    if sys.platform != "linux":
        return None
    if threading.current_thread() is not threading.main_thread():
        logger.debug("not starting PostgreSQL from the main thread: no parent-death signal")
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGINT))
        if os.getppid() != parent:  # we died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def log_tail(path: Path, offset: int = 0) -> str:
    """The end of the log at ``path``, from ``offset`` at most, starting on a whole line."""
    try:
        with open(path, "rb") as log:
            start = max(offset, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES)
            log.seek(start)
            text = log.read().decode(errors="replace")
    except OSError as exc:
        return f"(could not read {path}: {exc})"
    if start > offset:
        text = text.partition("\n")[2]
    return text.strip() or "(the log is empty)"
