"""A throughput cell measured in slices is merged as if it had run in one piece."""

from __future__ import annotations

import pytest

from benchmarks.plan import DEFAULT, QUICK
from benchmarks.throughput import merge_slices


def _slice(latencies: list[float], *, per_thread: list[int], cpu: float) -> dict[str, object]:
    return {
        "duration": 0.2,
        "completed": sum(per_thread),
        "done": sum(per_thread) + 0.5,
        "completed_with_tail": len(latencies),
        "tail_seconds": max(latencies),
        "per_thread": per_thread,
        "cpu_per_request": cpu / len(latencies),
        "failures": 1,
        "failure_samples": ["OperationalError: x"],
        "latencies": latencies,
    }


def test_slices_add_up_and_percentiles_come_from_every_request() -> None:
    merged = merge_slices(
        [
            _slice([0.001] * 9 + [0.1], per_thread=[5, 4], cpu=0.01),
            _slice([0.002] * 10, per_thread=[6, 4], cpu=0.03),
        ]
    )
    assert merged["duration"] == pytest.approx(0.4)
    assert merged["completed"] == 19
    assert merged["done"] == pytest.approx(20.0)
    assert merged["completed_with_tail"] == 20
    assert merged["per_thread"] == [11, 8]
    assert merged["cpu_per_request"] == pytest.approx(0.04 / 20)
    assert merged["latency"]["p50"] == 0.002  # the 10th of 20: 9 at 1 ms, then 2 ms
    assert merged["latency"]["max"] == 0.1
    assert merged["failures"] == 2
    assert merged["failure_samples"] == ["OperationalError: x"]
    assert "latencies" not in merged  # not kept in results.json


def test_the_default_run_slices_its_cells_and_the_quick_one_does_not() -> None:
    assert DEFAULT.throughput_slices > 1
    assert QUICK.throughput_slices == 1
