"""Mergeable pane partials, one class per Feast aggregation function.

The JVM computes each (entity, pane) partial with Flink SQL aggregates (``partial_columns``:
the SQL and the kind of batch slot that carries it to Python); Python turns those
columns into a partial (``from_columns``) and merges partials (``merge``, which never
mutates its arguments; a pane's partials that come twice are merged).

A trailing window is kept as a running accumulator that panes join as they enter it and
leave as they age out (``start``, ``join``, ``leave``, ``value``), so a slide costs the
panes that move, not a pass over every pane the window holds. Leaving undoes joining
exactly: sums are kept as exact fixed-point integers (a sum reads the correctly rounded
sum of the panes in the window, and an emptied window reads exactly 0), a distinct count
counts per value the panes that hold it, and min, max and percentiles keep the window's
values as one sorted array (a percentile is then read off it, no sort per read).

``output_types`` says which Feast value types the result may be declared as for a given
column type, so a mismatch fails when the repo is compiled.

SQL templates use ``{col}`` (the column), ``{time}`` (event time, epoch millis) and
``{seq}`` (the record's position in its Kafka partition, for ties).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from schemas.errors import ConfigError

SlotKind = Literal["long", "double", "string", "string_set", "double_list"]
#: Column types of the validated stream (``schemas.validated.COLUMN_TYPES``).
INTEGRAL = frozenset({"int", "long", "boolean"})
NUMERIC = INTEGRAL | {"double"}
#: Feast value types (``ValueType`` names) a result may be written as.
INTEGER_TYPES = frozenset({"INT64", "INT32"})
REAL_TYPES = frozenset({"DOUBLE", "FLOAT"})
_OWN_TYPE = {"string": frozenset({"STRING"}), "int": INTEGER_TYPES, "long": frozenset({"INT64"}),
             "double": REAL_TYPES, "boolean": frozenset({"BOOL"})}


@dataclass(frozen=True)
class PartialColumn:
    """One JVM aggregate of a pane partial and the batch slot kind that carries it."""

    kind: SlotKind
    sql: str


class Aggregate:
    """Base class; subclasses fill the hooks for one Feast ``Aggregation.function``."""

    function: ClassVar[str]
    #: Whether a pane's partial grows with its events (a set, the values): worth
    #: dropping from a stored pane as soon as its own window has left it.
    sizeable: ClassVar[bool] = False
    #: Column types the function accepts (None: any).
    accepts: ClassVar[frozenset[str] | None] = NUMERIC

    def partial_columns(self) -> tuple[PartialColumn, ...]:
        raise NotImplementedError

    def from_columns(self, values: tuple[Any, ...]) -> Any:
        """The partial of one pane from its ``partial_columns`` values, in order."""
        raise NotImplementedError

    def empty(self) -> Any:
        raise NotImplementedError

    def merge(self, a: Any, b: Any) -> Any:
        raise NotImplementedError


    def output_types(self, column_type: str) -> frozenset[str]:
        """Feast value types this result may be declared as, over a ``column_type`` column."""
        raise NotImplementedError

    # The running window; ``join`` and ``leave`` may update ``acc`` in place.
    def start(self) -> Any:
        """An empty running window."""
        raise NotImplementedError

    def join(self, acc: Any, partial: Any) -> Any:
        raise NotImplementedError

    def leave(self, acc: Any, partial: Any) -> Any:
        """Undo ``join`` of the same pane's partial."""
        raise NotImplementedError

    def value(self, acc: Any) -> Any:
        """The feature value of the panes in the window."""
        raise NotImplementedError


#: Every finite double is a whole multiple of 2**-1074, so a sum of doubles held as an
#: integer count of that unit is exact: adding and then removing a value leaves no trace.
_FIXED_BITS = 1074
_FIXED_ONE = 1 << _FIXED_BITS
#: An exact running sum: (fixed-point total, and how many NaN, +inf and -inf it holds).
ExactSum = tuple[int, int, int, int]
EXACT_ZERO: ExactSum = (0, 0, 0, 0)


