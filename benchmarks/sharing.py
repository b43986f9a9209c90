"""``make demo``: 16 threads, 4 connections, as-soon-as-possible release against plain pools.

Starts a throwaway PostgreSQL server and runs one throughput cell of ``python -m benchmarks``
through each pool, one after the other: 16 threads serve requests made of a query, 10 ms of
application work and a query, for a few seconds; each request ends with ``request_finished``,
as in Django. A plain pool pins a connection for the whole request, so only 4 requests run at
a time; our engines hold a connection only while a query runs.

Run: python -m benchmarks.sharing [--seconds S]
"""

from __future__ import annotations

import argparse
import sys

from .contenders import BY_NAME, PROJECT
from .plan import Plan
from .server import bench_server, common_settings, server_version
from .throughput import alias_of
from .throughput import spec as worker_spec
from .workers import started

THREADS, POOL, WORK = 16, 4, 0.010
CONTENDERS = ("real_pool", "real_pool_dj", "stock_pool", "dbcp")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per pool")
    args = parser.parse_args()
    plan = Plan.make(scenarios=("throughput",), contenders=CONTENDERS, pools=(POOL,))
    with bench_server(needed=plan.connections_needed()) as server:
        common = common_settings(server)
        print(
            f"PostgreSQL {server_version(server)}: {THREADS} threads for {args.seconds:g} s per "
            f"pool, {POOL} connections; a request is a query, {WORK * 1000:g} ms of work, a "
            "query.\n"
        )
        specs = [worker_spec(BY_NAME[name], sys.executable, common, plan) for name in CONTENDERS]
        assert all(BY_NAME[name].venv == PROJECT for name in CONTENDERS)
        with started(specs) as workers:
            results = {
                name: worker.ask(
                    "throughput",
                    alias=alias_of(POOL),
                    threads=THREADS,
                    work=WORK,
                    duration=args.seconds,
                )
                for name, (worker, _) in zip(CONTENDERS, workers, strict=True)
            }
    ours = results[CONTENDERS[0]]["completed"]
    print(f"| pool | requests | req/s | p50 ms | p99 ms | failed | vs {CONTENDERS[0]} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, found in results.items():
        latency = found["latency"]
        print(
            f"| {name} | {found['completed']} | {found['completed'] / args.seconds:.0f} | "
            f"{latency['p50'] * 1000:.1f} | {latency['p99'] * 1000:.1f} | {found['failures']} | "
            f"{found['completed'] / ours:.2f}x |"
        )


if __name__ == "__main__":
    main()
