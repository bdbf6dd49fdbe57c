"""The one table the JVM hands to Python, and the typed records it becomes.

Every row has the generic layout of ``features.sql.BATCH_COLUMNS`` and a ``kind``:

- ``pane`` / ``tick``: one shard of a feature view at a pane end (features/sql.py);
- ``drift``: one monitor key's values in a slice of event time (drift/slices.py);
- ``late``: how many records arrived behind the watermark in a second of wall time.

Python converts each row once, in the first Python step, into a :class:`PaneBatch`,
:class:`DriftSlice` or :class:`LateRecords`; nothing downstream reads a row by position.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from typing import Any

from drift.config import MonitorConfig
from drift.slices import DriftSlice, slice_ms
from features.plans import ViewPlan
from features.sql import BATCH_COLUMNS, SLOT_TYPES, BatchLayout, interval, layout
from features.tiles import PaneBatch

PANE, TICK, DRIFT, LATE = "pane", "tick", "drift", "late"
ALL_TENANTS = "*"
_SLOTS = list(SLOT_TYPES)  # slot kinds, in BATCH_COLUMNS order


@dataclass(frozen=True)
class LateRecords:
    """Records that arrived behind the watermark (not merged into any window)."""

    count: int


def _nulls(columns: list[str]) -> str:
    types = dict(BATCH_COLUMNS)
    return ", ".join(f"CAST(NULL AS {types[c]}) AS {c}" for c in columns)


def drift_sql(monitor: MonitorConfig, source: str, window_ms: int, per_tenant: bool) -> str:
    """Per (monitor key, slice): every checked column's values, one entry per event."""
    by_kind: dict[str, list[str]] = {"doubles": [], "strings": [], "double_lists": []}
    for check in monitor.checks:
        col = f"`{check.column}`"
        if check.kind == "numeric":
            by_kind["doubles"].append(f"ARRAY_AGG(CAST({col} AS DOUBLE))")
        elif check.kind == "categorical":
            by_kind["strings"].append(f"ARRAY_AGG(CAST({col} AS STRING))")
        else:
            by_kind["double_lists"].append(f"ARRAY_AGG(CAST({col} AS ARRAY<DOUBLE>))")
    arrays = {k: f"ARRAY[{', '.join(v)}] AS {k}" if v else f"CAST(NULL AS "
              f"{dict(BATCH_COLUMNS)[k]}) AS {k}" for k, v in by_kind.items()}
    key = "tenant_id" if per_tenant else f"'{ALL_TENANTS}'"
    return (f"SELECT '{DRIFT}' AS kind, '{monitor.name}' AS name, {key} AS `key`, window_end, "
            f"{_nulls(['entities', 'longs'])}, {arrays['doubles']}, {arrays['strings']}, "
            f"{_nulls(['string_sets'])}, {arrays['double_lists']}\n"
            f"FROM TABLE(TUMBLE(TABLE {source}, DESCRIPTOR(rt), "
            f"{interval(slice_ms(window_ms))}))\nGROUP BY {key}, window_start, window_end")


def late_sql(source: str) -> str:
    """Counts of late records per second of processing time (``pt``)."""
    return (f"SELECT '{LATE}' AS kind, '{LATE}' AS name, '{LATE}' AS `key`, window_end, "
            f"{_nulls(['entities'])}, ARRAY[ARRAY[COUNT(*)]] AS longs, "
            f"{_nulls(['doubles', 'strings', 'string_sets', 'double_lists'])}\n"
            f"FROM TABLE(TUMBLE(TABLE {source}, DESCRIPTOR(pt), INTERVAL '1' SECOND))\n"
            f"GROUP BY window_start, window_end")


def _epoch_ms(ts: Any) -> int:
    """A TIMESTAMP(3) from Flink (a naive datetime in the job's UTC session zone)."""
    return calendar.timegm(ts.timetuple()) * 1000 + ts.microsecond // 1000


class RecordBuilder:
    """Row of the batch table -> typed record (picklable: it runs in the Python worker)."""

    def __init__(self, plans: list[ViewPlan], monitor: MonitorConfig | None,
                 drift_window_ms: int) -> None:
        self.plans = {p.name: p for p in plans}
        self.layouts: dict[str, BatchLayout] = {p.name: layout(p) for p in plans}
        self.drift_window_ms = drift_window_ms
        self.drift_columns: dict[str, list[str]] = {"double": [], "string": [],
                                                    "double_list": []}
        slot_of = {"numeric": "double", "categorical": "string", "embedding": "double_list"}
        for check in monitor.checks if monitor else ():
            self.drift_columns[slot_of[check.kind]].append(check.column)

    def __call__(self, row: Any) -> PaneBatch | DriftSlice | LateRecords:
        kind, name, key, window_end = row[0], row[1], row[2], _epoch_ms(row[3])
        if kind == LATE:
            return LateRecords(int(row[5][0][0]))
        slots = dict(zip(_SLOTS, row[5:], strict=True))
        if kind == DRIFT:
            columns: dict[str, list[Any]] = {}
            for slot, names in self.drift_columns.items():
                for column, values in zip(names, slots[slot] or (), strict=True):
                    columns[column] = values
            width = slice_ms(self.drift_window_ms)
            return DriftSlice(key, window_end - width, window_end, columns)
        plan = self.plans[name]
        # The pane is (E - pane, E]; its window ends 1 ms later (features.sql).
        return PaneBatch.from_slots(plan, self.layouts[name], int(key), window_end - 1,
                                    row[4], slots)


__all__ = ["ALL_TENANTS", "DRIFT", "LATE", "PANE", "TICK", "DriftSlice", "LateRecords",
           "PaneBatch", "RecordBuilder", "drift_sql", "late_sql"]