def exact_add(acc: ExactSum, x: float, sign: int = 1) -> ExactSum:
    """``acc`` plus (``sign`` 1) or minus (-1) the double ``x``, exactly."""
    total, nan, pos, neg = acc
    if math.isfinite(x):
        n, d = x.as_integer_ratio()  # d is a power of two
        return (total + sign * (n << (_FIXED_BITS + 1 - d.bit_length())), nan, pos, neg)
    if math.isnan(x):
        return (total, nan + sign, pos, neg)
    return (total, nan, pos + sign, neg) if x > 0 else (total, nan, pos, neg + sign)


def exact_value(acc: ExactSum) -> float:
    """The sum as the nearest double (Python rounds an int quotient correctly)."""
    total, nan, pos, neg = acc
    if nan or (pos and neg):
        return math.nan
    if pos or neg:
        return math.inf if pos else -math.inf
    try:
        return total / _FIXED_ONE
    except OverflowError:
        return math.inf if total > 0 else -math.inf


#: A sorted multiset of doubles: the values of the panes in a window (NaN sorts last).
EMPTY_VALUES = np.empty(0)


def with_values(acc: np.ndarray, values: Any) -> np.ndarray:
    v = np.sort(np.asarray(values, dtype=float))
    return np.insert(acc, np.searchsorted(acc, v), v)


def without_values(acc: np.ndarray, values: Any) -> np.ndarray:
    """``acc`` less one occurrence of each of ``values`` (which it holds)."""
    v = np.sort(np.asarray(values, dtype=float))
    rank = np.arange(v.size) - np.searchsorted(v, v)  # among equal values
    return np.delete(acc, np.searchsorted(acc, v) + rank)


class Count(Aggregate):
    function, accepts = "count", None

    def partial_columns(self) -> tuple[PartialColumn, ...]:
        return (PartialColumn("long", "COUNT({col})"),)

    def from_columns(self, values: tuple[Any, ...]) -> int:
        return int(values[0])

    def empty(self) -> int:
        return 0

    def merge(self, a: int, b: int) -> int:
        return a + b


    def output_types(self, column_type: str) -> frozenset[str]:
        return INTEGER_TYPES

    def start(self) -> int:
        return 0

    def join(self, acc: int, partial: int) -> int:
        return acc + partial

    def leave(self, acc: int, partial: int) -> int:
        return acc - partial

    def value(self, acc: int) -> int:
        return acc


class Sum(Aggregate):
    """Sum of non-null values (booleans as 0/1); an empty window reads 0."""

    function = "sum"

    def partial_columns(self) -> tuple[PartialColumn, ...]:
        return (PartialColumn("double", "SUM(CAST({col} AS DOUBLE))"),)

    def from_columns(self, values: tuple[Any, ...]) -> float:
        return 0.0 if values[0] is None else float(values[0])

    def empty(self) -> float:
        return 0.0

    def merge(self, a: float, b: float) -> float:
        return a + b


    def output_types(self, column_type: str) -> frozenset[str]:
        return REAL_TYPES | INTEGER_TYPES if column_type in INTEGRAL else REAL_TYPES

    def start(self) -> ExactSum:
        return EXACT_ZERO

    def join(self, acc: ExactSum, partial: float) -> ExactSum:
        return exact_add(acc, partial)

    def leave(self, acc: ExactSum, partial: float) -> ExactSum:
        return exact_add(acc, partial, -1)

    def value(self, acc: ExactSum) -> float:
        return exact_value(acc)


