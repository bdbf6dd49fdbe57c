"""Mergeable pane partials, one class per Feast aggregation function.

The JVM computes each (entity, pane) partial with Flink SQL aggregates (``partial_columns``:
the SQL and the kind of batch slot that carries it to Python); Python turns those
columns into a partial (``from_columns``), merges the partials of a trailing window
(``merge``, which never mutates its arguments) and reads the feature value
(``result``). ``output_types`` says which Feast value types the result may be
declared as for a given column type, so a mismatch fails when the repo is compiled.

SQL templates use ``{col}`` (the column), ``{time}`` (event time, epoch millis) and
``{seq}`` (the record's position in its Kafka partition, for ties).
"""

from __future__ import annotations

import math
import re
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

    def result(self, partial: Any) -> Any:
        raise NotImplementedError

    def output_types(self, column_type: str) -> frozenset[str]:
        """Feast value types this result may be declared as, over a ``column_type`` column."""
        raise NotImplementedError


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

    def result(self, partial: int) -> int:
        return partial

    def output_types(self, column_type: str) -> frozenset[str]:
        return INTEGER_TYPES


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

    def result(self, partial: float) -> float:
        return partial

    def output_types(self, column_type: str) -> frozenset[str]:
        return REAL_TYPES | INTEGER_TYPES if column_type in INTEGRAL else REAL_TYPES


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

    def result(self, partial: tuple[float, int]) -> float | None:
        return partial[0] / partial[1] if partial[1] else None

    def output_types(self, column_type: str) -> frozenset[str]:
        return REAL_TYPES


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

    def result(self, partial: float) -> float | None:
        return None if math.isinf(partial) else partial

    def output_types(self, column_type: str) -> frozenset[str]:
        return REAL_TYPES | INTEGER_TYPES if column_type in INTEGRAL else REAL_TYPES


class Max(Min):
    function = "max"
    _sql = "MAX"

    def empty(self) -> float:
        return -math.inf

    def merge(self, a: float, b: float) -> float:
        return max(a, b)


class CountDistinct(Aggregate):
    """Exact distinct count; a pane's partial is its set of distinct values (as text)."""

    function, accepts = "count_distinct", None

    def partial_columns(self) -> tuple[PartialColumn, ...]:
        return (PartialColumn("string_set", "ARRAY_AGG(DISTINCT CAST({col} AS STRING))"),)

    def from_columns(self, values: tuple[Any, ...]) -> frozenset[str]:
        return frozenset(v for v in values[0] or () if v is not None)

    def empty(self) -> frozenset[str]:
        return frozenset()

    def merge(self, a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
        return a | b

    def result(self, partial: frozenset[str]) -> int:
        return len(partial)

    def output_types(self, column_type: str) -> frozenset[str]:
        return INTEGER_TYPES


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

    def result(self, partial: tuple) -> str | None:
        return partial[2]  # as text: the writer converts to the declared type

    def output_types(self, column_type: str) -> frozenset[str]:
        return _OWN_TYPE[column_type]


class Percentile(Aggregate):
    """Exact percentile (numpy's linear interpolation); a pane keeps its values (a tuple:
    it pickles far faster than a small array, and pane state is pickled often)."""

    function = "pNN"

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

    def result(self, partial: tuple[float, ...]) -> float | None:
        return float(np.percentile(partial, self.q)) if partial else None

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
