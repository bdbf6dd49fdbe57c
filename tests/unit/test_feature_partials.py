"""Each pane partial, split over random panes and merged in random order, equals numpy.

The partial columns are computed here the way the JVM's SQL does (``partial_columns``),
from raw values; ``from_columns``, ``merge`` and ``result`` are what runs in the job.
"""

from __future__ import annotations

import numpy as np
import pytest

from features.aggregations import AGGREGATES, Aggregate, make_aggregate
from tests.unit.test_feature_windows import jvm_partial_columns

FUNCTIONS = [*AGGREGATES, "p5", "p50", "p95"]


def _values(rng: np.random.Generator, function: str) -> list:
    if function in ("count_distinct", "last"):
        return [None if rng.random() < 0.2 else str(rng.choice(list("abcdefg")))
                for _ in range(400)]
    return [None if rng.random() < 0.2 else float(rng.normal(100, 30)) for _ in range(400)]


def _merged(agg: Aggregate, function: str, values: list, rng: np.random.Generator):
    import pandas as pd

    frame = pd.DataFrame({"v": values, "event_time": rng.integers(0, 50, len(values)),
                          "seq": np.arange(len(values))})
    cuts = np.sort(rng.choice(np.arange(1, len(values)), 9, replace=False))
    bounds = [0, *cuts, len(frame)]
    panes = [agg.from_columns(jvm_partial_columns(function, frame.iloc[a:b], "v"))
             for a, b in zip(bounds, bounds[1:], strict=False)]
    panes.append(agg.empty())  # an empty pane changes nothing
    acc = agg.empty()
    for i in rng.permutation(len(panes)):
        before = panes[i]
        acc = agg.merge(acc, panes[i])
        assert panes[i] is before  # merge never mutates its arguments
    return agg.result(acc), frame


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_merged_panes_equal_numpy_on_all_values(function, seed):
    rng = np.random.default_rng(seed)
    values = _values(rng, function)
    agg = make_aggregate(function)
    got, frame = _merged(agg, function, values, rng)
    present = [v for v in values if v is not None]
    if function == "count":
        want = len(present)
    elif function == "sum":
        want = float(np.sum(present))
    elif function == "mean":
        want = float(np.mean(present))
    elif function in ("min", "max"):
        want = float(getattr(np, function)(present))
    elif function == "count_distinct":
        want = len(set(present))
    elif function == "last":  # latest event time, ties to the later record
        rows = frame.dropna(subset=["v"])
        want = rows.sort_values(["event_time", "seq"]).v.iloc[-1]
    else:
        want = float(np.percentile(present, float(function[1:])))
    assert got == pytest.approx(want, rel=1e-12) if isinstance(want, float) else got == want


@pytest.mark.parametrize("function", FUNCTIONS)
def test_an_empty_window_reads_zero_or_null(function):
    import pandas as pd

    agg = make_aggregate(function)
    nulls = pd.DataFrame({"v": [None], "event_time": [1], "seq": [0]})
    empty = agg.result(agg.merge(agg.empty(),
                                 agg.from_columns(jvm_partial_columns(function, nulls, "v"))))
    assert empty == (0 if function in ("count", "sum", "count_distinct") else None)
