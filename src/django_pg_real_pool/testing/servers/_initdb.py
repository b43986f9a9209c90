"""Making a LocalServer's data directory: ``initdb``, or a copy of a cached template.

The server's programs run as the server account (when we are root), with their output
appended to the server's log; ``child_kwargs`` says how, for ``initdb`` and ``postgres`` alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ._account import Account
from ._process import log_tail
from .binaries import PostgresBinaries
from .cache import copy_tree, ensure_entry
from .errors import ServerStartError

logger = logging.getLogger("django_pg_real_pool")

_NO_INSTRUCTIONS_MAJOR = 14  # initdb --no-instructions appeared in PostgreSQL 14
_COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True)
class Cluster:
    """Where a server's cluster lives and who runs its programs."""

    binaries: PostgresBinaries
    data_dir: Path
    base_dir: Path
    log_path: Path
    user: str
    account: Account | None

    def child_kwargs(self, log: IO[bytes]) -> dict[str, Any]:
        """``subprocess`` arguments for one of the server's programs, logging to ``log``."""
        kwargs: dict[str, Any] = {
            "stdin": subprocess.DEVNULL,
            "stdout": log,
            "stderr": subprocess.STDOUT,
            "cwd": self.base_dir,
            "env": self.binaries.environment(),
        }
        if self.account is not None:
            kwargs |= {"user": self.account.uid, "group": self.account.gid, "extra_groups": []}
        return kwargs

    def initdb_options(self) -> list[str]:
        options = ["-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C", "-N"]
        if self.binaries.major >= _NO_INSTRUCTIONS_MAJOR:
            options.append("--no-instructions")
        return options

    def template_key(self) -> str:
        """The cache key of this cluster's template: binaries, version, account, options."""
        uid = os.geteuid() if self.account is None else self.account.uid
        identity = [
            str(self.binaries.path("postgres").resolve()),
            self.binaries.version,
            uid,
            self.initdb_options(),
        ]
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
        return f"pg{self.binaries.version}-{digest}"


def make_data_dir(cluster: Cluster, template_cache: Path | None) -> None:
    """Create the cluster in ``data_dir`` unless it holds one (from the template cache when
    there is one)."""
    data_dir = cluster.data_dir
    if (data_dir / "PG_VERSION").exists():
        return
    if any(data_dir.iterdir()):
        raise ServerStartError(f"{data_dir} is not empty but holds no PostgreSQL cluster")
    if template_cache is None:
        run_initdb(cluster)
        return

    def build_template(directory: Path) -> None:
        # initdb runs in our own data directory, which the server account can always write
        # to; root then copies it (owners kept), so the cache need not be reachable by it.
        run_initdb(cluster)
        copy_tree(data_dir, directory / "data")

    started = time.monotonic()
    entry, built = ensure_entry(template_cache, cluster.template_key(), build_template)
    if not built:
        copy_tree(entry / "data", data_dir)
    logger.debug(
        "data directory %s from the template %s (%s) in %.2fs",
        data_dir,
        entry,
        "built" if built else "cached",
        time.monotonic() - started,
    )


def run_initdb(cluster: Cluster) -> None:
    """Run ``initdb`` into the cluster's data directory; ServerStartError with its log."""
    command = [str(cluster.binaries.path("initdb")), "-D", str(cluster.data_dir)]
    command += cluster.initdb_options()
    offset = cluster.log_path.stat().st_size
    started = time.monotonic()
    with open(cluster.log_path, "ab") as log:
        try:
            result = subprocess.run(
                command, timeout=_COMMAND_TIMEOUT, check=False, **cluster.child_kwargs(log)
            )
        except (OSError, subprocess.SubprocessError) as exc:
            tail = log_tail(cluster.log_path, offset)
            raise ServerStartError(f"initdb failed: {exc}\n{tail}") from exc
    if result.returncode != 0:
        tail = log_tail(cluster.log_path, offset)
        raise ServerStartError(f"initdb exited with code {result.returncode}:\n{tail}")
    logger.debug("initdb of %s took %.2fs", cluster.data_dir, time.monotonic() - started)
