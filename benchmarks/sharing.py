"""16 threads, 4 connections: as-soon-as-possible release against plain pools.

Starts a throwaway PostgreSQL server, then runs the same workload through each pool: 16
threads each serve requests made of 3 queries separated by 20 ms of application work,
closing the connection at the end of the request as Django does. A plain pool pins one
connection per request, so only 4 requests run at a time; this engine holds a connection
only while a query runs.

Run: python benchmarks/sharing.py [--requests-per-thread N]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

import django
from _common import django_on_throwaway_server

THREADS = 16
POOL_SIZE = 4
QUERIES_PER_REQUEST = 3
WORK_SECONDS = 0.020
TIMEOUT = 5


def contenders(common: dict[str, Any]) -> dict[str, dict[str, Any]]:
    psycopg_pool = {"pool": {"min_size": POOL_SIZE, "max_size": POOL_SIZE, "timeout": TIMEOUT}}
    queue_pool = {"POOL_SIZE": POOL_SIZE, "MAX_OVERFLOW": 0, "TIMEOUT": TIMEOUT}
    found = {
        "django_pg_real_pool": {
            **common,
            "ENGINE": "django_pg_real_pool",
            "OPTIONS": psycopg_pool,
        },
        "django_pg_real_pool.dj_db_conn_pool": {
            **common,
            "ENGINE": "django_pg_real_pool.dj_db_conn_pool",
            "POOL_OPTIONS": queue_pool,
        },
        "django-db-connection-pool": {
            **common,
            "ENGINE": "dj_db_conn_pool.backends.postgresql",
            "POOL_OPTIONS": queue_pool,
        },
    }
    if django.VERSION >= (5, 1):
        found["Django native pool"] = {
            **common,
            "ENGINE": "django.db.backends.postgresql",
            "OPTIONS": psycopg_pool,
        }
    return found


@dataclass
class Result:
    name: str
    seconds: float
    served: int
    failed: int
    latency_p50: float
    latency_max: float


def run(alias: str, requests_per_thread: int) -> Result:
    from django.db import connections

    latencies: list[float] = []
    failures: list[BaseException] = []
    start = threading.Barrier(THREADS + 1)

    def serve() -> None:
        start.wait()
        for _ in range(requests_per_thread):
            began = time.perf_counter()
            try:
                for _ in range(QUERIES_PER_REQUEST):
                    with connections[alias].cursor() as cursor:
                        cursor.execute("SELECT 1")
                    time.sleep(WORK_SECONDS)  # the view's own work, not synchronisation
                latencies.append(time.perf_counter() - began)
            except Exception as exc:
                failures.append(exc)
            finally:
                connections[alias].close()  # Django's request_finished

    threads = [threading.Thread(target=serve) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    return Result(
        name=alias,
        seconds=seconds,
        served=len(latencies),
        failed=len(failures),
        latency_p50=statistics.median(latencies) if latencies else float("nan"),
        latency_max=max(latencies, default=float("nan")),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-thread", type=int, default=10)
    args = parser.parse_args()

    with django_on_throwaway_server(contenders, database="demo") as (server, databases):
        print(
            f"PostgreSQL {server.major} ({server.source}), Django {django.get_version()}: "
            f"{THREADS} threads x {args.requests_per_thread} requests, each "
            f"{QUERIES_PER_REQUEST} queries + {QUERIES_PER_REQUEST} x "
            f"{WORK_SECONDS * 1000:.0f} ms of work; {POOL_SIZE} connections per pool.\n"
        )
        results = [run(alias, args.requests_per_thread) for alias in databases]
        ours = results[0]
        header = f"{'pool':38} {'wall s':>7} {'served':>7} {'failed':>7} {'p50 ms':>7}"
        print(f"{header} {'max ms':>7} {'wall vs ours':>13}")
        for result in results:
            print(
                f"{result.name:38} {result.seconds:7.2f} {result.served:7d} {result.failed:7d} "
                f"{result.latency_p50 * 1000:7.1f} {result.latency_max * 1000:7.1f} "
                f"{result.seconds / ours.seconds:12.2f}x"
            )


if __name__ == "__main__":
    main()
