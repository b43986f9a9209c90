"""The process that owns a test run's PostgreSQL server.

Started by the first pytest process (or xdist worker) that needs the server, it starts the
server, writes its description to ``server.json`` in the run directory and stays until the
run's owner (the pytest process, the xdist controller) exits or asks it to stop; then it
stops the server and removes the run directory. A crashed worker therefore never takes the
shared server down, and a killed pytest never leaves it behind.

Usage: python -m django_pg_real_pool.testing.keeper RUN_DIR OWNER_PID REQUEST_JSON
(it detaches at once; its pid is then in RUN_DIR/keeper.pid)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import threading
import traceback
from pathlib import Path

logger = logging.getLogger("django_pg_real_pool")

SERVER_FILE = "server.json"
ERROR_FILE = "error.txt"
STOP_FILE = "stop"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


PID_FILE = "keeper.pid"


def main(argv: list[str]) -> int:
    run_dir, owner, request_json = Path(argv[0]), int(argv[1]), argv[2]
    # Detach: the process that started us only waits for this first exit, so that no pytest
    # process keeps a child (and its ResourceWarning) for the rest of the run.
    if os.fork() != 0:
        os._exit(0)
    (run_dir / PID_FILE).write_text(str(os.getpid()))
    from .servers.resolve import ServerRequest, describe, start_server

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fields = json.loads(request_json)
    if fields.get("cache_dir"):
        fields["cache_dir"] = Path(fields["cache_dir"])
    try:
        server = start_server(ServerRequest(**fields))
    except Exception as exc:
        (run_dir / ERROR_FILE).write_text(f"{exc}\n\n{traceback.format_exc()}")
        return 1
    try:
        temporary = run_dir / (SERVER_FILE + ".tmp")
        temporary.write_text(json.dumps(describe(server) | {"keeper": os.getpid()}))
        temporary.rename(run_dir / SERVER_FILE)
        while not stop.wait(0.2):
            if not _alive(owner) or (run_dir / STOP_FILE).exists():
                break
    finally:
        _drop_run_databases(server, run_dir.name.rsplit("-", 1)[-1][:8])
        server.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def _drop_run_databases(server: object, run: str) -> None:
    """Drop what workers left behind (a crashed one cannot); matters on an external server."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(**server.connect_kwargs("postgres"), autocommit=True) as conn:  # type: ignore[attr-defined]
            names = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"pgrp\\_{run}\\_%"]
            ).fetchall()
            for (name,) in names:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    except Exception:
        logger.exception("could not drop the databases of run %s", run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
