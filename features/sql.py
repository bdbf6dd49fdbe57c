"""A view plan as Flink SQL: pane partials per entity in the JVM, one batch row per shard.

Two steps per view, both event-time window aggregations in the JVM:

1. ``panes``: per (entity, pane), the partial columns of every feature
   (``Aggregate.partial_columns``), over right-closed panes ``(E - pane, E]`` of
   ``event_time``: tumbling windows over the JVM's event time, which is 1 ms behind it
   (streams/job.py), so an event exactly on a boundary counts at it;
2. ``batch``: per (shard, pane), those rows gathered into one array, so Python receives
   one row per shard and pane instead of one per entity.

Beside them, ``ticks``: a row for every shard at every pane with data, so each shard
learns that event time passed the pane even when none of its entities was active (decay,
progress). The ticks count panes straight from the events, without a key: grouping the
``panes`` view again would have the planner compute the per-entity aggregation twice.

Every view's rows share one generic layout (:data:`BATCH_COLUMNS`, :data:`ITEM_TYPE`): an
array of items, one per entity, each holding its partials in five typed slots.
:class:`BatchLayout` says which slot positions hold which feature's partial. (One
ARRAY_AGG of a row per view, rather than one per partial column: each ARRAY_AGG brings
generated converter classes that the JVM compiles, and recompiles, while it runs.)
"""

from __future__ import annotations

from dataclasses import dataclass

from features.aggregations import SlotKind
from features.plans import ENTITY_SEP, ViewPlan

#: Flink SQL element type of each slot (the slot itself is an ARRAY of it).
SLOT_TYPES: dict[SlotKind, str] = {
    "long": "BIGINT",
    "double": "DOUBLE",
    "string": "STRING",
    "string_set": "ARRAY<STRING>",
    "double_list": "ARRAY<DOUBLE>",
}
#: One entity's partials, in the slots of their kinds (pane rows); or one column's values,
#: in the slot of their kind, the others null (drift slices, late counts: column_items_sql).
ITEM_TYPE = "ROW<name STRING, " + ", ".join(
    f"`{kind}s` ARRAY<{t}>" for kind, t in SLOT_TYPES.items()) + ">"
#: The generic batch row handed to Python. ``key`` is the shard (or the monitor key);
#: ``window_end`` the pane end (or the slice end).
BATCH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "STRING"), ("name", "STRING"), ("key", "STRING"), ("window_end", "TIMESTAMP(3)"),
    ("items", f"ARRAY<{ITEM_TYPE}>"))


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
    keys = ", ".join(f"`{k}`" for k in plan.join_keys)
    # One string per entity; ENTITY_SEP (code point 31) between a composite key's values.
    entity = f"`{plan.join_keys[0]}`" if len(plan.join_keys) == 1 \
        else f"CONCAT_WS(CHR({ord(ENTITY_SEP)}), {keys})"
    return (f"SELECT {entity} AS entity, window_start, window_end, {', '.join(partials)}\n"
            f"FROM TABLE(TUMBLE(TABLE {source}, DESCRIPTOR(rt), {interval(plan.pane_ms)}))\n"
            f"GROUP BY {keys}, window_start, window_end")


def typed_items(sql: str) -> str:
    """``sql`` (an array of items) cast to the batch rows' exact type, so that the union of
    every branch's rows (late counts, panes, ticks, slices) has one row type."""
    return f"CAST({sql} AS {dict(BATCH_COLUMNS)['items']})"


def item_sql(name: str, arrays: dict[SlotKind, str]) -> str:
    """One item: ``arrays`` maps a slot kind to the SQL array filling it (absent: null)."""
    slots = [arrays.get(kind, f"CAST(NULL AS ARRAY<{t}>)") for kind, t in SLOT_TYPES.items()]
    return f"ROW({name}, {', '.join(slots)})"


def column_items_sql(columns: list[tuple[str, SlotKind, str]]) -> str:
    """Items that are columns: per (name, slot kind, SQL array of its values), one item
    whose slot of that kind holds the array."""
    items = [item_sql(f"'{name}'", {kind: values}) for name, kind, values in columns]
    return typed_items(f"ARRAY[{', '.join(items)}]")


def batch_sql(plan: ViewPlan, panes: str, shards: int) -> str:
    """The generic batch rows of ``plan``: per shard and pane, its entities' partials."""
    slots: dict[SlotKind, list[str]] = {k: [] for k in SLOT_TYPES}
    for i, spec in enumerate(plan.features):
        for j, column in enumerate(spec.aggregate.partial_columns()):
            slots[column.kind].append(f"`f{i}_{j}`")
    item = item_sql("entity", {k: f"ARRAY[{', '.join(v)}]" for k, v in slots.items() if v})
    shard = shard_expr("entity", shards)
    return (f"SELECT 'pane' AS kind, '{plan.name}' AS name, CAST({shard} AS STRING) AS `key`, "
            f"window_end, {typed_items(f'ARRAY_AGG({item})')} AS items\n"
            f"FROM {panes} GROUP BY {shard}, window_start, window_end")


def ticks_sql(plan: ViewPlan, source: str, shards: int) -> str:
    """A ``tick`` row of ``plan`` for every shard at every pane of ``source`` with data
    (the same panes as :func:`panes_sql` over it)."""
    shard_list = ", ".join(str(s) for s in range(shards))
    return (f"SELECT 'tick', '{plan.name}', CAST(s AS STRING), window_end, "
            f"{typed_items('NULL')}\n"
            f"FROM (SELECT window_end FROM TABLE(TUMBLE(TABLE {source}, DESCRIPTOR(rt), "
            f"{interval(plan.pane_ms)})) "
            f"GROUP BY window_start, window_end)\n"
            f"CROSS JOIN UNNEST(ARRAY[{shard_list}]) AS shard_numbers(s)")
