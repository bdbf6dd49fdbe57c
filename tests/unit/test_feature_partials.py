"""Each pane partial, split over random panes and merged in random order, equals numpy.

The partial columns are computed here the way the JVM's SQL does (``partial_columns``),
from raw values; ``from_columns``, ``merge`` and the running window (``start``, ``join``,
``leave``, ``value``) are what runs in the job.
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
    return agg.value(agg.join(agg.start(), acc)), frame


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
    empty = agg.value(agg.join(agg.start(), agg.merge(
        agg.empty(), agg.from_columns(jvm_partial_columns(function, nulls, "v")))))
    assert empty == (0 if function in ("count", "sum", "count_distinct") else None)


def _oracle(function: str, frame) -> object:
    """The feature over ``frame``'s raw values, by numpy and pandas."""
    present = frame.v.dropna().tolist()
    if function == "count":
        return len(present)
    if function == "count_distinct":
        return len(set(present))
    if not present:
        return 0.0 if function == "sum" else None
    if function == "last":
        return frame.dropna(subset=["v"]).sort_values(["event_time", "seq"]).v.iloc[-1]
    if function in ("sum", "mean", "min", "max"):
        return float(getattr(np, function)(present))
    return float(np.percentile(present, float(function[1:])))


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("seed", [1, 2])
def test_a_running_window_equals_numpy_over_the_panes_it_holds(function, seed):
    """Panes join as they enter and leave oldest first, the way a sliding window moves;
    after every step the window reads what numpy computes from its raw values."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    agg = make_aggregate(function)
    n_panes, per_pane = 50, 8
    values = _values(rng, function)  # 400
    if function in ("sum", "mean"):  # magnitudes far apart: a float running sum would drift
        values = [None if v is None else v * 10.0 ** rng.integers(-6, 12) for v in values]
    elif function in ("min", "max") or function.startswith("p"):  # many equal values
        values = [None if v is None else float(round(v / 10)) for v in values]
    pane_of = np.repeat(np.arange(n_panes), per_pane)
    frame = pd.DataFrame({"v": values, "pane": pane_of, "seq": np.arange(len(values)),
                          "event_time": pane_of * 10 + rng.integers(0, 10, len(values))})
    partials = {p: agg.from_columns(jvm_partial_columns(function, g, "v"))
                for p, g in frame.groupby("pane")}
    acc, inside = agg.start(), []
    for pane in range(n_panes):
        acc = agg.join(acc, partials[pane])
        inside.append(pane)
        while len(inside) > rng.integers(1, 8) or (inside and rng.random() < 0.1):
            gone = inside.pop(0)
            acc = agg.leave(acc, partials[gone])
        got, want = agg.value(acc), _oracle(function, frame[frame.pane.isin(inside)])
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-12), (pane, inside)
        else:
            assert got == want, (pane, inside)
    for gone in inside:
        acc = agg.leave(acc, partials[gone])
    assert agg.value(acc) == agg.value(agg.start())  # emptied: exactly 0 or null


def test_an_exact_sum_forgets_what_left_it():
    """1e20 joined and left does not swallow 0.1 (a float sum would read 0 or 16384)."""
    agg = make_aggregate("sum")
    acc = agg.join(agg.join(agg.start(), 1e20), 0.1)
    assert agg.value(agg.leave(acc, 1e20)) == 0.1
    assert agg.value(agg.leave(agg.leave(acc, 1e20), 0.1)) == 0.0
    inf = agg.join(agg.start(), float("inf"))
    assert agg.value(inf) == float("inf")
    assert agg.value(agg.leave(agg.join(inf, 1.0), float("inf"))) == 1.0
