"""Uses every pooled alias from several threads, then exits: nothing may be printed."""

from __future__ import annotations

import sys
import threading
import time

from _settings import setup

setup(pool_size=4)

from django.db import connections  # noqa: E402


def work(alias: str) -> None:
    for _ in range(5):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    connections[alias].close()


aliases = [alias for alias in connections if alias.startswith("real_pool")]
threads = [threading.Thread(target=work, args=(alias,)) for alias in aliases for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.stdout.write(f"{time.time()}\n")
sys.stdout.flush()
