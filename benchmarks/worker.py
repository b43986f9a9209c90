"""One benchmark process: it runs the measurements it is asked for on the DATABASES it is given.

It imports only the standard library and Django, so that it runs unchanged in any virtual
environment: in django-pg-real-pool 1.1.0's, ``django_pg_real_pool`` is 1.1.0's package. The
orchestrator starts it as ``python -I worker.py`` and talks JSON, one object per line:

- ``{"op": "setup", "databases": {...}, "fill": {"alias": n}}``: configure Django, then warm
  every alias (``fill``: hold n connections of it at once, so a pool has opened them all).
  Answers the versions of the packages that matter, this process's id and the cores it may
  run on.
- ``{"op": "per_query", "alias", "reference", "variants", "chunk_seconds", "rounds"}``: one
  thread; per variant, a warm-up that also counts how many requests take ``chunk_seconds``,
  then per round that many requests through ``alias`` and through ``reference`` (the order
  swapped every other round): client CPU and wall time per query.
- ``{"op": "throughput", "alias", "threads", "work", "duration", "fill"}``: ``threads``
  threads serve requests for ``duration`` seconds; completions (whole, and with the request
  in flight at the deadline counted for its share), latency percentiles, per-thread
  completions, failures, client CPU.
- ``{"op": "quit"}``: exit.

Every answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "<traceback>"}``.
A request is what a Django view does: ``request_started``, its queries (``SELECT %s``), and
``request_finished``, which closes (or keeps, with CONN_MAX_AGE) the thread's connections.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from typing import Any, TextIO

#: The distributions whose versions every answer to setup reports.
DISTRIBUTIONS = (
    "Django",
    "django-pg-real-pool",
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "django-db-connection-pool",
    "SQLAlchemy",
)
#: How long a barrier waits before the measurement is declared stuck.
BARRIER_TIMEOUT = 120.0


class _Request:
    """The sender of request_started/request_finished, as Django's handlers send them."""


