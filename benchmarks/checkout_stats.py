"""What counting and timing checkouts costs per checkout, side by side on one real pool.

Starts a throwaway PostgreSQL server, builds one psycopg_pool pool of one connection through
the engine, and checks that connection out and back in a tight loop, in interleaved rounds:

- off: psycopg_pool's own ``getconn()``/``putconn()``, no counting at all;
- stats: through the engine's pool handle (counts, wait and hold distributions), the default;
- + warnings: stats, and the app's observer with both warning thresholds set (not reached);
- + metrics: the same with ``DJANGO_PG_REAL_POOL["METRICS"]`` on (prometheus-client).

Then the counters alone, without a pool: a trivial "get" with and without
``CheckoutCounters`` around it.

With ``PROMETHEUS_MULTIPROC_DIR`` set to an empty directory, "+ metrics" measures
prometheus-client's multiprocess mode (gunicorn), where every checkout also writes the
connection gauges.

Prints the best and the median round's time per checkout+return, and the best's difference
with "off" (the best round is the one least disturbed by other processes).

Run: python benchmarks/checkout_stats.py [--checkouts N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import django_on_throwaway_server

ALIAS = "bench_pool"


def contenders(common: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pool = {"pool": {"min_size": 1, "max_size": 1}}
    return {ALIAS: {**common, "ENGINE": "django_pg_real_pool", "OPTIONS": pool}}


def loop(getconn: Callable[[], Any], putconn: Callable[[Any], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        putconn(getconn())
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkouts", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with django_on_throwaway_server(contenders):
        from django.db import connections
        from django.test import override_settings

        from django_pg_real_pool import conf, pools
        from django_pg_real_pool.observe import PoolObserver

        conf.connect_signals()
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
        connections[ALIAS].close()
        entry = pools.current(ALIAS)
        assert entry is not None
        handle: Any = entry.handle
        observer = PoolObserver(ALIAS, "real_pool", handle)
        thresholds = {"SLOW_CHECKOUT_WARNING": 10.0, "LONG_HOLD_WARNING": 10.0}

        def run(name: str) -> float:
            handle.counters.observer = None if name in ("off", "stats") else observer
            if name == "off":
                return loop(handle.raw.getconn, handle.raw.putconn, args.checkouts)
            package = (
                {**thresholds, "METRICS": name == "+ metrics"} if handle.counters.observer else {}
            )
            with override_settings(DJANGO_PG_REAL_POOL=package):
                return loop(handle.getconn, handle.putconn, args.checkouts)

        names = ["off", "stats", "+ warnings", "+ metrics"]
        times: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm-up
            run(name)
        for _ in range(args.rounds):
            for name in names:
                times[name].append(run(name))
        print(f"{args.rounds} rounds of {args.checkouts} checkouts, per checkout and return")
        table(times)
        print()
        print("The counters alone, around a trivial get()")
        table(counters_alone(args.checkouts * 5, args.rounds))


def counters_alone(n: int, rounds: int) -> dict[str, list[float]]:
    from django_pg_real_pool.counters import CheckoutCounters

    token = object()

    def get() -> object:
        return token

    def put(conn: object) -> None:
        pass

    counters = CheckoutCounters()

    def counted_get() -> object:
        return counters.checkout(get)

    def counted_put(conn: object) -> None:
        counters.returned()

    times: dict[str, list[float]] = {"off": [], "stats": []}
    for _ in range(rounds):
        times["off"].append(loop(get, put, n))
        times["stats"].append(loop(counted_get, counted_put, n))
    return times


def table(times: dict[str, list[float]]) -> None:
    floor = min(times["off"])
    print("| counting | best us | median us | best - off us |")
    print("|---|---:|---:|---:|")
    for name, found in times.items():
        best, median = min(found), statistics.median(found)
        print(f"| {name} | {best * 1e6:.2f} | {median * 1e6:.2f} | {(best - floor) * 1e6:+.2f} |")


if __name__ == "__main__":
    main()