class Mean(Aggregate):
    """Mean of non-null values; booleans count as 0/1. Empty windows read null."""

    function = "mean"

    def partial_columns(self) -> tuple[PartialColumn, ...]:
        return (PartialColumn("double", "SUM(CAST({col} AS DOUBLE))"),
                PartialColumn("long", "COUNT({col})"))

    def from_columns(self, values: tuple[Any, ...]) -> tuple[float, int]:
        total, n = values
        return (0.0 if total is None else float(total), int(n))

    def empty(self) -> tuple[float, int]:
        return (0.0, 0)

    def merge(self, a: tuple[float, int], b: tuple[float, int]) -> tuple[float, int]:
        return (a[0] + b[0], a[1] + b[1])


    def output_types(self, column_type: str) -> frozenset[str]:
        return REAL_TYPES

    def start(self) -> tuple[ExactSum, int]:
        return (EXACT_ZERO, 0)

    def join(self, acc: tuple[ExactSum, int],
             partial: tuple[float, int]) -> tuple[ExactSum, int]:
        return (exact_add(acc[0], partial[0]), acc[1] + partial[1])

    def leave(self, acc: tuple[ExactSum, int],
              partial: tuple[float, int]) -> tuple[ExactSum, int]:
        return (exact_add(acc[0], partial[0], -1), acc[1] - partial[1])

    def value(self, acc: tuple[ExactSum, int]) -> float | None:
        return exact_value(acc[0]) / acc[1] if acc[1] else None


class Min(Aggregate):
    function = "min"
    _sql: ClassVar[str] = "MIN"

    def partial_columns(self) -> tuple[PartialColumn, ...]:
        return (PartialColumn("double", f"{self._sql}(CAST({{col}} AS DOUBLE))"),)

    def from_columns(self, values: tuple[Any, ...]) -> float:
        return self.empty() if values[0] is None else float(values[0])

    def empty(self) -> float:
        return math.inf

    def merge(self, a: float, b: float) -> float:
        return min(a, b)


    def output_types(self, column_type: str) -> frozenset[str]:
        return REAL_TYPES | INTEGER_TYPES if column_type in INTEGRAL else REAL_TYPES

    # The window: its panes' minima, sorted.
    def start(self) -> np.ndarray:
        return EMPTY_VALUES

    def join(self, acc: np.ndarray, partial: float) -> np.ndarray:
        return acc if math.isinf(partial) else with_values(acc, (partial,))

    def leave(self, acc: np.ndarray, partial: float) -> np.ndarray:
        return acc if math.isinf(partial) else without_values(acc, (partial,))

    def value(self, acc: np.ndarray) -> float | None:
        return float(acc[0]) if acc.size else None


class Max(Min):
    function = "max"
    _sql = "MAX"

    def empty(self) -> float:
        return -math.inf

    def merge(self, a: float, b: float) -> float:
        return max(a, b)

    def value(self, acc: np.ndarray) -> float | None:
        return float(acc[-1]) if acc.size else None


