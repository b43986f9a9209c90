"""plan.py: which cells run, how many connections the server needs (database-free)."""

from __future__ import annotations

import pytest

from benchmarks.contenders import BY_NAME, CONTENDERS, OURS, REFERENCE
from benchmarks.plan import DEFAULT, QUICK, Cell, Plan


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
