"""summary.py: medians with their spread, ratios, Jain's index (database-free)."""

from __future__ import annotations

import math

import pytest

from benchmarks.summary import Spread, jain_index, ratio_spread, spread


def test_spread_is_the_median_and_the_range() -> None:
    assert spread([3.0, 1.0, 2.0, 10.0]) == Spread(median=2.5, low=1.0, high=10.0, count=4)


def test_spread_leaves_out_what_is_not_a_number() -> None:
    assert spread([1.0, math.nan, 3.0, math.inf]) == Spread(2.0, 1.0, 3.0, 2)


def test_spread_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no finite value"):
        spread([math.nan])


def test_ratios_are_taken_pair_by_pair() -> None:
    found = ratio_spread([2.0, 3.0, 8.0], [1.0, 3.0, 2.0])
    assert (found.median, found.low, found.high) == (2.0, 1.0, 4.0)


def test_a_zero_denominator_is_left_out_not_infinite() -> None:
    assert ratio_spread([1.0, 2.0], [0.0, 1.0]) == Spread(2.0, 2.0, 2.0, 1)


def test_ratio_spread_needs_as_many_of_each() -> None:
    with pytest.raises(ValueError, match="2 numerators for 1 denominators"):
        ratio_spread([1.0, 2.0], [1.0])


def test_ranges_overlap_when_they_share_a_value() -> None:
    assert Spread(1.0, 0.9, 1.1, 3).overlaps(Spread(1.2, 1.1, 1.3, 3))
    assert not Spread(1.0, 0.9, 1.05, 3).overlaps(Spread(1.2, 1.1, 1.3, 3))


def test_jain_index_is_one_when_every_thread_did_as_much() -> None:
    assert jain_index([5, 5, 5, 5]) == pytest.approx(1.0)


def test_jain_index_is_one_over_n_when_one_thread_did_everything() -> None:
    assert jain_index([100, 0, 0, 0]) == pytest.approx(0.25)


def test_jain_index_in_between() -> None:
    # (1 + 3)^2 / (2 * (1 + 9)) = 16 / 20
    assert jain_index([1, 3]) == pytest.approx(0.8)


def test_jain_index_of_no_work_favours_nobody() -> None:
    assert jain_index([0, 0]) == 1.0
    assert jain_index([]) == 1.0
