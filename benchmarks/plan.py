"""What one run measures: the scenarios, the contenders, and how long each measurement lasts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .contenders import CONTENDERS, PER_QUERY, THROUGHPUT, V110, Contender

__all__ = [
    "DEFAULT",
    "GOAL_CELLS",
    "PER_QUERY_VARIANTS",
    "QUICK",
    "SCENARIOS",
    "THROUGHPUT_ORDER",
    "Plan",
    "Sizes",
]

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
#: The contenders whose numbers decide goal 3 (each engine against 1.1.0's on the same pool,
#: and the stock pool) and goal 4 (each engine against the stock pool).
_GOAL_3 = ("stock_pool", "real_pool", "real_pool_dj", "1.1.0", "1.1.0_dj")
_GOAL_4 = ("stock_pool", "real_pool", "real_pool_dj")
#: The order contenders run in within a throughput slice (the next slice reverses it): every
#: pair whose ratio a goal reads runs side by side, our engines each between the stock pool
#: and its 1.1.0 counterpart. A slice hits its neighbours alike more than a contender four
#: slices away (in a run in that order, the first engine against 1.1.0 came out 0.99x four
#: apart and 1.02x side by side; the ratio of neighbouring slices spreads less, 4.3 % against
#: 5 % and more).
THROUGHPUT_ORDER = (
    "persistent",
    "no_pool",
    "dbcp",
    "1.1.0_dj",
    "real_pool_dj",
    "stock_pool",
    "real_pool",
    "1.1.0",
)
#: The throughput positions (threads, pool, seconds of work) a goal reads: the goal's number
#: and the contenders that decide it there.
GOAL_CELLS: dict[tuple[int, int, float], tuple[int, tuple[str, ...]]] = {
    (16, 4, 0.010): (3, _GOAL_3),
    (16, 4, 0.0): (4, _GOAL_4),
    (64, 4, 0.0): (4, _GOAL_4),
    (16, 16, 0.0): (4, _GOAL_4),
    (64, 16, 0.0): (4, _GOAL_4),
}


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
    #: slice (A B C, then C B A: an even number puts every contender as early as late on
    #: average): the machine's drift and the scheduler's placement of threads change within
    #: seconds, and hit every contender alike only when their runs interleave finely.
    throughput_slices: int = 2
    #: Per repeat, the seconds the contenders that decide a goal spend in that goal's cells,
    #: in more slices of the same length (the others stop after ``throughput_slices``). Goal
    #: 3 asks for a lead over 1.1.0 where both serve what 16 sleeping threads ask for: they
    #: are about a percent apart, and the ratio of one 0.25 s slice pair spreads by 3.5 %
    #: (sd). Goal 4's cells spread by 15 to 20 % per pair, as the machine's speed moves from
    #: one slice to the next, against a 10 % margin. The spread shrinks with the time measured.
    goal_3_seconds: float = 1.5
    goal_4_seconds: float = 1.0
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
    goal_3_seconds=0.15,
    goal_4_seconds=0.15,
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

    @property
    def slice_seconds(self) -> float:
        return self.sizes.cell_seconds / self.sizes.throughput_slices

    def slices(self, contender: Contender, position: Cell) -> int:
        """How many slices ``contender`` runs at ``position``: more where it decides a goal."""
        found = GOAL_CELLS.get((position.threads, position.pool or 0, position.work))
        if found is None or contender.name not in found[1]:
            return self.sizes.throughput_slices
        seconds = {3: self.sizes.goal_3_seconds, 4: self.sizes.goal_4_seconds}[found[0]]
        base = self.sizes.throughput_slices
        # The extra slices come in pairs (C B A, A B C): every contender stays as early as
        # late on average, whatever --cell-seconds and --slices make of the goal's seconds.
        extra = max(0.0, seconds / self.slice_seconds - base)
        return base + 2 * round(extra / 2)

    def grid(self) -> list[Cell]:
        """Every position of the throughput grid, in the order the schedule runs them."""
        return [
            Cell(threads, pool, work)
            for pool in self.sizes.pools
            for work in self.sizes.works
            for threads in self.sizes.threads
        ]

    def _throughput_order(self) -> list[Contender]:
        rank = {name: number for number, name in enumerate(THROUGHPUT_ORDER)}
        return sorted(self.running(THROUGHPUT), key=lambda c: rank.get(c.name, len(rank)))

    def schedule(self) -> list[tuple[Cell, list[tuple[Contender, Cell]]]]:
        """The throughput grid in the order it runs, each position with the contenders that
        measure something new there (and the cell they measure): contenders alternate cell by
        cell, and a cell standing for another (see ``measured_pool``) runs only once."""
        found: list[tuple[Cell, list[tuple[Contender, Cell]]]] = []
        done: set[tuple[str, Cell]] = set()
        for position in self.grid():
            runs = []
            for contender in self._throughput_order():
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
            slices = sum(
                self.slices(contender, position)
                for position, contenders in schedule
                for contender, _ in contenders
            )
            per_step = slices * (self.slice_seconds + 0.1) / len(schedule)
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
