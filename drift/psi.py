"""Population Stability Index on reference-quantile bins, with a calibrated threshold.

PSI = sum_i (w_i - r_i) ln(w_i / r_i) over B bins. To second order it equals
sum_i (w_i - r_i)^2 / p_i, and with the window (n) and reference (m) drawn from the
same distribution that is (1/n + 1/m) * chi2_{B-1}. So the cut-off at false-alarm
rate alpha is (1/n + 1/m) * chi2.ppf(1 - alpha, B - 1): it shrinks as windows grow,
which is why the folk 0.1 / 0.2 cut-offs alarm constantly on small windows and miss
real shifts on large ones.

The chi-square limit needs large expected counts per bin: with 20 expected window
events per bin PSI's variance is already ~10% above 2(B-1), and alarms at alpha=0.01
run at ~1.4%. Below ``asymptotic_min_expected`` expected events in the smallest bin,
the null is therefore a scaled chi-square g * chi2_h whose mean and variance come from
a seeded parametric bootstrap of PSI itself (multinomial reference and window on the
reference shares, smoothing included), drawn once per window size and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from drift.base import Accumulator, DriftTest, FittedTest
from drift.errors import DriftConfigError

TOP_BINS = 3
NULL_CACHE = 64  # window sizes whose bootstrap null is kept


@dataclass
class BinCounts(Accumulator):
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior bin edges: reference quantiles, duplicates collapsed.

    Edges are actual reference values (``inverted_cdf``) and bins are right-closed,
    ``(e[i-1], e[i]]``, so every bin holds at least one reference value; on a discrete
    column (satisfaction 1..5) this yields one bin per value. The largest value is
    never an edge, or the last bin would be empty.
    """
    probs = np.arange(1, bins) / bins  # k / bins exactly, unlike linspace
    edges = np.unique(np.quantile(reference, probs, method="inverted_cdf"))
    return edges[edges < reference.max()]


def _grid_bracket(n: int, ratio: float = 1.25, exact_below: int = 16) -> tuple[int, int]:
    """Grid sizes lo <= n <= hi that bracket ``n`` (equal when ``n`` is small)."""
    if n <= exact_below:
        return n, n
    k = int(np.floor(np.log(n) / np.log(ratio)))
    lo, hi = round(ratio**k), round(ratio ** (k + 1))
    while lo > n:
        k -= 1
        lo, hi = round(ratio**k), lo
    while hi < n:
        lo, hi = hi, round(ratio ** (k + 2))
        k += 1
    return lo, hi


