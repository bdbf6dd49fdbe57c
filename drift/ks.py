"""Two-sample Kolmogorov-Smirnov against a pre-sorted reference.

The reference is sorted once at fit, so a window costs a sort of the window and two
``searchsorted`` calls into the reference: O(n log n + n log m) instead of scipy's
O((n + m) log(n + m)) per call. The supremum of |F_ref - F_win| is attained at a
window point (F_win - F_ref) or just left of one (F_ref - F_win), so window points
are enough. p-values: the exact lattice-path distribution when n*m is small, else
Smirnov's distribution as scipy's ``ks_2samp(method="asymp")`` uses it,
``kstwo(round(nm/(n+m)))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from drift.base import Accumulator, DriftTest, FittedTest
from drift.errors import DriftConfigError

QUANTILES = (0.1, 0.5, 0.9)


@dataclass
class Sample(Accumulator):
    """KS needs the window itself: the chunks, concatenated only at ``result``."""

    chunks: list[np.ndarray] = field(default_factory=list)


def ks_statistic(ref_sorted: np.ndarray, window: np.ndarray) -> float:
    """sup_x |F_ref(x) - F_win(x)| with ``ref_sorted`` already sorted."""
    w = np.sort(window)
    n, m = w.size, ref_sorted.size
    idx = np.arange(n)
    above = (idx + 1) / n - np.searchsorted(ref_sorted, w, side="right") / m
    below = np.searchsorted(ref_sorted, w, side="left") / m - idx / n
    return float(max(above.max(), below.max(), 0.0))


def exact_sf(n: int, m: int, d: float) -> float:
    """P(D >= d) for two samples of sizes n, m under H0, by lattice-path counting.

    Walks anti-diagonals of the (m+1) x (n+1) lattice with the share of paths that
    have stayed inside |i/m - j/n| < d, so no binomial coefficient overflows. Cost
    O((n + m) * min(n, m)).
    """
    d_int = round(d * n * m)  # D is a multiple of 1/lcm(n, m): compare in integers
    if d_int <= 0:
        return 1.0
    if m > n:
        n, m = m, n  # the short side indexes the vector
    i = np.arange(m + 1, dtype=np.int64)
    prev = np.zeros(m + 2)
    prev[1] = 1.0  # position i + 1 holds cell i; position 0 pads cell -1
    for k in range(1, n + m + 1):
        lo, hi = max(0, k - n), min(k, m)
        ii = i[lo : hi + 1]
        jj = k - ii
        cur = np.zeros(m + 2)
        vals = (ii * prev[lo : hi + 1] + jj * prev[lo + 1 : hi + 2]) / k
        vals[np.abs(ii * n - jj * m) >= d_int] = 0.0
        cur[lo + 1 : hi + 2] = vals
        prev = cur
    return float(min(max(1.0 - prev[m + 1], 0.0), 1.0))


def effective_n(n: int, m: int) -> float:
    return float(np.round(n * m / (n + m)))


class FittedKS(FittedTest[Sample]):
    statistic = "ks"
    kind = "numeric"

    def __init__(
        self,
        column: str | None,
        ref_sorted: np.ndarray,
        exact_max_cells: int,
        n_reference_missing: int,
    ) -> None:
        super().__init__(column, int(ref_sorted.size), n_reference_missing)
        self.ref_sorted = ref_sorted
        self.exact_max_cells = exact_max_cells
        self.ref_mean = float(ref_sorted.mean())
        self.ref_std = float(ref_sorted.std())
        self.ref_quantiles = np.quantile(ref_sorted, QUANTILES)
        self._thresholds: dict[tuple[int, float], float] = {}

    def _init(self) -> Sample:
        return Sample()

    def _update(self, acc: Sample, clean: np.ndarray) -> None:
        acc.chunks.append(np.array(clean, dtype=np.float64, copy=True))

    def _merge(self, a: Sample, b: Sample) -> Sample:
        return Sample(chunks=[*a.chunks, *b.chunks])

    def is_exact(self, n: int) -> bool:
        return n * self.n_reference <= self.exact_max_cells

    def p_value(self, d: float, n: int) -> float:
        m = self.n_reference
        if self.is_exact(n):
            return exact_sf(n, m, d)
        return float(stats.kstwo.sf(d, effective_n(n, m)))

    def threshold(self, n: int, alpha: float) -> float:
        """Critical D at ``alpha``: the smallest attainable D whose p-value <= alpha.

        Cached by (n, alpha): a monitor asks for a handful of corrected levels, and
        windows of a count trigger share n.
        """
        key = (n, alpha)
        if key not in self._thresholds:
            if len(self._thresholds) >= 256:
                self._thresholds.pop(next(iter(self._thresholds)))
            m = self.n_reference
            asymptotic = float(stats.kstwo.isf(alpha, effective_n(n, m)))
            exact = self.is_exact(n)
            self._thresholds[key] = (
                self._exact_threshold(n, alpha, asymptotic) if exact else asymptotic
            )
        return self._thresholds[key]

    def _exact_threshold(self, n: int, alpha: float, guess: float) -> float:
        m = self.n_reference
        lcm = n * m // math.gcd(n, m)  # attainable D values are k / lcm
        if exact_sf(n, m, 1.0) > alpha:
            return math.inf  # no window of this size can be significant
        hi = min(lcm, max(1, math.ceil(guess * lcm)))
        while exact_sf(n, m, hi / lcm) > alpha:
            hi = min(lcm, 2 * hi)
        lo = hi // 2
        while lo > 0 and exact_sf(n, m, lo / lcm) <= alpha:
            lo //= 2
        while hi - lo > 1:  # invariant: sf(lo) > alpha >= sf(hi)
            mid = (lo + hi) // 2
            if exact_sf(n, m, mid / lcm) <= alpha:
                hi = mid
            else:
                lo = mid
        return hi / lcm

    def _threshold(self, acc: Sample, alpha: float) -> float:
        return self.threshold(acc.n, alpha)

    def _result(self, acc: Sample) -> tuple[float, float, dict[str, Any]]:
        window = np.concatenate(acc.chunks)
        n = window.size
        d = ks_statistic(self.ref_sorted, window)
        win_q = np.quantile(window, QUANTILES)
        mean_shift = float(window.mean()) - self.ref_mean
        details: dict[str, Any] = {
            "p_value_method": "exact" if self.is_exact(n) else "asymptotic",
            "mean_shift": mean_shift,
            "mean_shift_sd": mean_shift / self.ref_std if self.ref_std > 0 else None,
            "window_mean": float(window.mean()),
            "reference_mean": self.ref_mean,
            "quantile_shift": {
                f"p{round(q * 100)}": float(w - r)
                for q, w, r in zip(QUANTILES, win_q, self.ref_quantiles, strict=True)
            },
            "window_quantiles": {
                f"p{round(q * 100)}": float(w) for q, w in zip(QUANTILES, win_q, strict=True)
            },
        }
        return d, self.p_value(d, n), details


@dataclass(frozen=True)
class KS(DriftTest):
    """Two-sample KS; the exact null is used while window x reference <= ``exact_max_cells``."""

    exact_max_cells: int = 100_000
    statistic = "ks"
    kind = "numeric"

    def __post_init__(self) -> None:
        if self.exact_max_cells < 0:
            raise DriftConfigError("ks.exact_max_cells", "must be >= 0")

    def params(self) -> dict[str, Any]:
        return {"exact_max_cells": self.exact_max_cells}

    def _fit(self, reference: np.ndarray, column: str | None, n_missing: int) -> FittedKS:
        return FittedKS(column, np.sort(reference), self.exact_max_cells, n_missing)
