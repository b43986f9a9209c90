"""What counting and timing checkouts costs per checkout, side by side on one real pool.

Builds one psycopg_pool pool of one connection through the engine, and checks that
connection out and back in a tight loop, in interleaved rounds:

- off: psycopg_pool's own ``getconn()``/``putconn()``, no counting at all;
- stats: through the engine's pool handle (counts, wait and hold distributions), the default;
- + warnings: stats, and the app's observer with both warning thresholds set (not reached);
- + metrics: the same with ``DJANGO_PG_REAL_POOL["METRICS"]`` on (prometheus-client), when
  prometheus-client is installed.

Then the counters alone, without a pool: a trivial "get" with and without
``CheckoutCounters`` around it. With ``PROMETHEUS_MULTIPROC_DIR`` set to an empty directory,
"+ metrics" measures prometheus-client's multiprocess mode (gunicorn).

It imports our package, so it runs in the project's environment only: ``python -m
benchmarks`` runs it in a process of its own on its server (``--connect``); on its own,
``python -m benchmarks.checkout_stats`` starts a server. Reported per round: seconds per
checkout and return; the report takes the best round (the least disturbed by other
processes) and the median.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["NAMES", "measure"]

ALIAS = "bench_pool"
NAMES = ("off", "stats", "+ warnings", "+ metrics")


def loop(getconn: Callable[[], Any], putconn: Callable[[Any], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        putconn(getconn())
    return (time.perf_counter() - start) / n


def measure(common: dict[str, Any], *, checkouts: int, rounds: int) -> dict[str, Any]:
    """Configure Django on ``common`` (NAME, USER, HOST, PORT) and measure; per name, the
    seconds per checkout and return of every round."""
    import django
    from django.conf import settings

    pool = {"pool": {"min_size": 1, "max_size": 1}}
    settings.configure(
        DATABASES={
            "default": {},
            ALIAS: {**common, "ENGINE": "django_pg_real_pool", "OPTIONS": pool},
        },
        USE_TZ=True,
    )
    django.setup()
    from django.db import connections
    from django.test import override_settings

    from django_pg_real_pool import close_all_pools, conf, pools
    from django_pg_real_pool.observe import PoolObserver

    conf.connect_signals()
    try:
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
                return loop(handle.raw.getconn, handle.raw.putconn, checkouts)
            package = (
                {**thresholds, "METRICS": name == "+ metrics"} if handle.counters.observer else {}
            )
            with override_settings(DJANGO_PG_REAL_POOL=package):
                return loop(handle.getconn, handle.putconn, checkouts)

        names = [
            name
            for name in NAMES
            if name != "+ metrics" or importlib.util.find_spec("prometheus_client")
        ]
        times: dict[str, list[float]] = {name: [] for name in names}
        for name in names:  # warm-up
            run(name)
        for _ in range(rounds):
            for name in names:
                times[name].append(run(name))
    finally:
        close_all_pools()
    return {
        "checkouts": checkouts,
        "rounds": rounds,
        "pool": times,
        "counters_alone": counters_alone(checkouts * 5, rounds),
    }


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


def table(times: dict[str, list[float]]) -> list[str]:
    """Markdown rows: best and median round per name, and the best's difference with off."""
    floor = min(times["off"])
    lines = ["| counting | best us | median us | best - off us |", "|---|---:|---:|---:|"]
    for name, found in times.items():
        best, median = min(found), statistics.median(found)
        lines.append(
            f"| {name} | {best * 1e6:.2f} | {median * 1e6:.2f} | {(best - floor) * 1e6:+.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkouts", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--connect", help="JSON of NAME, USER, HOST, PORT: use that server, print JSON"
    )
    args = parser.parse_args()
    if args.connect:
        found = measure(json.loads(args.connect), checkouts=args.checkouts, rounds=args.rounds)
        print(json.dumps(found))
        return
    from .server import bench_server, common_settings

    with bench_server(needed=4) as server:
        found = measure(common_settings(server), checkouts=args.checkouts, rounds=args.rounds)
    print(f"{args.rounds} rounds of {args.checkouts} checkouts, per checkout and return")
    print("\n".join(table(found["pool"])))
    print("\nThe counters alone, around a trivial get()")
    print("\n".join(table(found["counters_alone"])))


if __name__ == "__main__":
    main()
