"""A view plan as Flink SQL: pane partials per entity in the JVM, one batch row per shard.

Two steps per view, both event-time window aggregations in the JVM:

1. ``panes``: per (entity, pane), the partial columns of every feature
   (``Aggregate.partial_columns``), over right-closed panes ``(E - pane, E]`` (a
   tumbling window with a 1 ms offset, so an event exactly on a boundary counts at it);
2. ``batch``: per (shard, pane), those rows gathered into arrays, so Python receives
   one row per shard and pane instead of one per entity, plus a ``tick`` row for every
   shard at every pane with data, so each shard learns that event time passed the pane
   even when none of its entities was active (decay, progress).

Every view's rows share one generic layout (:data:`BATCH_COLUMNS`): per slot kind, a list
of columns with one value per entity. :class:`BatchLayout` says which slots hold which
feature's partial.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.aggregations import SlotKind
from features.plans import ViewPlan

#: The generic batch row handed to Python (name, Flink SQL type). ``key`` is the shard;
#: ``window_end`` the pane end plus the 1 ms offset.
SLOT_TYPES: dict[SlotKind, str] = {
    "long": "ARRAY<ARRAY<BIGINT>>",
    "double": "ARRAY<ARRAY<DOUBLE>>",
    "string": "ARRAY<ARRAY<STRING>>",
    "string_set": "ARRAY<ARRAY<ARRAY<STRING>>>",
    "double_list": "ARRAY<ARRAY<ARRAY<DOUBLE>>>",
}
BATCH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "STRING"), ("name", "STRING"), ("key", "STRING"), ("window_end", "TIMESTAMP(3)"),
    ("entities", "ARRAY<STRING>"), *((f"{k}s", t) for k, t in SLOT_TYPES.items()))
RIGHT_CLOSED_OFFSET = "INTERVAL '0.001' SECOND"


def interval(ms: int) -> str:
    """A Flink SQL interval literal for ``ms`` (its planner rejects '300' SECOND, so the
    largest exact unit is used, or SECOND with an explicit precision)."""
    for unit, size in (("DAY", 86_400_000), ("HOUR", 3_600_000), ("MINUTE", 60_000)):
        if ms % size == 0 and ms // size < 100:
            return f"INTERVAL '{ms // size}' {unit}"
    seconds, millis = divmod(ms, 1000)
    digits = max(2, len(str(seconds)))
    if millis:
        return f"INTERVAL '{seconds}.{millis:03d}' SECOND({digits}, 3)"
    return f"INTERVAL '{seconds}' SECOND({digits})"


@dataclass(frozen=True)
class BatchLayout:
    """Where each feature's partial columns sit in a batch row: per feature, a tuple of
    (slot kind, column index within that slot) in ``partial_columns`` order."""

    view: str
    slots: tuple[tuple[tuple[SlotKind, int], ...], ...]


def layout(plan: ViewPlan) -> BatchLayout:
    counts: dict[SlotKind, int] = dict.fromkeys(SLOT_TYPES, 0)
    per_feature = []
    for spec in plan.features:
        cells = []
        for column in spec.aggregate.partial_columns():
            cells.append((column.kind, counts[column.kind]))
            counts[column.kind] += 1
        per_feature.append(tuple(cells))
    return BatchLayout(plan.name, tuple(per_feature))


def shard_expr(expr: str, shards: int) -> str:
    """A stable shard number in [0, shards) (Java's String.hashCode is specified)."""
    return f"MOD(MOD(HASH_CODE({expr}), {shards}) + {shards}, {shards})"


def panes_sql(plan: ViewPlan, source: str, time_col: str, seq_col: str) -> str:
    """Per (entity, pane) partials of every feature of ``plan`` over ``source``
    (``rt`` is its event-time attribute)."""
    partials = []
    for i, spec in enumerate(plan.features):
        for j, column in enumerate(spec.aggregate.partial_columns()):
            sql = column.sql.format(col=f"`{spec.column}`", time=time_col, seq=seq_col)
            partials.append(f"{sql} AS `f{i}_{j}`")
    key = f"`{plan.join_key}`"
    return (f"SELECT {key} AS entity, window_start, window_end, {', '.join(partials)}\n"
            f"FROM TABLE(TUMBLE(TABLE {source}, DESCRIPTOR(rt), {interval(plan.pane_ms)}, "
            f"{RIGHT_CLOSED_OFFSET}))\nGROUP BY {key}, window_start, window_end")


def batch_sql(plan: ViewPlan, panes: str, shards: int) -> str:
    """The generic batch rows of ``plan`` (per shard and pane) plus its tick rows."""
    slots: dict[SlotKind, list[str]] = {k: [] for k in SLOT_TYPES}
    for i, spec in enumerate(plan.features):
        for j, column in enumerate(spec.aggregate.partial_columns()):
            slots[column.kind].append(f"ARRAY_AGG(`f{i}_{j}`)")
    arrays = [f"ARRAY[{', '.join(cols)}]" if cols else f"CAST(NULL AS {SLOT_TYPES[kind]})"
              for kind, cols in slots.items()]
    nulls = [f"CAST(NULL AS {t})" for _, t in BATCH_COLUMNS[4:]]
    shard = shard_expr("entity", shards)
    names = [name for name, _ in BATCH_COLUMNS]
    shard_list = ", ".join(str(s) for s in range(shards))
    return (f"SELECT 'pane' AS kind, '{plan.name}' AS name, CAST({shard} AS STRING) AS `key`, "
            f"window_end, ARRAY_AGG(entity) AS entities, "
            + ", ".join(f"{a} AS {n}" for a, n in zip(arrays, names[5:], strict=True))
            + f"\nFROM {panes} GROUP BY {shard}, window_start, window_end\nUNION ALL\n"
            f"SELECT 'tick', '{plan.name}', CAST(s AS STRING), window_end, {', '.join(nulls)}\n"
            f"FROM (SELECT window_start, window_end FROM {panes} "
            f"GROUP BY window_start, window_end)\n"
            f"CROSS JOIN UNNEST(ARRAY[{shard_list}]) AS shard_numbers(s)")
