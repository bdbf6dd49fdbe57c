"""Chi-square test of homogeneity for a categorical column, reference vs window.

The 2 x K contingency table (reference counts, window counts) gives Pearson's
statistic with K - 1 degrees of freedom, as ``scipy.stats.chi2_contingency(
correction=False)``. Categories the reference never saw land in ``__other__``.
Categories whose expected window count under the reference (n * r_k) is below
``min_expected`` are pooled into one column before testing (Cochran's rule): a single
occurrence of a one-in-ten-thousand intent would otherwise be a false alarm. Pooling
depends only on the reference shares and the window size, never on window counts, so
it does not bias the test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from drift.base import Accumulator, DriftTest, FittedTest
from drift.errors import DriftConfigError
from drift.inputs import OTHER

TOP_CATEGORIES = 3
POOLED = "__pooled__"


@dataclass
class CategoryCounts(Accumulator):
    """Counts by category name (unseen names already mapped to ``__other__``)."""

    counts: dict[str, int] = field(default_factory=dict)


def count_categories(values: np.ndarray) -> dict[str, int]:
    vc = pd.Series(values, dtype=object).value_counts(sort=False)
    return {str(k): int(v) for k, v in vc.items()}


def pearson(table: np.ndarray) -> tuple[float, int]:
    """Pearson's statistic and dof of a 2 x K table with no all-zero column."""
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    return float(((table - expected) ** 2 / expected).sum()), table.shape[1] - 1


class FittedChiSquare(FittedTest[CategoryCounts]):
    statistic = "chi2"
    kind = "categorical"

    def __init__(
        self,
        column: str | None,
        ref_counts: dict[str, int],
        min_expected: float,
        n_reference_missing: int,
    ) -> None:
        total = int(sum(ref_counts.values()))
        super().__init__(column, total, n_reference_missing)
        cats = sorted(ref_counts)
        if OTHER not in ref_counts:
            cats.append(OTHER)
        self.categories: tuple[str, ...] = tuple(cats)
        self.index = {c: i for i, c in enumerate(self.categories)}
        self.ref_counts = np.array([ref_counts.get(c, 0) for c in cats], dtype=np.int64)
        self.ref_share = self.ref_counts / total
        self.min_expected = min_expected

    def _init(self) -> CategoryCounts:
        return CategoryCounts()

    def _update(self, acc: CategoryCounts, clean: np.ndarray) -> None:
        for cat, c in count_categories(clean).items():
            key = cat if cat in self.index else OTHER
            acc.counts[key] = acc.counts.get(key, 0) + c

    def _merge(self, a: CategoryCounts, b: CategoryCounts) -> CategoryCounts:
        counts = dict(a.counts)
        for k, v in b.counts.items():
            counts[k] = counts.get(k, 0) + v
        return CategoryCounts(counts=counts)

    def window_counts(self, acc: CategoryCounts) -> np.ndarray:
        return np.array([acc.counts.get(c, 0) for c in self.categories], dtype=np.int64)

    def table(self, acc: CategoryCounts) -> tuple[np.ndarray, list[str], list[str]]:
        """The 2 x K table actually tested, its column names and the pooled categories.

        Categories expected fewer than ``min_expected`` times in the window are pooled;
        while the pool itself is expected fewer times than that, the smallest remaining
        category joins it, so pooling removes small expected counts instead of moving
        them into one column. ``__other__`` is never pooled: a category the reference
        never saw is drift to report, not noise to absorb (bucket long-tailed columns
        upstream).
        """
        win = self.window_counts(acc)
        floor = self.min_expected / acc.n
        rare = self.ref_share < floor
        rare[self.index[OTHER]] = False  # unseen categories are the news: never diluted
        candidates = np.ones_like(rare)
        candidates[self.index[OTHER]] = False
        while rare.any() and self.ref_share[rare].sum() < floor and (candidates & ~rare).any():
            rare[int(np.argmin(np.where(candidates & ~rare, self.ref_share, np.inf)))] = True
        keep = ~rare
        cols = [np.stack([self.ref_counts[keep], win[keep]])]
        names = [c for c, k in zip(self.categories, keep, strict=True) if k]
        pooled = [c for c, k in zip(self.categories, rare, strict=True) if k]
        if pooled:
            cols.append(np.array([[self.ref_counts[rare].sum()], [win[rare].sum()]]))
            names.append(POOLED)
        table = np.hstack(cols)
        nonzero = table.sum(axis=0) > 0
        return table[:, nonzero], [n for n, k in zip(names, nonzero, strict=True) if k], pooled

    def _threshold(self, acc: CategoryCounts, alpha: float) -> float:
        dof = self.table(acc)[0].shape[1] - 1
        return float(stats.chi2.isf(alpha, dof)) if dof > 0 else float("inf")

    def _result(self, acc: CategoryCounts) -> tuple[float, float, dict[str, Any]]:
        table, names, pooled = self.table(acc)
        if table.shape[1] < 2:  # one category in play: nothing can move
            value, p_value = 0.0, 1.0
        else:
            value, dof = pearson(table.astype(np.float64))
            p_value = float(stats.chi2.sf(value, dof))
        win_share = self.window_counts(acc) / acc.n
        moved = win_share - self.ref_share
        top = np.argsort(-np.abs(moved), kind="stable")[:TOP_CATEGORIES]
        details = {
            "categories_tested": len(names),
            "dof": max(len(names) - 1, 0),
            "pooled": pooled[:20],
            "n_pooled": len(pooled),
            "window_other_share": float(win_share[self.index[OTHER]]),
            "top_categories": [
                {
                    "category": self.categories[i],
                    "ref_share": float(self.ref_share[i]),
                    "window_share": float(win_share[i]),
                    "change": float(moved[i]),
                }
                for i in top
            ],
        }
        return value, p_value, details


@dataclass(frozen=True)
class ChiSquare(DriftTest):
    """Chi-square homogeneity test; ``min_expected=0`` disables pooling of rare categories."""

    min_expected: float = 5.0
    statistic = "chi2"
    kind = "categorical"

    def __post_init__(self) -> None:
        if self.min_expected < 0:
            raise DriftConfigError("chi2.min_expected", "must be >= 0")

    def params(self) -> dict[str, Any]:
        return {"min_expected": self.min_expected}

    def _fit(self, reference: np.ndarray, column: str | None, n_missing: int) -> FittedChiSquare:
        return FittedChiSquare(column, count_categories(reference), self.min_expected, n_missing)
