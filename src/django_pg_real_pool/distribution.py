"""Fixed-bucket distributions of durations: cheap to record on every checkout, and the same
buckets as the Prometheus histograms (``metrics.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Upper bounds, in seconds, of the wait and hold time buckets; a last bucket takes the rest.
#: From 100 µs (a connection released after one query) to a minute (a stuck request).
BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


@dataclass(frozen=True)
class Distribution:
    """How many durations fell in each bucket: ``counts[i]`` are those <= ``BUCKETS[i]``
    (and above the previous bound); the last count is those above ``BUCKETS[-1]``."""

    counts: tuple[int, ...]
    #: Sum of all durations, in seconds.
    total: float

    @property
    def count(self) -> int:
        """How many durations were recorded."""
        return sum(self.counts)

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the ``q`` quantile (0 < q <= 1), or None if
        nothing was recorded; ``inf`` when it lies beyond the last bound."""
        if not 0 < q <= 1:
            raise ValueError(f"q must be in (0, 1], not {q!r}")
        n = self.count
        if n == 0:
            return None
        rank = q * n
        seen = 0
        for bound, count in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            seen += count
            if seen >= rank:
                return bound
        return float("inf")  # pragma: no cover - rounding only

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: bucket upper bounds as strings ("+Inf" last), counts, sum."""
        bounds = [*(repr(bound) for bound in BUCKETS), "+Inf"]
        return {"buckets": dict(zip(bounds, self.counts, strict=True)), "sum": self.total}
