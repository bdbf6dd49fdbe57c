"""Mergeable partial aggregates, one class per Feast aggregation function.

A partial is a small picklable value kept per (entity, pane) in Flink state; a
window's value is the merge of its panes' partials. Every class has the same four
hooks (River/Quix style): ``empty``, ``add``, ``merge`` and ``result``.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar

import numpy as np

from schemas.errors import ConfigError


class Aggregate:
    """Base: a partial starts as ``empty()``; ``add`` folds one value in."""

    function: ClassVar[str]
    dtype: ClassVar[str]  # "int64" | "float64" | "string"

    def empty(self) -> Any:
        raise NotImplementedError

    def add(self, partial: Any, value: Any, ts: int) -> Any:
        raise NotImplementedError

    def merge(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def result(self, partial: Any) -> Any:
        raise NotImplementedError


class Count(Aggregate):
    function, dtype = "count", "int64"

    def empty(self) -> int:
        return 0

    def add(self, partial: int, value: Any, ts: int) -> int:
        return partial + (value is not None)

    def merge(self, a: int, b: int) -> int:
        return a + b

    def result(self, partial: int) -> int:
        return partial


class Sum(Aggregate):
    function, dtype = "sum", "float64"

    def empty(self) -> float:
        return 0.0

    def add(self, partial: float, value: Any, ts: int) -> float:
        return partial if value is None else partial + float(value)

    def merge(self, a: float, b: float) -> float:
        return a + b

    def result(self, partial: float) -> float:
        return partial


class Mean(Aggregate):
    """Mean of non-null values; booleans count as 0/1. Empty windows read null."""

    function, dtype = "mean", "float64"

    def empty(self) -> tuple[float, int]:
        return (0.0, 0)

    def add(self, partial: tuple[float, int], value: Any, ts: int) -> tuple[float, int]:
        if value is None:
            return partial
        return (partial[0] + float(value), partial[1] + 1)

    def merge(self, a: tuple[float, int], b: tuple[float, int]) -> tuple[float, int]:
        return (a[0] + b[0], a[1] + b[1])

    def result(self, partial: tuple[float, int]) -> float | None:
        return partial[0] / partial[1] if partial[1] else None


class Min(Aggregate):
    function, dtype = "min", "float64"

    def empty(self) -> float:
        return math.inf

    def add(self, partial: float, value: Any, ts: int) -> float:
        return partial if value is None else min(partial, float(value))

    def merge(self, a: float, b: float) -> float:
        return min(a, b)

    def result(self, partial: float) -> float | None:
        return None if math.isinf(partial) else partial


class Max(Min):
    function = "max"

    def empty(self) -> float:
        return -math.inf

    def add(self, partial: float, value: Any, ts: int) -> float:
        return partial if value is None else max(partial, float(value))

    def merge(self, a: float, b: float) -> float:
        return max(a, b)


class CountDistinct(Aggregate):
    """Exact distinct count; partials are value->count maps (cardinalities here are small)."""

    function, dtype = "count_distinct", "int64"

    def empty(self) -> dict:
        return {}

    def add(self, partial: dict, value: Any, ts: int) -> dict:
        if value is not None:
            partial[value] = partial.get(value, 0) + 1
        return partial

    def merge(self, a: dict, b: dict) -> dict:
        out = dict(a)
        for k, v in b.items():
            out[k] = out.get(k, 0) + v
        return out

    def result(self, partial: dict) -> int:
        return len(partial)


class Last(Aggregate):
    """Latest value by event time (ties: the later arrival wins)."""

    function, dtype = "last", "string"

    def empty(self) -> tuple[int, Any]:
        return (-1, None)

    def add(self, partial: tuple[int, Any], value: Any, ts: int) -> tuple[int, Any]:
        if value is None or ts < partial[0]:
            return partial
        return (ts, value)

    def merge(self, a: tuple[int, Any], b: tuple[int, Any]) -> tuple[int, Any]:
        return b if b[0] >= a[0] else a

    def result(self, partial: tuple[int, Any]) -> Any:
        return partial[1]


class Percentile(Aggregate):
    """Exact percentile (numpy's linear interpolation) over the window's values."""

    dtype = "float64"
    function = "pNN"

    def __init__(self, q: float) -> None:
        self.q = q

    def empty(self) -> list:
        return []

    def add(self, partial: list, value: Any, ts: int) -> list:
        if value is not None:
            partial.append(float(value))
        return partial

    def merge(self, a: list, b: list) -> list:
        return a + b

    def result(self, partial: list) -> float | None:
        return float(np.percentile(partial, self.q)) if partial else None


_SIMPLE: dict[str, type[Aggregate]] = {
    cls.function: cls for cls in (Count, Sum, Mean, Min, Max, CountDistinct, Last)
}
_PERCENTILE = re.compile(r"^p(\d{1,2})$")


def make_aggregate(function: str, field: str = "function") -> Aggregate:
    """The aggregate for a Feast ``Aggregation.function`` name; unknown names fail loudly."""
    if function in _SIMPLE:
        return _SIMPLE[function]()
    if (m := _PERCENTILE.match(function)) and 0 < int(m.group(1)) < 100:
        return Percentile(float(m.group(1)))
    known = ", ".join([*_SIMPLE, "p1..p99"])
    raise ConfigError(field, f"unsupported aggregation function {function!r} (known: {known})")
