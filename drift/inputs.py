"""Turn column values as they arrive (numpy, lists with ``None``, pandas, pyarrow) into
clean arrays, dropping missing values and counting them.

Kept apart from the statistics so a monitor cleans a column once and feeds the same
clean array to every statistic on it.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from drift.errors import DriftInputError

Kind = Literal["numeric", "categorical", "embedding"]

OTHER = "__other__"
"""Bucket for categories that the reference never saw."""


def _to_plain(values: Any) -> Any:
    """pyarrow arrays/chunked arrays become Python/numpy without importing pyarrow."""
    if hasattr(values, "to_numpy") and type(values).__module__.startswith("pyarrow"):
        return values.to_numpy(zero_copy_only=False)
    return values


def _is_missing_scalar(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # arrays and other non-scalars are not "missing"
        return False


def clean_numeric(values: Any, column: str | None = None) -> tuple[np.ndarray, int]:
    """Float64 array of the finite values and the count of missing ones.

    NaN, None, pandas NA and +-inf count as missing: none of them has a place on the
    reference's quantile grid, and an infinite latency is a data bug to count, not
    a value to bin.
    """
    values = _to_plain(values)
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        try:
            arr = np.array(
                [np.nan if _is_missing_scalar(v) else float(v) for v in values],
                dtype=np.float64,
            )
        except (TypeError, ValueError) as exc:
            raise DriftInputError(column, f"values are not numeric ({exc})") from exc
    arr = arr.reshape(-1) if arr.ndim == 0 else arr
    if arr.ndim != 1:
        raise DriftInputError(column, f"numeric values must be 1-D, got shape {arr.shape}")
    ok = np.isfinite(arr)
    n_missing = int(arr.size - np.count_nonzero(ok))
    return (arr if n_missing == 0 else arr[ok]), n_missing


def clean_categorical(values: Any, column: str | None = None) -> tuple[np.ndarray, int]:
    """Object array of ``str`` categories and the count of missing ones.

    Non-string categories are compared by ``str()``: send the same type the reference
    was built from (``1`` and ``1.0`` are different categories).
    """
    values = _to_plain(values)
    if isinstance(values, str):
        raise DriftInputError(column, "categorical values must be a sequence, got a string")
    if isinstance(values, pd.Series):
        series = values
    elif isinstance(values, np.ndarray):
        series = pd.Series(values.reshape(-1), dtype=object)
    else:
        series = pd.Series(list(values), dtype=object)
    mask = series.isna().to_numpy()
    arr = series[~mask].astype(str).to_numpy(dtype=object)
    return arr, int(mask.sum())


def clean_embedding(
    values: Any, column: str | None = None, dim: int | None = None
) -> tuple[np.ndarray, int]:
    """2-D float64 array (n x d) of the complete rows and the count of missing rows.

    A row is missing when it is ``None``/NaN or holds any non-finite number. ``dim``,
    when given, is the dimension the reference fixed; another dimension is an error,
    not a missing value, because it means the embedding model changed.
    """
    values = _to_plain(values)
    if isinstance(values, np.ndarray) and values.dtype != object:
        arr = np.asarray(values, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, dim or (arr.shape[-1] if arr.ndim == 2 else 0))
        if arr.ndim != 2:
            raise DriftInputError(column, f"embeddings must be 2-D (n x d), got {arr.shape}")
        n_absent = 0
    else:
        arr, n_absent = _stack_rows(values, column, dim)
    if dim is not None and arr.shape[0] and arr.shape[1] != dim:
        raise DriftInputError(column, f"embedding dimension {arr.shape[1]}, reference {dim}")
    good = np.isfinite(arr).all(axis=1)
    n_bad = int(arr.shape[0] - np.count_nonzero(good))
    return (arr if n_bad == 0 else arr[good]), n_absent + n_bad


def _stack_rows(values: Any, column: str | None, dim: int | None) -> tuple[np.ndarray, int]:
    """Rows given one by one (lists, arrays, ``None``) as a matrix, and the absent count."""
    if isinstance(values, list):  # the stream's case: lists of floats, None where absent
        present = [v for v in values if v is not None]
        try:
            matrix = np.array(present, dtype=np.float64)
        except (TypeError, ValueError):
            matrix = None  # ragged or not numeric: the row-by-row path says which
        if matrix is not None and matrix.ndim == 2:
            return matrix, len(values) - len(present)
    rows: list[np.ndarray] = []
    n_absent = 0
    for v in values:
        if _is_missing_scalar(v):
            n_absent += 1
            continue
        try:
            rows.append(np.asarray(v, dtype=np.float64).reshape(-1))
        except (TypeError, ValueError) as exc:
            raise DriftInputError(column, f"embedding row is not numeric ({exc})") from exc
    if not rows:
        return np.empty((0, dim or 0), dtype=np.float64), n_absent
    dims = {r.size for r in rows}
    if len(dims) != 1:
        raise DriftInputError(column, f"embedding rows differ in length: {sorted(dims)}")
    return np.vstack(rows), n_absent


CLEANERS = {
    "numeric": clean_numeric,
    "categorical": clean_categorical,
    "embedding": clean_embedding,
}
