"""The per-query scenario: what a contender costs per query, against the stock pool measured
in the same process.

Each repeat starts one process per contender (concurrently, before anything is timed), then
runs them one after the other (A B C ... A B C ...). Inside a process, the contender and the
stock pool alternate round by round. Per process, the median over rounds gives the contender's
and the reference's time per query; their ratio and difference ("added") are taken in that
process, and the report gives the median and min-max of those over the processes.
"""

from __future__ import annotations

import statistics
from typing import Any

from .contenders import PER_QUERY, REFERENCE, Contender, reference_entry
from .plan import PER_QUERY_POOL, PER_QUERY_VARIANTS, Plan
from .progress import Progress
from .summary import spread
from .workers import started

__all__ = ["run", "summarize"]

ALIAS, REFERENCE_ALIAS = "bench", "reference"


def _spec(
    contender: Contender, python: str, common: dict[str, Any]
) -> tuple[str, str, dict[str, Any], dict[str, int]]:
    databases = {
        ALIAS: common | contender.entry(PER_QUERY_POOL),
        REFERENCE_ALIAS: common | reference_entry(PER_QUERY_POOL),
    }
    fill = {ALIAS: PER_QUERY_POOL if contender.pooled else 1, REFERENCE_ALIAS: PER_QUERY_POOL}
    return contender.name, python, databases, fill


def run(
    plan: Plan,
    common: dict[str, Any],
    pythons: dict[str, str],
    progress: Progress,
    cpus: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Raw results: one entry per process, with every round's numbers."""
    contenders = plan.running(PER_QUERY)
    processes: list[dict[str, Any]] = []
    for repeat in range(plan.sizes.per_query_processes):
        specs = [_spec(c, pythons[c.venv], common) for c in contenders]
        progress.say(f"{PER_QUERY}: starting {len(specs)} processes (repeat {repeat + 1})")
        with started(specs, cpus) as workers:
            for contender, (worker, setup) in zip(contenders, workers, strict=True):
                progress.step(
                    PER_QUERY, f"{contender.name} (repeat {repeat + 1}, pid {setup['pid']})"
                )
                variants = worker.ask(
                    "per_query",
                    alias=ALIAS,
                    reference=REFERENCE_ALIAS,
                    variants=list(PER_QUERY_VARIANTS),
                    chunk_seconds=plan.sizes.chunk_seconds,
                    rounds=plan.sizes.per_query_rounds,
                )
                processes.append(
                    {"contender": contender.name, "repeat": repeat, **setup, "variants": variants}
                )
        progress.end_step()
    return {
        "reference": REFERENCE.name,
        "pool_size": PER_QUERY_POOL,
        "variants": list(PER_QUERY_VARIANTS),
        "processes": processes,
    }


def _process_figures(
    side: dict[str, list[float]], reference: dict[str, list[float]]
) -> dict[str, dict[str, float]]:
    """The process's figures: medians over rounds, the ratio and difference taken round by
    round (neighbours in time, so that drift cancels) before their median."""
    figures: dict[str, dict[str, float]] = {}
    for measure in ("cpu", "wall"):
        pairs = list(zip(side[measure], reference[measure], strict=True))
        figures[measure] = {
            "contender": statistics.median(side[measure]),
            "reference": statistics.median(reference[measure]),
            "ratio": statistics.median(mine / theirs for mine, theirs in pairs),
            "added": statistics.median(mine - theirs for mine, theirs in pairs),
        }
    return figures


def summarize(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per contender and variant, per measure (cpu, wall) and figure (contender, reference,
    ratio, added): the per-process values (``values``, in repeat order) and their spread;
    times in microseconds per query."""
    found: dict[str, dict[str, Any]] = {}
    for process in raw["processes"]:
        for variant, sides in process["variants"].items():
            figures = _process_figures(sides["contender"], sides["reference"])
            slot = found.setdefault(process["contender"], {}).setdefault(variant, {})
            for measure, values in figures.items():
                for figure, value in values.items():
                    scale = 1 if figure == "ratio" else 1e6
                    slot.setdefault(measure, {}).setdefault(figure, []).append(value * scale)
    for variants in found.values():
        for measures in variants.values():
            for figures in measures.values():
                for figure, values in figures.items():
                    figures[figure] = {"values": values, "spread": spread(values)}
    return found
