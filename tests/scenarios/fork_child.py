"""gunicorn --preload in miniature: the parent uses the pool, forks, the child queries.

Prints JSON: the backend pid the parent used, the one the child used, and the one the
parent uses after the child exited normally (interpreter shutdown included).
"""

from __future__ import annotations

import json
import os
import sys

from _settings import setup

setup(pool_size=1)

from django.db import connections  # noqa: E402

alias = sys.argv[1]


def backend_pid() -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


parent = backend_pid()
connections[alias].close()
read_end, write_end = os.pipe()
child_pid = os.fork()
if child_pid == 0:
    os.close(read_end)
    try:
        message = str(backend_pid())
        connections[alias].close()
    except Exception as exc:
        message = f"error: {exc!r}"
    os.write(write_end, message.encode())
    os.close(write_end)
    sys.exit(0)  # a normal shutdown: finalizers and atexit handlers run in the child

os.close(write_end)
with os.fdopen(read_end) as pipe:
    child = pipe.read()
_, status = os.waitpid(child_pid, 0)
try:
    after: int | str = backend_pid()
except Exception as exc:
    after = f"error: {exc!r}"
print(json.dumps({"parent": parent, "child": child, "parent_after": after, "status": status}))
