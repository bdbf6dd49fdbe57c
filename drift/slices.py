"""Slices: how a drift window's values reach the monitor.

The JVM gathers each monitor key's values per slice of event time (a divisor of the
drift window), so no single record carries a whole busy window; the monitor folds the
slices of a window into its accumulators and tests the window when event time passes
its end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Longest slice. Shorter slices carry fewer values each at high rates; longer ones pay
#: the per-slice cost of the monitor's update less often when traffic is thin.
MAX_SLICE_MS = 60_000


def slice_ms(window_ms: int) -> int:
    """The slice length for a drift window: a divisor of it, at most MAX_SLICE_MS."""
    return math.gcd(window_ms, MAX_SLICE_MS)


@dataclass(frozen=True)
class DriftSlice:
    """The values of one monitor key (a tenant, or all) in ``(start_ms, end_ms]``, per
    column, one entry per event (None where the event had no value); an embedding column
    may be one n x d array instead, with NaN rows for the events without one."""

    key: str
    start_ms: int
    end_ms: int
    columns: dict[str, list[Any] | np.ndarray]

    @property
    def n(self) -> int:
        return len(next(iter(self.columns.values()), ()))

    def window_end(self, window_ms: int) -> int:
        """The end of the tumbling drift window ``(end - window_ms, end]`` it belongs to."""
        return (self.start_ms // window_ms + 1) * window_ms
