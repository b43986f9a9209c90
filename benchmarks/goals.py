"""The issue's goals, evaluated on one run, and where our engines are slower than another.

Each goal is met or not met with the numbers that decide it; a goal whose measurements were
not part of the run (a scenario or contender left out) says what it needed instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .contenders import OURS, REFERENCE
from .plan import GOAL_VARIANT, Cell
from .summary import Spread, ratio_spread

__all__ = ["Goal", "evaluate", "slower_than"]

#: Each engine of ours and 1.1.0's engine on the same pool.
PREVIOUS = {"real_pool": "1.1.0", "real_pool_dj": "1.1.0_dj"}


@dataclass(frozen=True)
class Goal:
    number: int
    text: str
    met: bool | None  # None: not evaluated
    numbers: str

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT MET", None: "not evaluated"}[self.met]


def _values(per_query: dict[str, Any], contender: str, measure: str, figure: str) -> Any:
    return per_query[contender][GOAL_VARIANT][measure][figure]


def goal_1(per_query: dict[str, Any]) -> Goal:
    text = (
        "real_pool's added client CPU per query over the stock pool at most half of 1.1.0's "
        f"(one thread, {GOAL_VARIANT} per request outside atomic)"
    )
    if "real_pool" not in per_query or "1.1.0" not in per_query:
        return Goal(1, text, None, "needs the per_query scenario with real_pool and 1.1.0")
    ours = _values(per_query, "real_pool", "cpu", "added")
    theirs = _values(per_query, "1.1.0", "cpu", "added")
    mine, previous = ours["spread"], theirs["spread"]
    if previous.median <= 0:
        return Goal(1, text, None, f"1.1.0 added {previous} us: no cost to halve, in this run")
    count = min(len(ours["values"]), len(theirs["values"]))
    ratio = ratio_spread(ours["values"][:count], theirs["values"][:count])
    half = mine.median / previous.median
    numbers = (
        f"real_pool adds {mine} us/query (median, min-max over {mine.count} processes), "
        f"1.1.0 adds {previous} us: {half:.2f}x (per repeat {ratio.low:.2f} to {ratio.high:.2f}), "
        "goal <= 0.50x"
    )
    return Goal(1, text, half <= 0.5, numbers)


def goal_2(per_query: dict[str, Any]) -> Goal:
    text = "real_pool_dj (PRE_PING on) at most 1.5x the stock pool's client CPU per query"
    if "real_pool_dj" not in per_query:
        return Goal(2, text, None, "needs the per_query scenario with real_pool_dj")
    ratio: Spread = _values(per_query, "real_pool_dj", "cpu", "ratio")["spread"]
    numbers = f"{ratio}x the stock pool in the same process (median, min-max), goal <= 1.50x"
    return Goal(2, text, ratio.median <= 1.5, numbers)


def _row(rows: list[dict[str, Any]], contender: str, threads: int, pool: int, work: float) -> Any:
    for row in rows:
        if (row["contender"], row["threads"], row["pool"], row["work"]) == (
            contender,
            threads,
            pool,
            work,
        ):
            return row
    return None


def goal_3(rows: list[dict[str, Any]]) -> Goal:
    text = "throughput at 16 threads, pool 4, 10 ms of work >= 1.1.0's and >= 3.5x the stock pool"
    parts, verdicts = [], []
    for ours in OURS:
        mine = _row(rows, ours, 16, 4, 0.010)
        previous = _row(rows, PREVIOUS[ours], 16, 4, 0.010)
        if mine is None or previous is None or "ratio" not in mine:
            parts.append(f"{ours}: needs {ours}, {PREVIOUS[ours]} and {REFERENCE.name}")
            continue
        count = min(len(mine["rate"]), len(previous["rate"]))
        versus = ratio_spread(mine["rate"][:count], previous["rate"][:count])
        verdicts.append(versus.median >= 1.0 and mine["ratio"].median >= 3.5)
        parts.append(
            f"{ours} {mine['rate_spread'].median:.0f} req/s: {versus}x {PREVIOUS[ours]}, "
            f"{mine['ratio']}x stock"
        )
    met = all(verdicts) if verdicts else None
    return Goal(3, text, met, "; ".join(parts) + " (goals >= 1.00x and >= 3.50x)")


def goal_4(rows: list[dict[str, Any]], pools: tuple[int, ...]) -> Goal:
    text = "with no non-database work, >= 0.9x the stock pool at 16 and 64 threads"
    parts, verdicts = [], []
    for ours in OURS:
        for pool in pools:
            for threads in (16, 64):
                row = _row(rows, ours, threads, pool, 0.0)
                if row is None or "ratio" not in row:
                    continue
                verdicts.append(row["ratio"].median >= 0.9)
                parts.append(f"{ours} {threads}t/pool {pool}: {row['ratio']}x")
    if not verdicts:
        return Goal(4, text, None, "needs the throughput scenario at 16 and 64 threads")
    return Goal(4, text, all(verdicts), "; ".join(parts) + " (goal >= 0.90x each)")


def evaluate(
    per_query: dict[str, Any] | None, rows: list[dict[str, Any]] | None, pools: tuple[int, ...]
) -> list[Goal]:
    per_query, rows = per_query or {}, rows or []
    return [goal_1(per_query), goal_2(per_query), goal_3(rows), goal_4(rows, pools)]


def slower_than(
    per_query: dict[str, Any] | None, rows: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Every measurement where one of our engines did worse than another contender: more
    time per query (CPU or wall, as a ratio to the stock pool in the same process), or fewer
    requests per second. ``clear``: the two ranges over processes or repeats do not overlap."""
    found: list[dict[str, Any]] = []
    per_query = per_query or {}
    others = [name for name in per_query if not name.startswith(OURS)]
    for ours in (name for name in OURS if name in per_query):
        for other in others:
            for variant, measures in per_query[other].items():
                for measure in ("cpu", "wall"):
                    mine = per_query[ours][variant][measure]["ratio"]["spread"]
                    theirs = measures[measure]["ratio"]["spread"]
                    if mine.median > theirs.median:
                        found.append(
                            {
                                "scenario": f"per query, {variant}",
                                "measure": f"{measure} per query (x stock)",
                                "ours": ours,
                                "other": other,
                                "ours_value": mine,
                                "other_value": theirs,
                                "clear": not mine.overlaps(theirs),
                            }
                        )
    measured = [row for row in rows or [] if not row.get("repeated")]
    for row in measured:
        if row["contender"] not in OURS:
            continue
        for neighbour in measured:
            same_cell = (neighbour["threads"], neighbour["pool"], neighbour["work"]) == (
                row["threads"],
                row["pool"],
                row["work"],
            )
            if not same_cell or neighbour["contender"] in OURS:
                continue
            mine, theirs = row["rate_spread"], neighbour["rate_spread"]
            if mine.median < theirs.median:
                found.append(
                    {
                        "scenario": "throughput, "
                        + Cell(row["threads"], row["pool"], row["work"]).label,
                        "measure": "req/s",
                        "ours": row["contender"],
                        "other": neighbour["contender"],
                        "ours_value": mine,
                        "other_value": theirs,
                        "clear": not mine.overlaps(theirs),
                    }
                )
    return found
