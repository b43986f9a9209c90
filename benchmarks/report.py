"""The tables of a run, in Markdown: results.md (included by docs/performance.md) and the
part of it the command prints."""

from __future__ import annotations

from typing import Any

from .checkout_stats import table as stats_table
from .contenders import BY_NAME, REFERENCE
from .goals import Goal
from .placement import Placement
from .plan import GOAL_VARIANT, PER_QUERY_VARIANTS, sizes_from
from .summary import Spread, spread

__all__ = ["cell", "goals_table", "machine_lines", "markdown", "noise_line", "ratio", "table"]


def ratio(value: Spread | None) -> str:
    return "-" if value is None else f"{value.median:.2f}x ({value.low:.2f}-{value.high:.2f})"


def table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def goals_table(goals: list[Goal]) -> list[str]:
    rows = [[str(g.number), g.text, f"**{g.verdict}**", g.numbers] for g in goals]
    return table(["goal", "what", "verdict", "numbers (this run)"], rows, "llll")


def machine_lines(results: dict[str, Any]) -> list[str]:
    m, run = results["machine"], results["run"]
    versions = results.get("versions", {})
    lines = [
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, {m['os']} "
        f"(kernel {m['kernel']}), Python {m['python']}",
        f"- Load average (1, 5, 15 min): {', '.join(map(str, run['load_before']))} before, "
        f"{', '.join(map(str, run['load_after']))} after",
        f"- PostgreSQL {results['server']['version']} ({results['server']['source']}), "
        f"max_connections {results['server']['max_connections']}",
        f"- Placement: {placement_text(results.get('placement'))}",
        f"- Run: {run['started']} UTC, {run['seconds']:.0f} s, "
        f"`python -m benchmarks {run['arguments']}`".rstrip(),
    ]
    for venv, found in versions.items():
        packages = ", ".join(f"{name} {version}" for name, version in found.items() if version)
        lines.append(f"- Packages ({venv} venv): {packages}")
    return [*lines, ""]


def placement_text(found: dict[str, Any] | None) -> str:
    """The placement a results.json recorded, in words (runs before it was recorded: none)."""
    if found is None:
        return "not recorded (not pinned)"
    return Placement.from_json(found).describe()


def noise_line(summary: dict[str, Any]) -> str:
    """The stock pool against itself in its own processes: how far apart two identical
    contenders land in this run, the yardstick for every other ratio."""
    if REFERENCE.name not in summary:
        return ""
    found = summary[REFERENCE.name][GOAL_VARIANT]
    return (
        f"The noise of this run: the stock pool against itself ({GOAL_VARIANT}) came out at "
        f"{ratio(found['cpu']['ratio']['spread'])} in client CPU and "
        f"{ratio(found['wall']['ratio']['spread'])} in wall time."
    )


