"""goals.py: each goal met, not met or not evaluated, from summaries (database-free)."""

from __future__ import annotations

from typing import Any

from benchmarks.goals import evaluate, slower_than
from benchmarks.summary import Spread, spread


def per_query_figures(added: list[float], ratio: list[float]) -> dict[str, Any]:
    figures = {
        "added": {"values": added, "spread": spread(added)},
        "ratio": {"values": ratio, "spread": spread(ratio)},
    }
    return {"10 queries": {"cpu": figures, "wall": figures}}


def throughput_row(
    contender: str, threads: int, pool: int, work: float, *, rate: list[float], ratio: list[float]
) -> dict[str, Any]:
    return {
        "contender": contender,
        "threads": threads,
        "pool": pool,
        "work": work,
        "rate": rate,
        "rate_spread": spread(rate),
        "ratio": spread(ratio),
    }


def test_goal_1_compares_the_added_cost_with_1_1_0s() -> None:
    per_query = {
        "real_pool": per_query_figures([20.0, 22.0, 24.0], [1.2, 1.2, 1.2]),
        "1.1.0": per_query_figures([50.0, 60.0, 40.0], [1.5, 1.5, 1.5]),
    }
    goal = evaluate(per_query, [], (4, 16))[0]
    assert goal.met is True
    assert "0.44x" in goal.numbers
    per_query["1.1.0"] = per_query_figures([30.0, 30.0, 30.0], [1.3] * 3)
    assert evaluate(per_query, [], (4, 16))[0].met is False


def test_goal_1_is_not_evaluated_when_1_1_0_added_nothing() -> None:
    per_query = {
        "real_pool": per_query_figures([2.0], [1.0]),
        "1.1.0": per_query_figures([-1.0], [1.0]),
    }
    goal = evaluate(per_query, [], (4,))[0]
    assert goal.met is None
    assert "no cost to halve" in goal.numbers


def test_goal_2_reads_the_ratio_to_the_stock_pool() -> None:
    per_query = {"real_pool_dj": per_query_figures([40.0], [1.4, 1.6, 1.45])}
    assert evaluate(per_query, [], (4,))[1].met is True
    per_query = {"real_pool_dj": per_query_figures([40.0], [1.6, 1.7, 1.4])}
    assert evaluate(per_query, [], (4,))[1].met is False


def test_goals_3_and_4_need_both_engines_to_meet_them() -> None:
    rows = [
        throughput_row("real_pool", 16, 4, 0.010, rate=[1200.0, 1300.0], ratio=[4.0, 4.1]),
        throughput_row("1.1.0", 16, 4, 0.010, rate=[1100.0, 1250.0], ratio=[3.6, 3.9]),
        throughput_row("real_pool_dj", 16, 4, 0.010, rate=[1000.0, 1000.0], ratio=[3.6, 3.6]),
        throughput_row("1.1.0_dj", 16, 4, 0.010, rate=[1100.0, 1100.0], ratio=[3.9, 3.9]),
    ]
    goal_3 = evaluate({}, rows, (4,))[2]
    assert goal_3.met is False, "real_pool_dj is below 1.1.0_dj"
    rows[3] = throughput_row("1.1.0_dj", 16, 4, 0.010, rate=[900.0, 950.0], ratio=[3.0, 3.1])
    assert evaluate({}, rows, (4,))[2].met is True
    rows += [
        throughput_row(name, threads, 4, 0.0, rate=[1.0], ratio=[ratio])
        for name, ratio in (("real_pool", 0.95), ("real_pool_dj", 0.85))
        for threads in (16, 64)
    ]
    goal_4 = evaluate({}, rows, (4,))[3]
    assert goal_4.met is False
    assert "real_pool_dj 64t/pool 4: 0.85" in goal_4.numbers


def test_goals_without_their_measurements_say_what_they_need() -> None:
    goals = evaluate(None, None, (4, 16))
    assert [goal.met for goal in goals] == [None, None, None, None]
    assert all(goal.verdict == "not evaluated" for goal in goals)
    assert "needs the per_query scenario" in goals[0].numbers


def test_slower_than_lists_where_ours_did_worse_and_whether_beyond_the_spread() -> None:
    per_query = {
        "real_pool": per_query_figures([20.0], [1.2, 1.3, 1.25]),
        "real_pool_dj": per_query_figures([20.0], [0.9, 1.0, 0.95]),
        "dbcp": per_query_figures([5.0], [1.0, 1.05, 1.02]),
        "real_pool+reset": per_query_figures([90.0], [3.0, 3.0, 3.0]),
    }
    rows = [
        throughput_row("real_pool", 64, 4, 0.0, rate=[900.0, 1000.0], ratio=[0.9, 0.95]),
        throughput_row("stock_pool", 64, 4, 0.0, rate=[950.0, 1100.0], ratio=[1.0, 1.0]),
    ]
    found = slower_than(per_query, rows)
    pairs = {(entry["ours"], entry["other"], entry["measure"]) for entry in found}
    assert pairs == {
        ("real_pool", "dbcp", "cpu per query (x stock)"),
        ("real_pool", "dbcp", "wall per query (x stock)"),
        ("real_pool", "stock_pool", "req/s"),
    }, "never against ourselves, nor where ours did better"
    clear = {entry["measure"]: entry["clear"] for entry in found}
    assert clear == {
        "cpu per query (x stock)": True,
        "wall per query (x stock)": True,
        "req/s": False,
    }
    assert isinstance(found[0]["ours_value"], Spread)


def test_a_row_repeating_an_earlier_measurement_is_not_listed_twice() -> None:
    rows = [
        throughput_row("real_pool", 4, 4, 0.0, rate=[900.0], ratio=[0.9]),
        throughput_row("stock_pool", 4, 4, 0.0, rate=[1000.0], ratio=[1.0]),
        throughput_row("real_pool", 4, 16, 0.0, rate=[900.0], ratio=[0.9]) | {"repeated": True},
        throughput_row("stock_pool", 4, 16, 0.0, rate=[1000.0], ratio=[1.0]) | {"repeated": True},
    ]
    assert [entry["scenario"] for entry in slower_than(None, rows)] == [
        "throughput, 4 threads, pool 4, 0 ms work"
    ]
