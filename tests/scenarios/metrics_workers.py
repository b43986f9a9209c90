"""gunicorn in miniature with prometheus-client's multiprocess mode: the parent queries,
forks two workers that query 3 and 5 times and wait, scrapes, lets them exit, marks them dead
and scrapes again. Prints JSON with the figures of the ``real_pool`` alias.

Usage: metrics_workers.py PROMETHEUS_MULTIPROC_DIR
"""

from __future__ import annotations

import json
import os
import sys

os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]

import django
from _settings import databases
from django.conf import settings

settings.configure(
    DATABASES=databases(pool_size=1),
    USE_TZ=True,
    INSTALLED_APPS=["django_pg_real_pool"],
    DJANGO_PG_REAL_POOL={"METRICS": True},
)
django.setup()

from django.db import connections  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from django_pg_real_pool import metrics  # noqa: E402

ALIAS = "real_pool"


def query() -> None:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")


def scrape() -> dict[str, float]:
    found: dict[str, float] = {}
    names = {
        "db_client_connection_wait_time_seconds_count": "wait_count",
        "db_client_connection_use_time_seconds_count": "use_count",
        "db_client_connection_max": "max",
    }
    text = metrics.exposition()[0].decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("db_client_connection_pool_name") != ALIAS:
                continue
            if sample.name == "db_client_connection_count":
                found[sample.labels["state"]] = sample.value
            elif sample.name in names:
                found[names[sample.name]] = sample.value
    return found


query()
workers = []
for queries in (3, 5):
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_read)
        os.close(go_write)
        for _ in range(queries):
            query()
        os.write(ready_write, b"1")
        os.read(go_read, 1)  # stay alive until the parent has scraped
        os._exit(0)
    os.close(ready_write)
    os.close(go_read)
    workers.append((pid, ready_read, go_write))

for _, ready_read, _ in workers:
    os.read(ready_read, 1)
alive = scrape()
for pid, _, go_write in workers:
    os.write(go_write, b"1")
    os.waitpid(pid, 0)
    metrics.mark_process_dead(pid)
after = scrape()
print(json.dumps({"alive": alive, "after_exit": after}))
