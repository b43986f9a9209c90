"""Who a test run is: its id, the process that owns it, this process's worker name, and the
one rule that names the run's directory and databases.

The run id is made once by the pytest process (or the xdist controller) and handed to every
worker and to the keeper explicitly; nothing recovers it from a name.
"""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

__all__ = ["Run", "alive", "database_name", "directory", "run_database_pattern"]

#: Keys of ``workerinput``, through which the xdist controller hands the run to its workers.
WORKER_RUN = "pg_real_pool_run"
WORKER_OWNER = "pg_real_pool_owner"
#: Every database of a run starts with ``pgrp_`` and the first characters of the run id.
_PREFIX = "pgrp"
_RUN_CHARS = 8


@functools.cache
def _stash_keys() -> tuple[pytest.StashKey[str], pytest.StashKey[int]]:
    # Made on first use: the keeper imports this module and should not pay for pytest.
    import pytest

    return pytest.StashKey[str](), pytest.StashKey[int]()


@dataclass(frozen=True)
class Run:
    """The test run this pytest process belongs to."""

    #: Shared by the controller, its workers and the keeper.
    id: str
    #: The process whose exit ends the run (the pytest process, the xdist controller).
    owner_pid: int
    #: ``main`` outside xdist, else the worker id (``gw0``...).
    worker: str

    @classmethod
    def of(cls, config: pytest.Config) -> Run:
        """The run of ``config``: handed over by the xdist controller, or made here."""
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and WORKER_RUN in workerinput:
            return cls(
                id=str(workerinput[WORKER_RUN]),
                owner_pid=int(workerinput[WORKER_OWNER]),
                worker=str(workerinput["workerid"]),
            )
        run_key, owner_key = _stash_keys()
        return cls(
            id=config.stash.setdefault(run_key, uuid.uuid4().hex[:12]),
            owner_pid=config.stash.setdefault(owner_key, os.getpid()),
            worker=str(workerinput["workerid"]) if workerinput is not None else "main",
        )

    @staticmethod
    def started(config: pytest.Config) -> str | None:
        """The id of the run this process made, if it made one (None in a worker)."""
        return config.stash.get(_stash_keys()[0], None)

    @property
    def directory(self) -> Path:
        return directory(self.id)

    def database_name(self, test: int | None = None) -> str:
        return database_name(self.id, self.worker, test)


def directory(run_id: str) -> Path:
    """Where the run keeps its server description, lock and keeper log."""
    return Path(tempfile.gettempdir()) / f"django-pg-real-pool-run-{run_id}"


def database_name(run_id: str, worker: str, test: int | None = None) -> str:
    """The worker's database of the run, or the ``test``-th per-test database."""
    name = f"{_PREFIX}_{run_id[:_RUN_CHARS]}_{worker}"
    return name if test is None else f"{name}_t{test}"


def run_database_pattern(run_id: str) -> str:
    """A ``LIKE`` pattern matching every database ``database_name`` gives for the run."""
    return f"{_PREFIX}\\_{run_id[:_RUN_CHARS]}\\_%"


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
