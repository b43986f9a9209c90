"""The throughput scenario: requests per second and latency under concurrency, and the
fairness of checkouts.

A request is a query, some non-database work (a sleep: that is the workload), a query, then
``request_finished`` as a real request ends. Each repeat starts one long-lived process per
contender; then, cell by cell, each contender runs the cell in turn, so that drift hits all
alike. Ratios to the stock pool are taken within a repeat, between neighbours in time.
"""

from __future__ import annotations

from typing import Any

from .contenders import REFERENCE, THROUGHPUT, Contender
from .plan import Cell, Plan
from .progress import Progress
from .summary import jain_index, ratio_spread, spread
from .worker import percentile
from .workers import WorkerProcess, started

__all__ = ["FAIRNESS_CELL", "alias_of", "merge_slices", "run", "spec", "summarize"]

#: The cells whose per-thread completions tell how fair checkouts are: 16 threads, pool 4.
FAIRNESS_CELL = (16, 4)


def alias_of(pool: int | None) -> str:
    return "direct" if pool is None else f"pool{pool}"


def spec(
    contender: Contender, python: str, common: dict[str, Any], plan: Plan
) -> tuple[str, str, dict[str, Any], dict[str, int]]:
    pools: list[int | None] = list(plan.sizes.pools) if contender.pooled else [None]
    databases = {alias_of(pool): common | contender.entry(pool or 0) for pool in pools}
    fill = {alias_of(pool): pool or 1 for pool in pools}
    return contender.name, python, databases, fill


def run(
    plan: Plan,
    common: dict[str, Any],
    pythons: dict[str, str],
    progress: Progress,
    cpus: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Raw results: per repeat, one entry per contender and measured cell."""
    contenders = plan.running(THROUGHPUT)
    schedule = plan.schedule()
    repeats: list[list[dict[str, Any]]] = []
    processes: list[dict[str, Any]] = []
    for repeat in range(plan.sizes.throughput_repeats):
        specs = [spec(c, pythons[c.venv], common, plan) for c in contenders]
        progress.say(f"{THROUGHPUT}: starting {len(specs)} processes (repeat {repeat + 1})")
        runs: list[dict[str, Any]] = []
        with started(specs, cpus) as workers:
            by_name: dict[str, WorkerProcess] = {}
            for contender, (worker, setup) in zip(contenders, workers, strict=True):
                by_name[contender.name] = worker
                processes.append({"contender": contender.name, "repeat": repeat, **setup})
            for position, measured in schedule:
                progress.step(THROUGHPUT, f"{position.label} (repeat {repeat + 1})")
                slices: dict[str, list[dict[str, Any]]] = {c.name: [] for c, _ in measured}
                count = {c.name: plan.slices(c, position) for c, _ in measured}
                for number in range(max(count.values())):
                    # A B C, C B A, ...: each contender as often early as late in the cell;
                    # those deciding a goal here go on alone for more slices.
                    order = measured if number % 2 == 0 else measured[::-1]
                    for contender, cell in order:
                        if number >= count[contender.name]:
                            continue
                        slices[contender.name].append(
                            by_name[contender.name].ask(
                                "throughput",
                                alias=alias_of(cell.pool),
                                threads=cell.threads,
                                work=cell.work,
                                duration=plan.slice_seconds,
                                keep_latencies=True,
                            )
                        )
                for contender, cell in measured:
                    runs.append(
                        {
                            "contender": contender.name,
                            "threads": cell.threads,
                            "pool": cell.pool,
                            "work": cell.work,
                            **merge_slices(slices[contender.name]),
                        }
                    )
        progress.end_step()
        repeats.append(runs)
    return {"reference": REFERENCE.name, "processes": processes, "repeats": repeats}


def merge_slices(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell's result from its slices' (the worker's ``throughput`` with its latencies)."""
    latencies = sorted(latency for one in slices for latency in one["latencies"])
    with_tail = sum(one["completed_with_tail"] for one in slices)
    cpu = sum(
        one["cpu_per_request"] * one["completed_with_tail"]
        for one in slices
        if one["cpu_per_request"] is not None
    )
    return {
        "duration": sum(one["duration"] for one in slices),
        "completed": sum(one["completed"] for one in slices),
        "done": sum(one["done"] for one in slices),
        "completed_with_tail": with_tail,
        "tail_seconds": max(one["tail_seconds"] for one in slices),
        "per_thread": [
            sum(counts) for counts in zip(*(one["per_thread"] for one in slices), strict=True)
        ],
        "latency": {
            "p50": percentile(latencies, 0.50),
            "p90": percentile(latencies, 0.90),
            "p99": percentile(latencies, 0.99),
            "max": latencies[-1] if latencies else None,
        },
        "cpu_per_request": cpu / with_tail if with_tail else None,
        "failures": sum(one["failures"] for one in slices),
        "failure_samples": sorted({s for one in slices for s in one["failure_samples"]})[:5],
        "slices": len(slices),
    }


def _find(
    runs: list[dict[str, Any]], contender: Contender, cell: Cell, plan: Plan
) -> dict[str, Any] | None:
    pool = plan.measured_pool(contender, cell.threads, cell.pool or 0)
    for entry in runs:
        if (
            entry["contender"] == contender.name
            and entry["threads"] == cell.threads
            and entry["pool"] == pool
            and entry["work"] == cell.work
        ):
            return entry
    return None


def summarize(raw: dict[str, Any], plan: Plan) -> list[dict[str, Any]]:
    """One row per grid position and contender: req/s, ratio to the stock pool, latency
    percentiles (ms), client CPU per request (us), failures, and per-thread completions.
    ``repeated``: the row repeats an earlier position's measurement (a cell that stands for
    another, see ``Plan.measured_pool``), shown in the tables and charts, counted once."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int, int | None, float]] = set()
    for position in plan.grid():
        for contender in plan.running(THROUGHPUT):
            entries = [_find(runs, contender, position, plan) for runs in raw["repeats"]]
            references = [_find(runs, REFERENCE, position, plan) for runs in raw["repeats"]]
            if any(entry is None for entry in entries):
                continue
            found = [entry for entry in entries if entry is not None]
            measured = (contender.name, position.threads, found[0]["pool"], position.work)
            rate = [entry["done"] / entry["duration"] for entry in found]
            row: dict[str, Any] = {
                "contender": contender.name,
                "threads": position.threads,
                "pool": position.pool,
                "work": position.work,
                "measured_pool": found[0]["pool"],
                "repeated": measured in seen,
                "rate": rate,
                "rate_spread": spread(rate),
                "failures": sum(entry["failures"] for entry in found),
                "failure_samples": sorted({s for e in found for s in e["failure_samples"]})[:5],
            }
            if all(entry is not None for entry in references):
                reference_rate = [r["done"] / r["duration"] for r in references if r]
                row["ratio"] = ratio_spread(rate, reference_rate)
            for name in ("p50", "p99"):
                latencies = [e["latency"][name] * 1000 for e in found if e["latency"][name]]
                row[name] = spread(latencies) if latencies else None
            cpu = [e["cpu_per_request"] * 1e6 for e in found if e["cpu_per_request"]]
            row["cpu"] = spread(cpu) if cpu else None
            if (position.threads, position.pool) == FAIRNESS_CELL:
                row["fairness"] = [
                    {
                        "min": min(e["per_thread"]),
                        "max": max(e["per_thread"]),
                        "jain": jain_index(e["per_thread"]),
                    }
                    for e in found
                ]
            seen.add(measured)
            rows.append(row)
    return rows
