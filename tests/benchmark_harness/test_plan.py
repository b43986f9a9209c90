"""plan.py: which cells run, how many connections the server needs (database-free)."""

from __future__ import annotations

import pytest

from benchmarks.contenders import BY_NAME, CONTENDERS, OURS, REFERENCE
from benchmarks.plan import DEFAULT, GOAL_CELLS, QUICK, THROUGHPUT_ORDER, Cell, Plan


def test_every_issue_contender_is_there_and_the_reference_is_the_stock_pool() -> None:
    names = {c.name for c in CONTENDERS}
    assert names >= {"persistent", "no_pool", "stock_pool", "dbcp", *OURS, "1.1.0"}
    assert REFERENCE.name == "stock_pool"
    assert BY_NAME["1.1.0"].venv != BY_NAME["real_pool"].venv


def test_pooled_entries_open_every_connection_up_front_and_never_persist() -> None:
    for contender in CONTENDERS:
        entry = contender.entry(16)
        if not contender.pooled:
            continue
        assert entry["CONN_MAX_AGE"] == 0, contender.name
        if "POOL_OPTIONS" in entry:
            assert entry["POOL_OPTIONS"]["POOL_SIZE"] == 16
            assert entry["POOL_OPTIONS"]["MAX_OVERFLOW"] == 0
            if contender.name != "real_pool_dj-ping":
                assert "PRE_PING" not in entry["POOL_OPTIONS"], "each package's default"
        else:
            pool = entry["OPTIONS"]["pool"]
            assert pool["min_size"] == pool["max_size"] == 16


def test_the_grid_is_the_issues() -> None:
    assert DEFAULT.threads == (1, 4, 16, 64)
    assert DEFAULT.pools == (4, 16)
    assert DEFAULT.works == (0.0, 0.010)


def test_a_big_pool_serving_few_threads_runs_once_at_the_small_pool() -> None:
    plan = Plan.make()
    ours = BY_NAME["real_pool"]
    assert plan.measured_pool(ours, 1, 16) == 4
    assert plan.measured_pool(ours, 4, 16) == 4
    assert plan.measured_pool(ours, 16, 16) == 16
    assert plan.measured_pool(ours, 64, 4) == 4
    assert plan.measured_pool(BY_NAME["persistent"], 64, 16) is None


def test_the_schedule_alternates_contenders_cell_by_cell_and_runs_each_cell_once() -> None:
    plan = Plan.make(contenders=("stock_pool", "real_pool", "persistent"))
    schedule = plan.schedule()
    runs = [(c.name, cell) for _, measured in schedule for c, cell in measured]
    assert len(runs) == len(set(runs))
    first_position, first_runs = schedule[0]
    assert first_position == Cell(1, 4, 0.0)
    assert [c.name for c, _ in first_runs] == ["persistent", "stock_pool", "real_pool"]
    # pooled: 2 works x (4 threads at pool 4 + 16 and 64 at pool 16); persistent: 2 x 4
    assert sum(1 for name, _ in runs if name == "real_pool") == 12
    assert sum(1 for name, _ in runs if name == "persistent") == 8
    assert {cell.pool for name, cell in runs if name == "persistent"} == {None}


def test_the_contenders_deciding_a_goal_run_longer_in_its_cells_and_only_there() -> None:
    plan = Plan.make()
    sizes = plan.sizes
    base = sizes.throughput_slices
    goal_3, goal_4 = Cell(16, 4, 0.010), Cell(64, 16, 0.0)
    assert plan.slices(BY_NAME["1.1.0"], goal_3) * plan.slice_seconds == pytest.approx(
        sizes.goal_3_seconds
    )
    assert plan.slices(BY_NAME["real_pool_dj"], goal_4) * plan.slice_seconds == pytest.approx(
        sizes.goal_4_seconds
    )
    assert plan.slices(BY_NAME["1.1.0"], goal_4) == base  # goal 4 is ours against stock
    assert plan.slices(BY_NAME["persistent"], goal_3) == base
    assert plan.slices(BY_NAME["real_pool"], Cell(16, 4, 0.0)) > base
    assert plan.slices(BY_NAME["real_pool"], Cell(4, 4, 0.010)) == base
    # Every count even: A B ... then ... B A, each contender as early as late on average.
    for position, measured in plan.schedule():
        assert all(plan.slices(c, position) % 2 == 0 for c, _ in measured)


