"""fork() in a busy process: threads hold every pooled connection and more wait for one when
the main thread forks. The child queries (from its main thread and a new thread) and exits
normally; then the parent's threads carry on.

Prints JSON: the backend pids the parent's holders used before and after the fork, the child's
pids (or its error), what the parent's waiting checkouts got, and the child's exit status.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import warnings

from _settings import setup

POOL_SIZE = 2
WAITERS = 2
setup(pool_size=POOL_SIZE)

from django.db import connections, transaction  # noqa: E402

from django_pg_real_pool import pool_stats  # noqa: E402

alias = sys.argv[1]
# The hazard under test: Python warns that forking a threaded process may deadlock the child.
warnings.filterwarnings(
    "ignore", message=".*fork\\(\\) may lead to deadlocks", category=DeprecationWarning
)


def backend_pid() -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def poll(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting until {what}")
        time.sleep(0.005)  # polling to a deadline


release = threading.Event()
holders: list[dict[str, object]] = []
waiters: list[str] = []


def hold() -> None:
    seen: dict[str, object] = {}
    holders.append(seen)
    try:
        with transaction.atomic(using=alias):
            seen["before"] = backend_pid()
            release.wait(30)
            seen["after"] = backend_pid()  # the same connection, after the child has gone
    except Exception as exc:
        seen["error"] = repr(exc)
    finally:
        connections[alias].close()


def wait_for_one() -> None:
    try:
        backend_pid()
        waiters.append("ok")
    except Exception as exc:
        waiters.append(repr(exc))
    finally:
        connections[alias].close()


threads = [threading.Thread(target=hold) for _ in range(POOL_SIZE)]
for thread in threads:
    thread.start()
poll(lambda: sum("before" in seen for seen in holders) == POOL_SIZE, "the holders hold")
threads += [threading.Thread(target=wait_for_one) for _ in range(WAITERS)]
for thread in threads[POOL_SIZE:]:
    thread.start()
poll(lambda: pool_stats(alias).waiting == WAITERS, "the waiters wait")

read_end, write_end = os.pipe()
child_pid = os.fork()
if child_pid == 0:
    os.close(read_end)
    signal.alarm(30)  # a hung child must not outlive the test
    try:
        child: list[int] = [backend_pid(), backend_pid()]
        connections[alias].close()
        in_thread: list[int] = []

        def query_in_thread() -> None:
            try:
                in_thread.append(backend_pid())
            finally:
                connections[alias].close()

        thread = threading.Thread(target=query_in_thread)
        thread.start()
        thread.join(20)
        message: object = child + in_thread
    except Exception as exc:
        message = f"error: {exc!r}"
    os.write(write_end, json.dumps(message).encode())
    os.close(write_end)
    sys.exit(0)  # a normal shutdown: finalizers and atexit handlers run in the child

os.close(write_end)
with os.fdopen(read_end) as pipe:
    child_report = json.loads(pipe.read())
_, status = os.waitpid(child_pid, 0)
release.set()
for thread in threads:
    thread.join(30)
print(
    json.dumps(
        {
            "holders": holders,
            "waiters": waiters,
            "child": child_report,
            "status": status,
            "parent_after": backend_pid(),
        }
    )
)