def setup(databases: dict[str, Any], fill: dict[str, int]) -> dict[str, Any]:
    import django
    from django.conf import settings

    # Django insists on a 'default' alias; an empty one is its dummy backend, never used here.
    settings.configure(
        DATABASES={"default": {}, **databases},
        INSTALLED_APPS=[],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()
    for alias in databases:
        if fill.get(alias, 1):  # 0: not warmed (a test of failing requests)
            fill_pool(alias, fill.get(alias, 1))
    versions: dict[str, str | None] = {}
    for name in DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    # What setup made lives as long as the process: a collection during a measurement need
    # not walk it again (10 ms and more in a process with Django loaded, the time of dozens
    # of requests). A preforked server that freezes after loading its app does the same.
    gc.freeze()
    return {
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "versions": versions,
        "cpus": cpus,
    }


def fill_pool(alias: str, connections_at_once: int) -> None:
    """Hold ``connections_at_once`` connections of ``alias`` at the same time (each in an
    ``atomic()`` block, which every contender keeps its connection through), so that a pool
    that opens connections lazily has opened that many before anything is timed."""
    barrier = threading.Barrier(connections_at_once)
    errors: list[str] = []

    def hold() -> None:
        from django.db import transaction

        try:
            with transaction.atomic(using=alias):
                query(alias, 0)
                barrier.wait(BARRIER_TIMEOUT)
        except Exception:
            errors.append(traceback.format_exc())
            barrier.abort()
        finally:
            finish_request()
            close_thread_connections()

    run_threads([hold] * connections_at_once)
    if errors:
        raise RuntimeError(f"filling {alias!r} failed:\n{errors[0]}")


def query(alias: str, number: int) -> None:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT %s", [number])
        cursor.fetchone()


def start_request() -> None:
    from django.core.signals import request_started

    request_started.send(sender=_Request)


def finish_request() -> None:
    from django.core.signals import request_finished

    request_finished.send(sender=_Request)


def close_thread_connections() -> None:
    """Close this thread's connections: a persistent connection ends with its thread."""
    from django.db import connections

    connections.close_all()


def run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def per_query_request(alias: str, queries: int, *, atomic: bool) -> Callable[[], None]:
    from django.db import transaction

    def run() -> None:
        start_request()
        try:
            if atomic:
                with transaction.atomic(using=alias):
                    for number in range(queries):
                        query(alias, number)
            else:
                for number in range(queries):
                    query(alias, number)
        finally:
            finish_request()

    return run


def timed(request: Callable[[], None], requests: int, queries: int) -> tuple[float, float]:
    """Client CPU and wall seconds per query over ``requests`` requests."""
    gc.collect(1)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(requests):
        request()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu / (requests * queries), wall / (requests * queries)


#: Each side warms up this long at least before its first timed chunk, however short chunks are.
WARM_UP_SECONDS = 0.06


def calibrated(request: Callable[[], None], seconds: float) -> int:
    """Warm up with ``request`` (not timed) for ``WARM_UP_SECONDS`` or ``seconds``, whichever
    is longer; the number of requests that takes about ``seconds``."""
    warm_up = max(seconds, WARM_UP_SECONDS)
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < warm_up or done < 2:
        request()
        done += 1
    return max(1, round(done * seconds / elapsed))


def per_query(
    alias: str,
    reference: str,
    variants: list[dict[str, Any]],
    chunk_seconds: float,
    rounds: int,
) -> dict[str, Any]:
    """Per variant: lists of per-round CPU and wall seconds per query, for both aliases; each
    round times about ``chunk_seconds`` of requests per alias."""
    found: dict[str, Any] = {}
    for variant in variants:
        per_request = int(variant["queries"])
        runs = {
            side: per_query_request(name, per_request, atomic=bool(variant["atomic"]))
            for side, name in (("contender", alias), ("reference", reference))
        }
        requests = {side: calibrated(run, chunk_seconds) for side, run in runs.items()}
        samples: dict[str, dict[str, Any]] = {
            side: {"requests": requests[side], "cpu": [], "wall": []} for side in runs
        }
        # A full collection takes 10 ms or more in a Django process: once here, and before
        # each chunk only the young generations (timed()), so that many short chunks cost no
        # more time than a few long ones.
        gc.collect()
        for number in range(rounds):
            order = list(runs) if number % 2 == 0 else list(reversed(runs))
            for side in order:
                cpu, wall = timed(runs[side], requests[side], per_request)
                samples[side]["cpu"].append(cpu)
                samples[side]["wall"].append(wall)
        found[variant["name"]] = samples
    return found


def percentile(ordered: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def throughput_request(alias: str, work: float) -> None:
    """One request of the throughput scenario: a query, ``work`` seconds of sleep, a query."""
    start_request()
    try:
        query(alias, 1)
        if work:
            time.sleep(work)  # the view's own work: the workload, not synchronisation
        query(alias, 2)
    finally:
        finish_request()


def throughput(
    alias: str, threads: int, work: float, duration: float, keep_latencies: bool = False
) -> dict[str, Any]:
    """``threads`` threads serve requests (query, ``work`` seconds of sleep, query) for
    ``duration`` seconds after one untimed request each; with ``keep_latencies``, every
    request's latency too (for merging slices)."""
    state: dict[str, float] = {}

    def begin() -> None:  # the barrier's action: runs once, as every thread is ready
        state["cpu"] = time.process_time()
        state["start"] = time.perf_counter()
        state["deadline"] = state["start"] + duration

    barrier = threading.Barrier(threads, action=begin)
    counted = [0] * threads
    # The share of the request in flight at the deadline that ran before it (see ``done``).
    in_flight = [0.0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures: list[list[str]] = [[] for _ in range(threads)]
    finished = [0.0] * threads

    request = functools.partial(throughput_request, alias, work)

    def serve(number: int) -> None:
        try:
            request()  # warm-up: a persistent connection opens here, not in the timing
        except Exception as exc:
            failures[number].append(f"warm-up: {type(exc).__name__}: {exc}")
        barrier.wait(BARRIER_TIMEOUT)
        deadline = state["deadline"]
        while (began := time.perf_counter()) < deadline:
            try:
                request()
            except Exception as exc:
                failures[number].append(f"{type(exc).__name__}: {exc}")
                continue
            ended = time.perf_counter()
            latencies[number].append(ended - began)
            if ended <= deadline:
                counted[number] += 1
            else:
                in_flight[number] = (deadline - began) / (ended - began)
        finished[number] = time.perf_counter()
        close_thread_connections()

    gc.collect()
    run_threads([functools.partial(serve, number) for number in range(threads)])
    cpu = time.process_time() - state["cpu"]
    everything = sorted(latency for per_thread in latencies for latency in per_thread)
    all_failures = [failure for per_thread in failures for failure in per_thread]
    found: dict[str, Any] = {
        "duration": duration,
        "completed": sum(counted),
        # Requests done by the deadline, the one in flight counted for its share: threads
        # that start together at the barrier and take about as long per request finish
        # their n-th request together, so whole completions move in steps of one request
        # per thread (7 % at 16 threads, 10 ms of work and a 0.17 s slice) and two
        # contenders a percent apart count the same. The share makes it continuous.
        "done": sum(counted) + sum(in_flight),
        "completed_with_tail": len(everything),
        "tail_seconds": max(finished) - state["deadline"],
        "per_thread": counted,
        "latency": {
            "p50": percentile(everything, 0.50),
            "p90": percentile(everything, 0.90),
            "p99": percentile(everything, 0.99),
            "max": everything[-1] if everything else None,
        },
        "cpu_per_request": cpu / len(everything) if everything else None,
        "failures": len(all_failures),
        "failure_samples": sorted(set(all_failures))[:5],
    }
    if keep_latencies:
        found["latencies"] = everything
    return found


def answer(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve_commands(commands: TextIO, out: TextIO) -> None:
    for line in commands:
        if not line.strip():
            continue
        command = json.loads(line)
        op = command.pop("op")
        if op == "quit":
            return
        try:
            if op == "setup":
                result = setup(command["databases"], command.get("fill", {}))
            elif op == "per_query":
                result = per_query(**command)
            elif op == "throughput":
                result = throughput(**command)
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception:
            answer(out, {"ok": False, "error": traceback.format_exc()})
        else:
            answer(out, {"ok": True, "result": result})


def main() -> None:
    # The protocol owns the real stdout; anything printed by the code under test goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    serve_commands(sys.stdin, out)


if __name__ == "__main__":
    main()
