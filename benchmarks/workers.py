"""The orchestrator's side of the worker protocol: start ``worker.py`` under a contender's
interpreter, send it commands, read its answers, and never leave it running."""

from __future__ import annotations

import contextlib
import json
import selectors
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from .placement import pin

__all__ = ["WORKER", "WorkerError", "WorkerProcess", "started"]

WORKER = Path(__file__).with_name("worker.py")
#: A command that takes longer than this is stuck (the longest is one per-query process).
ANSWER_TIMEOUT = 600.0


class WorkerError(RuntimeError):
    """A worker answered with an error, died, or did not answer in time."""


class WorkerProcess:
    """One worker: ``python -I worker.py`` in its own session, so that a Ctrl-C reaches only
    the orchestrator, which then stops it."""

    def __init__(self, python: str, name: str, cpus: tuple[int, ...] = ()) -> None:
        self.name = name
        # A file, not a pipe: warnings written by the code under test never block the worker.
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            [python, "-I", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            start_new_session=True,
        )
        # Before it starts a thread: every thread it starts inherits the cores.
        pin(self.process.pid, cpus)

    def send(self, op: str, **arguments: Any) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(self._died(f"before {op}")) from None

    def receive(self, op: str, timeout: float = ANSWER_TIMEOUT) -> Any:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise WorkerError(f"the {self.name} worker gave no answer to {op} in {timeout} s")
        line = self.process.stdout.readline()
        if not line:
            raise WorkerError(self._died(f"during {op}"))
        message = json.loads(line)
        if not message["ok"]:
            raise WorkerError(f"the {self.name} worker failed {op}:\n{message['error']}")
        return message["result"]

    def ask(self, op: str, **arguments: Any) -> Any:
        self.send(op, **arguments)
        return self.receive(op)

    def _died(self, when: str) -> str:
        code = self.process.wait(10)
        self.stderr.seek(0)
        stderr = self.stderr.read()
        return f"the {self.name} worker exited with {code} {when}:\n{stderr[-4000:]}"

    def ask_to_quit(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(WorkerError):
                self.send("quit")

    def close(self) -> None:
        """Ask it to quit; kill it if it does not within a few seconds."""
        if self.process.poll() is None:
            self.ask_to_quit()
            deadline = time.monotonic() + 5
            while self.process.poll() is None and time.monotonic() < deadline:
                try:
                    self.process.wait(0.1)
                except subprocess.TimeoutExpired:
                    continue
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:  # stdin: a worker that died leaves the last write unflushed
                pass
        self.stderr.close()


@contextmanager
def started(
    specs: Sequence[tuple[str, str, dict[str, Any], dict[str, int]]], cpus: tuple[int, ...] = ()
) -> Iterator[list[tuple[WorkerProcess, dict[str, Any]]]]:
    """Workers for ``(name, python, databases, fill)`` specs, set up concurrently (nothing is
    timed while they start), pinned to ``cpus`` if any; each with its setup answer. All are
    stopped on exit."""
    with ExitStack() as stack:
        workers: list[WorkerProcess] = []
        for name, python, _, _ in specs:
            worker = WorkerProcess(python, name, cpus)
            stack.callback(worker.close)
            workers.append(worker)
        # Runs first on exit: every worker winds down at once, then each is waited for.
        for worker in workers:
            stack.callback(worker.ask_to_quit)
        for worker, (_, _, databases, fill) in zip(workers, specs, strict=True):
            worker.send("setup", databases=databases, fill=fill)
        yield [(worker, worker.receive("setup")) for worker in workers]
