"""What ``python -m benchmarks`` prints when it is done: the run, the headline tables (cost per
query in the goals' scenario, throughput on a pool of 4), each goal with its verdict and
numbers, and how many measurements found one of our engines slower."""

from __future__ import annotations

from typing import Any

from .goals import Goal
from .plan import GOAL_VARIANT
from .report import cell, machine_lines, noise_line, ratio, table

__all__ = ["console"]


def console(results: dict[str, Any], goals: list[Goal], slower: list[dict[str, Any]]) -> list[str]:
    """What the command prints at the end: the headline tables, the goals, the slower list."""
    lines = [*machine_lines(results)]
    if "per_query_summary" in results:
        summary = results["per_query_summary"]
        rows = []
        for contender, variants in summary.items():
            cpu, wall = variants[GOAL_VARIANT]["cpu"], variants[GOAL_VARIANT]["wall"]
            rows.append(
                [
                    contender,
                    f"{cpu['contender']['spread'].median:.1f}",
                    f"{cpu['added']['spread'].median:+.1f}",
                    ratio(cpu["ratio"]["spread"]),
                    f"{wall['contender']['spread'].median:.1f}",
                    ratio(wall["ratio"]["spread"]),
                ]
            )
        lines += [f"Per query, {GOAL_VARIANT} per request, one thread:", ""]
        header = ["contender", "CPU us/query", "added us", "CPU x stock", "wall us/query"]
        lines += table([*header, "wall x stock"], rows)
        lines += [noise_line(summary), ""]
    if "throughput_summary" in results:
        rows = []
        for row in results["throughput_summary"]:
            if row["threads"] in (16, 64) and row["pool"] == 4:
                rows.append(
                    [
                        row["contender"],
                        f"{row['threads']}",
                        f"{row['work'] * 1000:g} ms",
                        cell(row, "rate"),
                        cell(row, "latency"),
                        str(row["failures"]),
                    ]
                )
        if rows:
            lines += ["Throughput on a pool of 4 (all cells in results.md):", ""]
            header = ["contender", "threads", "work", "req/s (x stock, range)", "p50 / p99 ms"]
            lines += table([*header, "failed"], rows, "lrrrrr")
    lines += ["Goals:", ""]
    for goal in goals:
        lines.append(f"  {goal.number}. {goal.verdict.upper():14} {goal.text}")
        lines.append(f"     {goal.numbers}")
    clear = sum(1 for entry in slower if entry["clear"])
    lines += [
        "",
        f"Slower than another contender: {len(slower)} measurements ({clear} beyond the "
        "spread); the list is in results.md.",
    ]
    return lines
