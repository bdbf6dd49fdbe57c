"""Multiple-testing correction across the tests of one monitor window.

A monitor runs several tests per window; for its declared ``alpha`` to be the chance
that a stationary window raises *any* alert, each test is judged at a corrected
level. Both procedures hold the family-wise error rate under any dependence between
the tests (PSI and KS on one column are strongly dependent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Correction = Literal["bonferroni", "holm"]


def corrected_levels(
    p_values: Sequence[float], alpha: float, method: Correction = "holm"
) -> tuple[list[float], list[bool]]:
    """Per-test levels and rejections, in the order given.

    Bonferroni judges every test at alpha / m. Holm sorts the p-values and judges the
    k-th smallest (0-based) at alpha / (m - k), stopping at the first that fails;
    every test after the stop keeps its level for reporting but is not rejected.
    """
    m = len(p_values)
    if m == 0:
        return [], []
    p = np.asarray(p_values, dtype=np.float64)
    if method == "bonferroni":
        levels = np.full(m, alpha / m)
        return levels.tolist(), (p <= levels).tolist()
    if method != "holm":
        raise ValueError(f"unknown correction {method!r}")
    order = np.argsort(p, kind="stable")
    levels = np.empty(m)
    reject = np.zeros(m, dtype=bool)
    going = True
    for rank, idx in enumerate(order):
        levels[idx] = alpha / (m - rank)
        going = going and bool(p[idx] <= levels[idx])
        reject[idx] = going
    return levels.tolist(), reject.tolist()
