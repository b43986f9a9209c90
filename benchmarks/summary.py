"""The statistics the report states: medians with their spread, ratios, fairness."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Spread", "jain_index", "ratio_spread", "spread"]


@dataclass(frozen=True)
class Spread:
    """The median of some values and their range (min to max)."""

    median: float
    low: float
    high: float
    count: int

    def __str__(self) -> str:
        return f"{self.median:.2f} ({self.low:.2f} to {self.high:.2f})"

    def overlaps(self, other: Spread) -> bool:
        """Whether the two ranges share a value: the difference is within the noise."""
        return self.low <= other.high and other.low <= self.high

    def scaled(self, factor: float) -> Spread:
        return Spread(self.median * factor, self.low * factor, self.high * factor, self.count)


def spread(values: Sequence[float]) -> Spread:
    """Median and min-max of ``values`` (NaN and infinities left out; at least one must stay)."""
    kept = [value for value in values if math.isfinite(value)]
    if not kept:
        raise ValueError(f"no finite value among {list(values)!r}")
    return Spread(statistics.median(kept), min(kept), max(kept), len(kept))


def ratio_spread(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """The spread of the pairwise ratios (one pair per process or repeat)."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators for {len(denominators)} denominators")
    return spread([n / d if d else math.nan for n, d in zip(numerators, denominators, strict=True)])


def jain_index(completions: Sequence[float]) -> float:
    """Jain's fairness index: 1.0 when every thread completed as many requests, 1/n when one
    thread did all the work (and 1.0 for nothing at all: nobody was favoured)."""
    total = sum(completions)
    squares = sum(value * value for value in completions)
    if not completions or squares == 0:
        return 1.0
    return total * total / (len(completions) * squares)
