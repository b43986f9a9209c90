"""The process that owns a test run's PostgreSQL server.

Started by the first pytest process (or xdist worker) that needs the server, it starts the
server, writes its description to ``server.json`` in the run directory and stays until the
run's owner (the pytest process, the xdist controller) exits or asks it to stop; then it
drops the run's databases, stops the server and removes the run directory. A crashed worker
therefore never takes the shared server down, and a killed pytest never leaves it behind.

Usage: python -m django_pg_real_pool.testing.keeper RUN_ID OWNER_PID CONFIG_JSON
(it detaches at once; its pid is then in the run directory's keeper.pid)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import traceback

from . import run

SERVER_FILE = "server.json"
ERROR_FILE = "error.txt"
STOP_FILE = "stop"
PID_FILE = "keeper.pid"


def main(argv: list[str]) -> int:
    run_id, owner, config_json = argv[0], int(argv[1]), argv[2]
    run_dir = run.directory(run_id)
    # Detach: the process that started us only waits for this first exit, so that no pytest
    # process keeps a child (and its ResourceWarning) for the rest of the run.
    if os.fork() != 0:
        os._exit(0)
    (run_dir / PID_FILE).write_text(str(os.getpid()))
    from .janitor import drop_run_databases
    from .servers.resolve import ServerConfig, describe, start_server

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        server = start_server(ServerConfig.from_json(config_json))
    except Exception as exc:
        (run_dir / ERROR_FILE).write_text(f"{exc}\n\n{traceback.format_exc()}")
        return 1
    try:
        temporary = run_dir / (SERVER_FILE + ".tmp")
        temporary.write_text(json.dumps(describe(server) | {"keeper": os.getpid()}))
        temporary.rename(run_dir / SERVER_FILE)
        while not stop.wait(0.2):
            if not run.alive(owner) or (run_dir / STOP_FILE).exists():
                break
    finally:
        drop_run_databases(server, run_id)
        server.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