def per_query_lines(summary: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    processes = len({p["repeat"] for p in raw["processes"]})
    lines = [
        f"Medians over {processes} processes per contender; ranges are min-max over those "
        "processes; x stock is the ratio to Django's stock pool measured in the same process. "
        + noise_line(summary),
        "",
    ]
    for variant in PER_QUERY_VARIANTS:
        name = variant["name"]
        rows = []
        for contender, variants in summary.items():
            if name not in variants:
                continue
            cpu, wall = variants[name]["cpu"], variants[name]["wall"]
            rows.append(
                [
                    f"`{contender}`",
                    f"{cpu['contender']['spread'].median:.1f}",
                    f"{cpu['added']['spread'].median:+.1f}",
                    ratio(cpu["ratio"]["spread"]),
                    f"{wall['contender']['spread'].median:.1f}",
                    ratio(wall["ratio"]["spread"]),
                ]
            )
        lines += [f"#### {name} per request", ""]
        header = ["contender", "CPU us/query", "added us", "CPU x stock", "wall us/query"]
        lines += table([*header, "wall x stock"], rows)
    return lines


def reset_lines(summary: dict[str, Any]) -> list[str]:
    rows = []
    for engine in ("real_pool", "real_pool_dj"):
        with_reset = f"{engine}+reset"
        if engine not in summary or with_reset not in summary:
            continue
        for variant in PER_QUERY_VARIANTS:
            name = variant["name"]
            plain = summary[engine][name]["cpu"]["added"]["spread"]
            reset = summary[with_reset][name]["cpu"]["added"]["spread"]
            wall_plain = summary[engine][name]["wall"]["added"]["spread"]
            wall_reset = summary[with_reset][name]["wall"]["added"]["spread"]
            rows.append(
                [
                    f"`{engine}`",
                    name,
                    f"{reset.median - plain.median:+.1f}",
                    f"{wall_reset.median - wall_plain.median:+.1f}",
                ]
            )
    if not rows:
        return []
    intro = (
        "What the reset on return (`DISCARD ALL` on every connection given back) adds per "
        "query: the difference of the medians of each one's added time over the stock pool."
    )
    return [intro, "", *table(["engine", "request", "CPU us/query", "wall us/query"], rows)]


def cell(row: dict[str, Any] | None, kind: str) -> str:
    if row is None:
        return "-"
    if kind == "rate":
        ratio = row.get("ratio")
        text = f"{row['rate_spread'].median:.0f}"
        return text + (f" ({ratio.median:.2f}x, {ratio.low:.2f}-{ratio.high:.2f})" if ratio else "")
    if kind == "latency":
        p50, p99 = row["p50"], row["p99"]
        return "-" if p50 is None else f"{p50.median:.1f} / {p99.median:.1f}"
    cpu = row["cpu"]
    return "-" if cpu is None else f"{cpu.median:.0f}"


def throughput_lines(rows: list[dict[str, Any]], sizes: Any) -> list[str]:
    lines = [
        f"{sizes.cell_seconds:g} s per cell in {sizes.throughput_slices} slices, "
        f"{sizes.throughput_repeats} repeats, contenders alternating slice by slice; medians "
        "over the repeats, the ratio to the stock pool taken "
        "within each repeat (range min-max). A pool of 16 serves 1 or 4 threads as a pool of 4 "
        "does (no thread waits), so those cells ran once, at pool 4; the contenders without a "
        "pool ran once per thread count and work. In the cells a goal reads, the contenders "
        f"that decide it go on alone for more slices: {sizes.goal_3_seconds:g} s per repeat "
        f"at 16 threads, pool 4, 10 ms of work (goal 3), {sizes.goal_4_seconds:g} s at 16 "
        "and 64 threads with no work (goal 4). Requests/s count the request each thread had "
        "in flight at the end of a slice for the share of it that ran by then.",
        "",
    ]
    titles = {
        "rate": "requests/s (x stock, range)",
        "latency": "latency p50 / p99, ms",
        "cpu": "client CPU per request, us",
    }
    names = list(dict.fromkeys(row["contender"] for row in rows))
    for pool in sizes.pools:
        for work in sizes.works:
            for kind, title in titles.items():
                lines += [f"#### Pool {pool}, {work * 1000:g} ms of work: {title}", ""]
                table_rows = []
                for name in names:
                    cells = []
                    for threads in sizes.threads:
                        match = [
                            r
                            for r in rows
                            if (r["contender"], r["threads"], r["pool"], r["work"])
                            == (name, threads, pool, work)
                        ]
                        cells.append(cell(match[0] if match else None, kind))
                    table_rows.append([f"`{name}`", *cells])
                columns = [f"{t} thread{'s' if t > 1 else ''}" for t in sizes.threads]
                lines += table(["contender", *columns], table_rows)
    return lines


def fairness_lines(rows: list[dict[str, Any]]) -> list[str]:
    table_rows = []
    for row in rows:
        if "fairness" not in row:
            continue
        found = row["fairness"]
        low = spread([f["min"] for f in found]).median
        high = spread([f["max"] for f in found]).median
        jain = spread([f["jain"] for f in found])
        table_rows.append(
            [
                f"`{row['contender']}`",
                f"{row['work'] * 1000:g} ms",
                f"{low:.0f} - {high:.0f}",
                f"{jain.median:.3f} ({jain.low:.3f}-{jain.high:.3f})",
            ]
        )
    if not table_rows:
        return []
    intro = (
        "Per-thread completions at 16 threads on a pool of 4 (median over repeats of the "
        "least and the most any thread completed), and Jain's index (1.0: every thread "
        "completed as many; 1/16 = 0.0625: one thread did everything)."
    )
    header = ["contender", "work", "completions per thread", "Jain's index"]
    return [intro, "", *table(header, table_rows, "llrr")]


def failure_lines(rows: list[dict[str, Any]]) -> list[str]:
    failed = [row for row in rows if row["failures"]]
    if not failed:
        return ["No request failed in any throughput cell (none timed out, none was dropped).", ""]
    table_rows = [
        [
            f"`{row['contender']}`",
            f"{row['threads']} threads, pool {row['pool']}, {row['work'] * 1000:g} ms",
            str(row["failures"]),
            "; ".join(row["failure_samples"])[:200],
        ]
        for row in failed
    ]
    return table(["contender", "cell", "failed requests", "errors"], table_rows, "llrl")


def stats_lines(stats: dict[str, Any]) -> list[str]:
    return [
        f"{stats['rounds']} rounds of {stats['checkouts']} checkouts of one connection, per "
        "checkout and return (best round, the least disturbed, and the median):",
        "",
        *stats_table(stats["pool"]),
        "",
        "The counters alone, around a trivial `get()`:",
        "",
        *stats_table(stats["counters_alone"]),
        "",
    ]


def server_start_lines(found: dict[str, Any]) -> list[str]:
    rows = []
    for name, measures in found["times"].items():
        cold, warm = spread(measures["cold"]), spread(measures["warm"])
        database = spread(measures["database"]).scaled(1000)
        rows.append(
            [
                name,
                f"{cold.median:.2f} ({cold.low:.2f}-{cold.high:.2f})",
                f"{warm.median:.2f} ({warm.low:.2f}-{warm.high:.2f})",
                f"{database.median:.1f} ({database.low:.1f}-{database.high:.1f})",
            ]
        )
    return [
        f"PostgreSQL {found['postgresql']}, median (min-max) of {found['repeat']} runs; the "
        f"first start with an empty template cache took {found['first_run']:.2f} s.",
        "",
        *table(["server", "cold s", "warm s", "per-worker database ms"], rows),
    ]


def slower_lines(found: list[dict[str, Any]]) -> list[str]:
    if not found:
        return ["Neither engine was slower than another contender in any measurement.", ""]
    rows = [
        [
            entry["scenario"],
            entry["measure"],
            f"`{entry['ours']}`",
            f"`{entry['other']}`",
            f"{entry['ours_value'].median:.2f}",
            f"{entry['other_value'].median:.2f}",
            "yes" if entry["clear"] else "no (ranges overlap)",
        ]
        for entry in found
    ]
    header = ["where", "measure", "ours", "slower than", "ours", "theirs", "beyond the spread"]
    return table(header, rows, "llllrrl")


def contender_lines(names: list[str]) -> list[str]:
    rows = [[f"`{name}`", BY_NAME[name].description] for name in names]
    return table(["contender", "what"], rows, "ll")


def markdown(results: dict[str, Any], goals: list[Goal], slower: list[dict[str, Any]]) -> str:
    """results.md: every table of the run (written by ``python -m benchmarks``)."""
    lines = ["<!-- Written by python -m benchmarks; do not edit by hand. -->", ""]
    lines += ["### The run", "", *machine_lines(results)]
    lines += ["### Goals", "", *goals_table(goals)]
    lines += ["### Contenders", "", *contender_lines(results["contenders"])]
    if "per_query" in results:
        lines += [
            "### Cost per query",
            "",
            *per_query_lines(results["per_query_summary"], results["per_query"]),
        ]
        lines += ["### Cost of the reset on return", "", *reset_lines(results["per_query_summary"])]
    if "throughput" in results:
        rows = results["throughput_summary"]
        lines += [
            "### Throughput and latency",
            "",
            *throughput_lines(rows, sizes_from(results["sizes"])),
        ]
        lines += ["### Fairness of checkouts", "", *fairness_lines(rows)]
        lines += ["### Failures", "", *failure_lines(rows)]
    if "stats" in results:
        lines += ["### Cost of the checkout stats", "", *stats_lines(results["stats"])]
    if "server_start" in results:
        lines += ["### Server start", "", *server_start_lines(results["server_start"])]
    lines += ["### Where our engines are slower", "", *slower_lines(slower)]
    return "\n".join(lines).rstrip() + "\n"
