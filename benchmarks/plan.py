"""What one run measures: the scenarios, the contenders, and how long each measurement lasts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .contenders import CONTENDERS, PER_QUERY, THROUGHPUT, V110, Contender

__all__ = ["DEFAULT", "PER_QUERY_VARIANTS", "QUICK", "SCENARIOS", "Plan", "Sizes"]

#: Every scenario, in the order they run.
SCENARIOS = (PER_QUERY, THROUGHPUT, "stats", "server_start")
#: Per-query requests: 1 or 10 ``SELECT %s``, outside or inside one ``atomic()``.
PER_QUERY_VARIANTS: tuple[dict[str, Any], ...] = (
    {"name": "1 query", "queries": 1, "atomic": False},
    {"name": "10 queries", "queries": 10, "atomic": False},
    {"name": "1 query in atomic", "queries": 1, "atomic": True},
    {"name": "10 queries in atomic", "queries": 10, "atomic": True},
)
#: The variant the goals read (the issue's own measurement).
GOAL_VARIANT = "10 queries"
#: One thread never holds more than one connection: the per-query pools are small.
PER_QUERY_POOL = 4


@dataclass(frozen=True)
class Sizes:
    """How many processes, rounds and seconds each scenario takes."""

    #: Each process draws its own placement of its threads and its servers' processes on
    #: the machine's cores, which moves its stock pool by up to 2x and a contender's added
    #: cost by 20 us and more: the median over 8 processes draws 8 times, with fewer rounds.
    per_query_processes: int = 8
    #: Many short chunks rather than a few long ones: a burst of noise on this kind of
    #: machine lasts tens of milliseconds and spoils one pair of chunks, which the median
    #: over 10 pairs ignores and the median over 5 did not.
    per_query_rounds: int = 10
    chunk_seconds: float = 0.015
    throughput_repeats: int = 4
    cell_seconds: float = 0.5
    #: Each cell's seconds are cut in this many slices, the contenders alternating slice by
    #: slice: the machine's drift and the scheduler's placement of threads change within
    #: seconds, and hit every contender alike only when their runs interleave finely.
    throughput_slices: int = 3
    threads: tuple[int, ...] = (1, 4, 16, 64)
    pools: tuple[int, ...] = (4, 16)
    works: tuple[float, ...] = (0.0, 0.010)
    stats_checkouts: int = 10000
    stats_rounds: int = 5
    server_start_repeats: int = 3


DEFAULT = Sizes()
#: For the tests and a first look: every code path, a fraction of the time; numbers are noise.
QUICK = Sizes(
    per_query_processes=2,
    per_query_rounds=2,
    chunk_seconds=0.01,
    throughput_repeats=1,
    cell_seconds=0.15,
    throughput_slices=1,
    threads=(1, 4),
    pools=(4,),
    works=(0.0, 0.010),
    stats_checkouts=500,
    stats_rounds=2,
    server_start_repeats=1,
)


@dataclass(frozen=True)
class Cell:
    """One throughput measurement: threads, pool size (None: no pool), seconds of work."""

    threads: int
    pool: int | None
    work: float

    @property
    def label(self) -> str:
        pool = "no pool" if self.pool is None else f"pool {self.pool}"
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        return f"{threads}, {pool}, {self.work * 1000:g} ms work"


@dataclass(frozen=True)
class Plan:
    scenarios: tuple[str, ...]
    contenders: tuple[Contender, ...]
    sizes: Sizes

    @classmethod
    def make(
        cls,
        *,
        scenarios: tuple[str, ...] = SCENARIOS,
        contenders: tuple[str, ...] | None = None,
        quick: bool = False,
        **overrides: Any,
    ) -> Plan:
        unknown = set(scenarios) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenario {sorted(unknown)}; choose among {SCENARIOS}")
        chosen = CONTENDERS
        if contenders is not None:
            by_name = {contender.name: contender for contender in CONTENDERS}
            missing = [name for name in contenders if name not in by_name]
            if missing:
                raise ValueError(f"unknown contender {missing}; choose among {list(by_name)}")
            chosen = tuple(c for c in CONTENDERS if c.name in contenders)
        sizes = replace(QUICK if quick else DEFAULT, **overrides)
        return cls(tuple(s for s in SCENARIOS if s in scenarios), chosen, sizes)

    def running(self, scenario: str) -> tuple[Contender, ...]:
        if scenario not in self.scenarios:
            return ()
        return tuple(c for c in self.contenders if scenario in c.scenarios)

    @property
    def needs_previous_release(self) -> bool:
        return any(
            c.venv == V110 for scenario in (PER_QUERY, THROUGHPUT) for c in self.running(scenario)
        )

    def measured_pool(self, contender: Contender, threads: int, pool: int) -> int | None:
        """The pool size whose cell stands for ``pool``: none without a pool, and the smallest
        pool that already has a connection per thread (pool 16 serves 4 threads as pool 4 does:
        no thread ever waits, at most 4 connections are out)."""
        if not contender.pooled:
            return None
        enough = [size for size in self.sizes.pools if threads <= size < pool]
        return min(enough) if enough else pool

    def grid(self) -> list[Cell]:
        """Every position of the throughput grid, in the order the schedule runs them."""
        return [
            Cell(threads, pool, work)
            for pool in self.sizes.pools
            for work in self.sizes.works
            for threads in self.sizes.threads
        ]

    def schedule(self) -> list[tuple[Cell, list[tuple[Contender, Cell]]]]:
        """The throughput grid in the order it runs, each position with the contenders that
        measure something new there (and the cell they measure): contenders alternate cell by
        cell, and a cell standing for another (see ``measured_pool``) runs only once."""
        found: list[tuple[Cell, list[tuple[Contender, Cell]]]] = []
        done: set[tuple[str, Cell]] = set()
        for position in self.grid():
            runs = []
            for contender in self.running(THROUGHPUT):
                pool = self.measured_pool(contender, position.threads, position.pool or 0)
                cell = Cell(position.threads, pool, position.work)
                if (contender.name, cell) not in done:
                    done.add((contender.name, cell))
                    runs.append((contender, cell))
            if runs:
                found.append((position, runs))
        return found

    def connections_needed(self) -> int:
        """The most connections open at once: every idle worker's pools plus the busy one."""
        per_query = sum(
            (PER_QUERY_POOL if c.pooled else 1) + PER_QUERY_POOL for c in self.running(PER_QUERY)
        )
        pooled = [c for c in self.running(THROUGHPUT) if c.pooled]
        throughput = len(pooled) * sum(self.sizes.pools) + 2 * max(self.sizes.threads)
        return max(per_query, throughput if self.running(THROUGHPUT) else 0)

    def estimates(self) -> dict[str, tuple[int, float]]:
        """Per scenario: the number of progress steps and the seconds one is expected to take."""
        s = self.sizes
        found: dict[str, tuple[int, float]] = {}
        per_query = self.running(PER_QUERY)
        if per_query:
            per_process = len(PER_QUERY_VARIANTS) * s.chunk_seconds * (2 + 2 * s.per_query_rounds)
            found[PER_QUERY] = (len(per_query) * s.per_query_processes, per_process + 1.0)
        schedule = self.schedule()
        if schedule:
            runs = sum(len(contenders) for _, contenders in schedule)
            per_step = runs * (s.cell_seconds + 0.12 * s.throughput_slices) / len(schedule)
            found[THROUGHPUT] = (len(schedule) * s.throughput_repeats, per_step)
        if "stats" in self.scenarios:
            found["stats"] = (1, 2.0 + 4 * (s.stats_rounds + 1) * s.stats_checkouts * 25e-6)
        if "server_start" in self.scenarios:
            found["server_start"] = (1, 3.0 + 3.0 * s.server_start_repeats)
        return found


def sizes_from(found: dict[str, Any]) -> Sizes:
    """The Sizes a results.json recorded (JSON turned its tuples into lists)."""
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in found.items()}
    return Sizes(**fields)