class FittedPSI(FittedTest[BinCounts]):
    statistic = "psi"
    kind = "numeric"

    def __init__(
        self,
        column: str | None,
        edges: np.ndarray,
        ref_counts: np.ndarray,
        epsilon: float,
        n_reference_missing: int,
        *,
        seed: int = 0,
        null_draws: int = 10_000,
        asymptotic_min_expected: float = 100.0,
    ) -> None:
        super().__init__(column, int(ref_counts.sum()), n_reference_missing)
        self.edges = edges
        self.ref_counts = ref_counts
        self.ref_share = ref_counts / ref_counts.sum()
        self.epsilon = epsilon
        self.seed = seed
        self.null_draws = null_draws
        self.asymptotic_min_expected = asymptotic_min_expected
        self._null: dict[int, tuple[float, float]] = {}

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, values, side="left")

    def _init(self) -> BinCounts:
        return BinCounts(counts=np.zeros(self.n_bins, dtype=np.int64))

    def _update(self, acc: BinCounts, clean: np.ndarray) -> None:
        acc.counts += np.bincount(self.bin_index(clean), minlength=self.n_bins)

    def _merge(self, a: BinCounts, b: BinCounts) -> BinCounts:
        return BinCounts(counts=a.counts + b.counts)

    def window_share(self, counts: np.ndarray) -> np.ndarray:
        """Window shares with empty bins given ``epsilon`` of a count, renormalised."""
        smoothed = np.where(counts == 0, self.epsilon, counts).astype(np.float64)
        return smoothed / smoothed.sum(axis=-1, keepdims=True)

    def null_scaling(self, n: int) -> tuple[float, float]:
        """(g, h) with PSI / (1/n + 1/m) ~ g * chi2_h under H0 for a window of n.

        (1, B - 1) in the asymptotic regime. Below it, bootstrap moments on a geometric
        grid of window sizes (ratio 1.25), interpolated linearly in 1/n: the corrections
        are O(1/n), and a stream whose windows differ in size pays for a handful of
        bootstraps, not one per window.
        """
        smallest = min(n, self.n_reference) * float(self.ref_share.min())
        if smallest >= self.asymptotic_min_expected:
            return 1.0, float(self.n_bins - 1)
        lo, hi = _grid_bracket(n)
        g_lo, h_lo = self._bootstrap_scaling(lo)
        if hi == lo:
            return g_lo, h_lo
        g_hi, h_hi = self._bootstrap_scaling(hi)
        t = (1.0 / lo - 1.0 / n) / (1.0 / lo - 1.0 / hi)
        return g_lo + t * (g_hi - g_lo), h_lo + t * (h_hi - h_lo)

    def _bootstrap_scaling(self, n: int) -> tuple[float, float]:
        if n not in self._null:
            if len(self._null) >= NULL_CACHE:
                self._null.pop(next(iter(self._null)))
            rng = np.random.default_rng([self.seed, n])
            size = (self.null_draws,)
            ref = self.window_share(rng.multinomial(self.n_reference, self.ref_share, size))
            win = self.window_share(rng.multinomial(n, self.ref_share, size))
            q = ((win - ref) * np.log(win / ref)).sum(axis=1) / (1.0 / n + 1.0 / self.n_reference)
            mean, var = float(q.mean()), float(q.var())
            self._null[n] = (var / (2.0 * mean), 2.0 * mean * mean / var)
        return self._null[n]

    def _result(self, acc: BinCounts) -> tuple[float, float, dict[str, Any]]:
        w = self.window_share(acc.counts)
        r = self.ref_share
        contrib = (w - r) * np.log(w / r)
        psi = float(contrib.sum())
        scale = 1.0 / acc.n + 1.0 / self.n_reference
        g, h = self.null_scaling(acc.n)
        p_value = stats.chi2.sf(psi / (scale * g), h)
        top = np.argsort(-contrib, kind="stable")[:TOP_BINS]
        details = {
            "bins": self.n_bins,
            "empty_window_bins": int((acc.counts == 0).sum()),
            "null_mean": scale * g * h,
            "null_dof": h,
            "top_bins": [self._bin_detail(int(i), w, contrib) for i in top],
        }
        return psi, p_value, details

    def _threshold(self, acc: BinCounts, alpha: float) -> float:
        scale = 1.0 / acc.n + 1.0 / self.n_reference
        g, h = self.null_scaling(acc.n)
        return scale * g * stats.chi2.isf(alpha, h)

    def _bin_detail(self, i: int, w: np.ndarray, contrib: np.ndarray) -> dict[str, Any]:
        lower = float(self.edges[i - 1]) if i > 0 else None
        upper = float(self.edges[i]) if i < len(self.edges) else None
        return {
            "bin": i,
            "lower": lower,  # exclusive; None = unbounded
            "upper": upper,  # inclusive; None = unbounded
            "ref_share": float(self.ref_share[i]),
            "window_share": float(w[i]),
            "contribution": float(contrib[i]),
        }


@dataclass(frozen=True)
class PSI(DriftTest):
    """PSI on ``bins`` reference-quantile bins.

    ``epsilon`` is the pseudo-count of an empty window bin (half an event keeps one
    empty bin from dominating); ``seed``, ``null_draws`` and ``asymptotic_min_expected``
    govern the small-window bootstrap null (see the module docstring).
    """

    bins: int = 10
    epsilon: float = 0.5
    seed: int = 0
    null_draws: int = 10_000
    asymptotic_min_expected: float = 100.0
    statistic = "psi"
    kind = "numeric"

    def __post_init__(self) -> None:
        if self.bins < 2:
            raise DriftConfigError("psi.bins", f"need at least 2 bins, got {self.bins}")
        if not self.epsilon > 0:
            raise DriftConfigError("psi.epsilon", f"must be > 0, got {self.epsilon}")
        if self.null_draws < 100:
            raise DriftConfigError("psi.null_draws", f"need >= 100, got {self.null_draws}")

    def params(self) -> dict[str, Any]:
        return {
            "bins": self.bins,
            "epsilon": self.epsilon,
            "seed": self.seed,
            "null_draws": self.null_draws,
            "asymptotic_min_expected": self.asymptotic_min_expected,
        }

    def _fit(self, reference: np.ndarray, column: str | None, n_missing: int) -> FittedPSI:
        edges = quantile_edges(reference, self.bins)
        if len(edges) == 0:
            raise DriftConfigError(
                f"reference[{column}]",
                f"PSI needs at least 2 distinct reference values, got only {reference[0]!r}",
                column=column,
                statistic="psi",
            )
        counts = np.bincount(
            np.searchsorted(edges, reference, side="left"), minlength=len(edges) + 1
        ).astype(np.int64)
        return FittedPSI(
            column,
            edges,
            counts,
            self.epsilon,
            n_missing,
            seed=self.seed,
            null_draws=self.null_draws,
            asymptotic_min_expected=self.asymptotic_min_expected,
        )
