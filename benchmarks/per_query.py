"""What releasing after every query costs, against holding the connection.

Starts a throwaway PostgreSQL server and runs `with connection.cursor(): SELECT 1` in one
thread through each contender, in interleaved rounds, and prints the median wall and CPU time
per query with ratios against Django holding one connection (the floor: no pool work at all).

Contenders:
- Django, one persistent connection (CONN_MAX_AGE=None): the floor.
- Django's native pool, connection held for the whole "request" (5.1+).
- django-db-connection-pool, connection held.
- Django's native pool closed after every query: an as-soon-as-possible release built on
  Django's own connect()/close(), the way a naive ASAP backend does it (5.1+).
- django_pg_real_pool, both engines (releasing after every query), and each with the opt-in
  reset on return (DISCARD ALL on every connection given back).

Run: python benchmarks/per_query.py [--queries N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import django
from _common import django_on_throwaway_server


def contenders(common: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pool = {"pool": {"min_size": 1, "max_size": 1}}
    queue_pool = {"POOL_SIZE": 1, "MAX_OVERFLOW": 0}
    found: dict[str, dict[str, Any]] = {
        "django, held connection": {
            **common,
            "ENGINE": "django.db.backends.postgresql",
            "CONN_MAX_AGE": None,
        },
        "django-db-connection-pool, held": {
            **common,
            "ENGINE": "dj_db_conn_pool.backends.postgresql",
            "POOL_OPTIONS": queue_pool,
        },
        "django_pg_real_pool": {**common, "ENGINE": "django_pg_real_pool", "OPTIONS": pool},
        "django_pg_real_pool.dj_db_conn_pool": {
            **common,
            "ENGINE": "django_pg_real_pool.dj_db_conn_pool",
            "POOL_OPTIONS": queue_pool,
        },
        "django_pg_real_pool, reset_on_return": {
            **common,
            "ENGINE": "django_pg_real_pool",
            "OPTIONS": {**pool, "reset_on_return": True},
        },
        "django_pg_real_pool.dj_db_conn_pool, RESET_ON_RETURN": {
            **common,
            "ENGINE": "django_pg_real_pool.dj_db_conn_pool",
            "POOL_OPTIONS": {**queue_pool, "RESET_ON_RETURN": True},
        },
        "django_pg_real_pool.dj_db_conn_pool, PRE_PING off": {
            **common,
            "ENGINE": "django_pg_real_pool.dj_db_conn_pool",
            "POOL_OPTIONS": {**queue_pool, "PRE_PING": False},
        },
    }
    if django.VERSION >= (5, 1):
        native = {**common, "ENGINE": "django.db.backends.postgresql", "OPTIONS": pool}
        found["django native pool, held"] = native
        found["django native pool, close() per query"] = {
            **native,
            "OPTIONS": {"pool": {**pool["pool"]}},
        }
    return found


def workload(alias: str, queries: int) -> Callable[[], None]:
    from django.db import connections

    connection = connections[alias]
    release = alias.endswith("close() per query")

    def run() -> None:
        for _ in range(queries):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            if release:
                connection.close()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with django_on_throwaway_server(contenders) as (server, databases):
        runs = {alias: workload(alias, args.queries) for alias in databases}
        wall: dict[str, list[float]] = {alias: [] for alias in runs}
        cpu: dict[str, list[float]] = {alias: [] for alias in runs}
        for run in runs.values():  # warm up: pools open, version checks done
            run()
        for _ in range(args.rounds):
            for alias, run in runs.items():
                wall_start, cpu_start = time.perf_counter(), time.process_time()
                run()
                wall[alias].append((time.perf_counter() - wall_start) / args.queries)
                cpu[alias].append((time.process_time() - cpu_start) / args.queries)
        floor = "django, held connection"
        print(
            f"PostgreSQL {server.major} ({server.source}), Django {django.get_version()}, "
            f"{args.rounds} rounds x {args.queries} queries, medians per query:\n"
        )
        print(f"{'contender':52} {'wall us':>8} {'x floor':>8} {'cpu us':>8} {'x floor':>8}")
        w0, c0 = statistics.median(wall[floor]), statistics.median(cpu[floor])
        for alias in runs:
            w, c = statistics.median(wall[alias]), statistics.median(cpu[alias])
            print(f"{alias:52} {w * 1e6:8.1f} {w / w0:8.2f} {c * 1e6:8.1f} {c / c0:8.2f}")


if __name__ == "__main__":
    main()
