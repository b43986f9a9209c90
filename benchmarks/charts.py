"""The PNG charts of a run (matplotlib, headless): throughput against threads per contender,
latency percentiles, and the cost per query against the stock pool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .plan import sizes_from

__all__ = ["CHARTS", "draw"]

CHARTS = ("throughput.png", "latency.png", "per_query.png")
_OURS_STYLE = {"linewidth": 2.4}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display, no window
    import matplotlib.pyplot as plt

    return plt


def _grid_axes(plt: Any, sizes: Any, title: str) -> tuple[Any, dict[tuple[int, float], Any]]:
    figure, axes = plt.subplots(
        len(sizes.pools),
        len(sizes.works),
        figsize=(5.2 * len(sizes.works), 3.8 * len(sizes.pools)),
        squeeze=False,
        constrained_layout=True,
    )
    figure.suptitle(title)
    found = {}
    for i, pool in enumerate(sizes.pools):
        for j, work in enumerate(sizes.works):
            axis = axes[i][j]
            axis.set_title(f"pool {pool}, {work * 1000:g} ms of work per request")
            axis.set_xscale("log", base=2)
            axis.set_xticks(list(sizes.threads), [str(t) for t in sizes.threads])
            axis.set_xlabel("threads")
            axis.grid(True, alpha=0.3)
            found[(pool, work)] = axis
    return figure, found


def _series(rows: list[dict[str, Any]], name: str, pool: int, work: float, key: str) -> Any:
    points = sorted(
        (row["threads"], row[key].median)
        for row in rows
        if row["contender"] == name and row["pool"] == pool and row["work"] == work and row[key]
    )
    return [p[0] for p in points], [p[1] for p in points]


def throughput_chart(plt: Any, rows: list[dict[str, Any]], sizes: Any, path: Path) -> None:
    figure, axes = _grid_axes(
        plt, sizes, "Requests per second (median over repeats; higher is better)"
    )
    names = list(dict.fromkeys(row["contender"] for row in rows))
    for (pool, work), axis in axes.items():
        for name in names:
            x, y = _series(rows, name, pool, work, "rate_spread")
            style = _OURS_STYLE if name.startswith("real_pool") else {}
            axis.plot(x, y, marker="o", label=name, **style)
        axis.set_ylabel("requests/s")
        axis.set_ylim(bottom=0)
    axes[(sizes.pools[0], sizes.works[0])].legend(fontsize="small")
    figure.savefig(path, dpi=90)
    plt.close(figure)


def latency_chart(plt: Any, rows: list[dict[str, Any]], sizes: Any, path: Path) -> None:
    figure, axes = _grid_axes(
        plt, sizes, "Latency per request, ms: p50 (solid) and p99 (dashed); lower is better"
    )
    names = list(dict.fromkeys(row["contender"] for row in rows))
    colors = {name: f"C{number}" for number, name in enumerate(names)}
    for (pool, work), axis in axes.items():
        for name in names:
            for key, dash in (("p50", "-"), ("p99", "--")):
                x, y = _series(rows, name, pool, work, key)
                label = name if key == "p50" else None
                axis.plot(x, y, dash, marker=".", color=colors[name], label=label)
        axis.set_yscale("log")
        axis.set_ylabel("ms")
    axes[(sizes.pools[0], sizes.works[0])].legend(fontsize="small")
    figure.savefig(path, dpi=90)
    plt.close(figure)


def per_query_chart(plt: Any, summary: dict[str, Any], variants: list[str], path: Path) -> None:
    names = list(summary)
    figure, axes = plt.subplots(
        1, 2, figsize=(11, 0.45 * len(names) + 1.6), constrained_layout=True
    )
    figure.suptitle(
        "Time per query as a multiple of the stock pool's (median, min-max over processes)"
    )
    height = 0.8 / len(variants)
    for axis, measure in zip(axes, ("cpu", "wall"), strict=True):
        for number, variant in enumerate(variants):
            medians: list[float] = []
            positions: list[float] = []
            errors: list[list[float]] = [[], []]
            for index, name in enumerate(names):
                found = summary[name].get(variant)
                if not found:
                    continue
                ratio = found[measure]["ratio"]["spread"]
                positions.append(index + number * height)
                medians.append(ratio.median)
                errors[0].append(ratio.median - ratio.low)
                errors[1].append(ratio.high - ratio.median)
            axis.barh(positions, medians, height=height, xerr=errors, label=variant, capsize=2)
        axis.axvline(1.0, color="black", linewidth=0.8)
        axis.set_yticks([i + 0.4 - height / 2 for i in range(len(names))], names)
        axis.invert_yaxis()
        axis.set_xscale("log")
        low, high = min(0.5, axis.get_xlim()[0]), max(2.0, axis.get_xlim()[1])
        ticks = [2.0**power for power in range(-6, 10) if low <= 2.0**power <= high]
        axis.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
        axis.xaxis.set_minor_formatter(plt.NullFormatter())
        axis.set_xlim(low, high)
        axis.set_title("client CPU" if measure == "cpu" else "wall time")
        axis.set_xlabel("x the stock pool (log scale; 1 = the same)")
        axis.grid(True, axis="x", alpha=0.3)
    axes[1].legend(fontsize="small")
    figure.savefig(path, dpi=90)
    plt.close(figure)


def draw(results: dict[str, Any], directory: Path) -> list[Path]:
    """Draw what the run measured into ``directory``; the paths written."""
    plt = _pyplot()
    written = []
    sizes = sizes_from(results["sizes"])
    if "throughput_summary" in results:
        rows = results["throughput_summary"]
        throughput_chart(plt, rows, sizes, directory / "throughput.png")
        latency_chart(plt, rows, sizes, directory / "latency.png")
        written += [directory / "throughput.png", directory / "latency.png"]
    if "per_query_summary" in results:
        variants = [variant["name"] for variant in results["per_query"]["variants"]]
        per_query_chart(plt, results["per_query_summary"], variants, directory / "per_query.png")
        written.append(directory / "per_query.png")
    return written
