"""Summary statistics the benchmarks print (NaN when there is nothing to summarise)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile (a value that occurred; NaN when there is none)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def p50(values: Sequence[float]) -> float:
    """The median (NaN when there is none)."""
    return statistics.median(values) if values else math.nan


def mean(values: Sequence[float]) -> float:
    """The mean (NaN when there is none)."""
    return statistics.fmean(values) if values else math.nan