class CountDistinct(Aggregate):
    """Exact distinct count; a pane's partial is its set of distinct values (as text)."""

    function, accepts, sizeable = "count_distinct", None, True

    def partial_columns(self) -> tuple[PartialColumn, ...]:
        return (PartialColumn("string_set", "ARRAY_AGG(DISTINCT CAST({col} AS STRING))"),)

    def from_columns(self, values: tuple[Any, ...]) -> frozenset[str]:
        return frozenset(v for v in values[0] or () if v is not None)

    def empty(self) -> frozenset[str]:
        return frozenset()

    def merge(self, a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
        return a | b


    def output_types(self, column_type: str) -> frozenset[str]:
        return INTEGER_TYPES

    def start(self) -> Counter[str]:
        return Counter()

    def join(self, acc: Counter[str], partial: frozenset[str]) -> Counter[str]:
        acc.update(partial)
        return acc

    def leave(self, acc: Counter[str], partial: frozenset[str]) -> Counter[str]:
        for v in partial:
            if acc[v] <= 1:
                del acc[v]
            else:
                acc[v] -= 1
        return acc

    def value(self, acc: Counter[str]) -> int:
        return len(acc)


class Last(Aggregate):
    """Latest non-null value by event time; a tie goes to the record later in its Kafka
    partition. The JVM keeps the maximum of ``zero-padded time | position | value``."""

    function, accepts = "last", frozenset(_OWN_TYPE)
    _TIME_DIGITS, _SEQ_DIGITS = 13, 19  # epoch millis < 10^13 (the year 2286); a long

    def partial_columns(self) -> tuple[PartialColumn, ...]:
        return (PartialColumn("string", (
            f"MAX(CONCAT(LPAD(CAST({{time}} AS STRING), {self._TIME_DIGITS}, '0'), "
            f"LPAD(CAST({{seq}} AS STRING), {self._SEQ_DIGITS}, '0'), CAST({{col}} AS STRING)))")),)

    def from_columns(self, values: tuple[Any, ...]) -> tuple[int, int, str | None]:
        text = values[0]
        if text is None:
            return self.empty()
        cut = self._TIME_DIGITS + self._SEQ_DIGITS
        return (int(text[:self._TIME_DIGITS]), int(text[self._TIME_DIGITS:cut]), text[cut:])

    def empty(self) -> tuple[int, int, str | None]:
        return (-1, -1, None)

    def merge(self, a: tuple, b: tuple) -> tuple:
        return b if b[:2] >= a[:2] else a


    def output_types(self, column_type: str) -> frozenset[str]:
        return _OWN_TYPE[column_type]

    # A pane holds only events of its own time span and panes leave oldest first, so
    # when the pane that holds the window's latest value leaves, every pane still in the
    # window is newer and none has a value: the window is empty.

    def start(self) -> tuple:
        return self.empty()

    def join(self, acc: tuple, partial: tuple) -> tuple:
        return self.merge(acc, partial)

    def leave(self, acc: tuple, partial: tuple) -> tuple:
        return self.empty() if partial[:2] >= acc[:2] else acc

    def value(self, acc: tuple) -> str | None:
        return acc[2]  # as text: the writer converts to the declared type


class Percentile(Aggregate):
    """Exact percentile (numpy's linear interpolation); a pane keeps its values (a tuple:
    it pickles far faster than a small array)."""

    function, sizeable = "pNN", True

    def __init__(self, q: float) -> None:
        self.q = q

    def partial_columns(self) -> tuple[PartialColumn, ...]:
        return (PartialColumn("double_list",
                              "ARRAY_AGG(CAST({col} AS DOUBLE)) FILTER (WHERE {col} IS NOT NULL)"),)

    def from_columns(self, values: tuple[Any, ...]) -> tuple[float, ...]:
        return tuple(values[0] or ())

    def empty(self) -> tuple[float, ...]:
        return ()

    def merge(self, a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
        return a + b


    # The window: its panes' values, sorted.
    def start(self) -> np.ndarray:
        return EMPTY_VALUES

    def join(self, acc: np.ndarray, partial: tuple[float, ...]) -> np.ndarray:
        return with_values(acc, partial) if partial else acc

    def leave(self, acc: np.ndarray, partial: tuple[float, ...]) -> np.ndarray:
        return without_values(acc, partial) if partial else acc

    def value(self, acc: np.ndarray) -> float | None:
        """numpy's linear interpolation, read off the sorted values."""
        if not acc.size:
            return None
        if math.isnan(acc[-1]):
            return math.nan
        at = (acc.size - 1) * (self.q / 100)
        lo = math.floor(at)
        t = at - lo
        a, b = acc[lo], acc[min(lo + 1, acc.size - 1)]
        return float(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)

    def output_types(self, column_type: str) -> frozenset[str]:
        return REAL_TYPES


#: The one registry of aggregation functions (percentiles are matched by pattern).
AGGREGATES: dict[str, type[Aggregate]] = {
    cls.function: cls for cls in (Count, Sum, Mean, Min, Max, CountDistinct, Last)
}
_PERCENTILE = re.compile(r"^p(\d{1,2})$")


def make_aggregate(function: str, field: str = "function") -> Aggregate:
    """The aggregate for a Feast ``Aggregation.function`` name; unknown names fail loudly."""
    if function in AGGREGATES:
        return AGGREGATES[function]()
    if (m := _PERCENTILE.match(function)) and 0 < int(m.group(1)) < 100:
        return Percentile(float(m.group(1)))
    known = ", ".join([*AGGREGATES, "p1..p99"])
    raise ConfigError(field, f"unsupported aggregation function {function!r} (known: {known})")
