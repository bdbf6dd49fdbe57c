"""Reference profiles: the fitted tests of a monitor and the version that names them.

A profile is fitted once (from a Parquet training set, the offline log or the first N
events of a stream), kept in Flink state, and named in every alert by its
``reference_id``: ``"{source}:{n_rows}:{sha256[:12]}"`` over the canonical content of
the referenced columns and the parameters of every test. The same data and checks
always give the same id; new data or new tuning gives a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from drift.base import FittedTest
from drift.config import ColumnCheck, MonitorConfig
from drift.errors import DriftConfigError
from drift.inputs import CLEANERS

ID_VERSION = "driftline-reference-v1"

ColumnData: TypeAlias = Mapping[str, Any] | pd.DataFrame


@dataclass(frozen=True)
class ReferenceProfile:
    """Fitted tests keyed by (column, statistic), with the id that versions them."""

    reference_id: str
    source: str
    n_rows: int
    checks: tuple[ColumnCheck, ...]
    tests: Mapping[tuple[str, str], FittedTest[Any]]
    #: (column, statistic) -> why the reference could not fit it (a constant column, a
    #: column with no values); a monitor skips these tests and says why
    unfit: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        data: ColumnData,
        checks: MonitorConfig | Sequence[ColumnCheck],
        *,
        source: str = "inline",
        tolerate_unfit: bool = False,
    ) -> ReferenceProfile:
        """Fit every test of ``checks`` on the matching column of ``data``.

        Raises :class:`DriftConfigError` naming the column when one is absent or has
        too few valid values for a statistic; with ``tolerate_unfit`` such a test is
        recorded in :attr:`unfit` with the reason instead (a stream must not stop
        because one tenant's column is constant or empty).
        """
        checks = tuple(checks.checks if isinstance(checks, MonitorConfig) else checks)
        if ":" in source:
            raise DriftConfigError("source", f"must not contain ':', got {source!r}")
        digest = hashlib.sha256(ID_VERSION.encode())
        tests: dict[tuple[str, str], FittedTest[Any]] = {}
        n_rows = 0
        unfit: dict[tuple[str, str], str] = {}
        for check in sorted(checks, key=lambda c: c.column):
            if check.column not in data:
                error = DriftConfigError(f"reference[{check.column}]",
                                         "column not in the reference data", column=check.column)
                if not tolerate_unfit:
                    raise error
                unfit.update({(check.column, stat): str(error) for stat in check.statistics})
                continue
            raw = data[check.column]
            n_rows = max(n_rows, len(raw))
            clean, n_missing = CLEANERS[check.kind](raw, check.column)
            _hash_column(digest, check, clean, n_missing)
            for stat in check.statistics:
                test = check.build(stat)
                digest.update(json.dumps([stat, test.params()], sort_keys=True).encode())
                try:
                    tests[(check.column, stat)] = test.fit(raw, check.column)
                except DriftConfigError as exc:
                    if not tolerate_unfit:
                        raise
                    unfit[(check.column, stat)] = exc.args[0] if exc.args else str(exc)
        reference_id = f"{source}:{n_rows}:{digest.hexdigest()[:12]}"
        return cls(reference_id, source, n_rows, checks, tests, unfit)

    @classmethod
    def from_columns(
        cls,
        data: ColumnData,
        checks: MonitorConfig | Sequence[ColumnCheck],
        *,
        source: str = "inline",
    ) -> ReferenceProfile:
        """Alias of :meth:`fit`, named for callers holding column lists."""
        return cls.fit(data, checks, source=source)

    @classmethod
    def from_parquet(
        cls,
        path: str | Path,
        checks: MonitorConfig | Sequence[ColumnCheck],
        *,
        columns: Sequence[str] | None = None,
        source: str = "parquet",
    ) -> ReferenceProfile:
        """Fit from a Parquet file or dataset directory, reading only the needed columns."""
        import pyarrow.parquet as pq

        checks = tuple(checks.checks if isinstance(checks, MonitorConfig) else checks)
        wanted = list(columns) if columns is not None else [c.column for c in checks]
        table = pq.read_table(str(path), columns=wanted)
        kinds = {c.column: c.kind for c in checks}
        data = {
            name: _arrow_values(table.column(name), kinds.get(name, "numeric"))
            for name in table.column_names
        }
        return cls.fit(data, checks, source=source)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        checks: MonitorConfig | Sequence[ColumnCheck],
        *,
        source: str = "first_n",
    ) -> ReferenceProfile:
        """Fit from event dicts (e.g. the first N decoded interactions of a stream)."""
        checks = tuple(checks.checks if isinstance(checks, MonitorConfig) else checks)
        return cls.fit(
            columns_from_records(records, [c.column for c in checks]), checks, source=source
        )

    def test(self, column: str, statistic: str) -> FittedTest[Any]:
        try:
            return self.tests[(column, statistic)]
        except KeyError:
            raise DriftConfigError(
                f"profile[{column}].{statistic}",
                f"reference {self.reference_id} has no fitted {statistic} for {column!r}",
                column=column,
                statistic=statistic,
            ) from None

    def missing(self, config: MonitorConfig) -> list[tuple[str, str]]:
        """(column, statistic) pairs ``config`` needs that this profile neither fitted nor
        recorded as unfit."""
        return [pair for pair in config.tests() if pair not in self.tests
                and pair not in self.unfit]


def columns_from_records(
    records: Iterable[Mapping[str, Any]], columns: Sequence[str]
) -> dict[str, list[Any]]:
    """Column lists from row dicts; an absent key reads as missing (None)."""
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for rec in records:
        for c in columns:
            out[c].append(rec.get(c))
    return out


def _hash_column(digest: Any, check: ColumnCheck, clean: np.ndarray, n_missing: int) -> None:
    digest.update(json.dumps([check.column, check.kind, n_missing, clean.shape]).encode())
    if check.kind == "categorical":
        digest.update("\x1f".join(clean.tolist()).encode("utf-8", "surrogatepass"))
    else:
        digest.update(np.ascontiguousarray(clean, dtype="<f8").tobytes())


def _arrow_values(column: Any, kind: str) -> Any:
    """Arrow column to what the cleaners take; fixed-length embeddings without nulls
    become one 2-D array instead of a Python list of rows."""
    import pyarrow as pa

    if kind == "embedding":
        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_fixed_size_list(arr.type) and arr.null_count == 0:
            return arr.flatten().to_numpy(zero_copy_only=False).reshape(len(arr), -1)
        variable = pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)
        if variable and arr.null_count == 0 and len(arr):
            lengths = np.diff(arr.offsets.to_numpy())
            if (lengths == lengths[0]).all():
                flat = arr.flatten().to_numpy(zero_copy_only=False)
                return flat.reshape(len(arr), int(lengths[0]))
        return arr.to_pylist()
    if kind == "categorical":
        return column.to_pylist()
    return column.to_numpy()
