"""The tables the JVM hands to Python, one per branch, and the typed records they become.

Every row has the generic layout of ``features.sql.BATCH_COLUMNS`` (an array of items
of ``features.sql.ITEM_TYPE``) and a ``kind``:

- ``pane`` / ``tick``: one shard of a feature view at a pane end (features/sql.py);
- ``drift``: one monitor key's values in a slice of event time (drift/slices.py), an item
  per checked column holding its value of every event of the slice;
- ``late``: how many records arrived behind the watermark in a second of wall time.

(A drift slice's items are columns, not events: the JVM builds one array per column
rather than a row and its arrays per event, and Python reads six lists instead of
building a row per event; benchmarks/READING.md has what that measured.)

Python converts each row once, in its branch's first Python step, into a
:class:`PaneBatch`, :class:`DriftSlice` or :class:`LateRecords`; nothing downstream reads
a row by position.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from typing import Any

import numpy as np

from drift.config import MonitorConfig
from drift.slices import DriftSlice, slice_ms
from features.aggregations import SlotKind
from features.plans import ViewPlan
from features.sql import SLOT_TYPES, BatchLayout, column_items_sql, interval, layout
from features.tiles import PaneBatch
from schemas.validated import packed_columns, unpack_floats

PANE, TICK, DRIFT, LATE = "pane", "tick", "drift", "late"
ALL_TENANTS = "*"
#: The slot of a drift column by the kind of its check.
_DRIFT_SLOT: dict[str, SlotKind] = {"numeric": "double", "categorical": "string",
                                    "embedding": "string"}  # packed (schemas/validated.py)


@dataclass(frozen=True)
class LateRecords:
    """Records that arrived behind the watermark (not merged into any window)."""

    count: int


def _drift_slots(monitor: MonitorConfig) -> dict[str, SlotKind]:
    """Checked column -> the item slot that carries its values."""
    return {c.column: _DRIFT_SLOT[c.kind] for c in monitor.checks}


def drift_sql(monitor: MonitorConfig, source: str, window_ms: int, per_tenant: bool) -> str:
    """Per (monitor key, slice): one item per checked column with its value of every
    event of the slice (ARRAY_AGG keeps nulls)."""
    columns = [(column, slot, f"ARRAY_AGG(CAST(`{column}` AS {SLOT_TYPES[slot]}))")
               for column, slot in _drift_slots(monitor).items()]
    key = "tenant_id" if per_tenant else f"'{ALL_TENANTS}'"
    return (f"SELECT '{DRIFT}' AS kind, '{monitor.name}' AS name, {key} AS `key`, window_end, "
            f"{column_items_sql(columns)} AS items\n"
            f"FROM TABLE(TUMBLE(TABLE {source}, DESCRIPTOR(rt), "
            f"{interval(slice_ms(window_ms))}))\nGROUP BY {key}, window_start, window_end")


def late_sql(source: str) -> str:
    """Counts of late records per second of processing time (``pt``)."""
    items = column_items_sql([("n", "long", "ARRAY[n]")])
    return (f"SELECT '{LATE}' AS kind, '{LATE}' AS name, '{LATE}' AS `key`, window_end, "
            f"{items} AS items\nFROM (SELECT window_end, COUNT(*) AS n "
            f"FROM TABLE(TUMBLE(TABLE {source}, DESCRIPTOR(pt), INTERVAL '1' SECOND))\n"
            f"GROUP BY window_start, window_end)")


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
        position = {kind: i + 1 for i, kind in enumerate(SLOT_TYPES)}  # item[0]: its name
        self.drift_slots = {column: position[slot] for column, slot
                            in (_drift_slots(monitor) if monitor else {}).items()}
        self.packed_columns = packed_columns()

    def __call__(self, row: Any) -> PaneBatch | DriftSlice | LateRecords:
        kind, name, key, window_end, items = row[0], row[1], row[2], _epoch_ms(row[3]), row[4]
        if kind == LATE:
            return LateRecords(int(items[0][1][0]))
        if kind == DRIFT:
            columns: dict[str, list[Any] | np.ndarray] = {}
            for item in items:
                column, values = item[0], item[self.drift_slots[item[0]]]
                columns[column] = unpack_floats(values) if column in self.packed_columns \
                    else list(values)
            return DriftSlice(key, window_end - slice_ms(self.drift_window_ms), window_end,
                              columns)
        return PaneBatch.from_items(self.plans[name], self.layouts[name], int(key),
                                    window_end, items)


__all__ = ["ALL_TENANTS", "DRIFT", "LATE", "PANE", "TICK", "DriftSlice", "LateRecords",
           "PaneBatch", "RecordBuilder", "drift_sql", "late_sql"]