def test_every_pair_a_goal_reads_runs_side_by_side() -> None:
    plan = Plan.make()
    assert {c.name for c in plan.running("throughput")} == set(THROUGHPUT_ORDER)
    for position, measured in plan.schedule():
        names = [c.name for c, _ in measured]
        if (position.threads, position.pool, position.work) not in GOAL_CELLS:
            continue
        for ours, theirs in (
            ("real_pool", "1.1.0"),
            ("real_pool_dj", "1.1.0_dj"),
            ("real_pool", "stock_pool"),
            ("real_pool_dj", "stock_pool"),
        ):
            assert abs(names.index(ours) - names.index(theirs)) == 1, (position, names)


def test_extra_slices_come_in_pairs_whatever_the_slice_length() -> None:
    # 0.2 s slices: goal 4's 1 s would be 5 slices, goal 3's 1.5 s 7.5.
    plan = Plan.make(cell_seconds=0.4, throughput_slices=2)
    assert plan.slices(BY_NAME["real_pool"], Cell(64, 4, 0.0)) in (4, 6)
    assert plan.slices(BY_NAME["real_pool"], Cell(16, 4, 0.010)) == 8
    # An odd count chosen for every cell stays odd: the extra slices keep its parity.
    odd = Plan.make(cell_seconds=0.75, throughput_slices=3)
    assert odd.slices(BY_NAME["real_pool"], Cell(16, 4, 0.010)) == 7
    assert odd.slices(BY_NAME["real_pool"], Cell(4, 4, 0.010)) == 3
    # Cells longer than a goal's seconds: nothing extra.
    long = Plan.make(cell_seconds=2.0, throughput_slices=6)
    assert long.slices(BY_NAME["real_pool"], Cell(16, 4, 0.010)) == 6


def test_a_quick_run_never_adds_slices() -> None:
    plan = Plan.make(quick=True)
    for position, measured in plan.schedule():
        assert {plan.slices(c, position) for c, _ in measured} == {1}


def test_the_server_has_room_for_every_idle_pool_and_the_busiest_cell() -> None:
    plan = Plan.make()
    pooled = sum(1 for c in plan.running("throughput") if c.pooled)
    assert plan.connections_needed() >= pooled * (4 + 16) + 64


def test_per_query_only_contenders_stay_out_of_throughput() -> None:
    plan = Plan.make()
    assert "real_pool+reset" in {c.name for c in plan.running("per_query")}
    assert "real_pool+reset" not in {c.name for c in plan.running("throughput")}


def test_choosing_scenarios_and_contenders() -> None:
    plan = Plan.make(scenarios=("throughput",), contenders=("real_pool",), quick=True)
    assert plan.running("per_query") == ()
    assert [c.name for c in plan.running("throughput")] == ["real_pool"]
    assert plan.sizes == QUICK
    assert not plan.needs_previous_release
    assert Plan.make().needs_previous_release


def test_unknown_names_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown contender \['real-pool'\]; choose among"):
        Plan.make(contenders=("real-pool",))
    with pytest.raises(ValueError, match=r"unknown scenario \['latency'\]"):
        Plan.make(scenarios=("latency",))


def test_every_scenario_has_an_estimate() -> None:
    estimates = Plan.make().estimates()
    assert set(estimates) == {"per_query", "throughput", "stats", "server_start"}
    assert all(steps > 0 and seconds > 0 for steps, seconds in estimates.values())


def test_the_grid_lists_every_position_the_tables_show() -> None:
    grid = Plan.make().grid()
    assert len(grid) == 4 * 2 * 2
    assert grid[0] == Cell(1, 4, 0.0)
    assert Cell(4, 16, 0.010) in grid, "shown, though measured at pool 4"
