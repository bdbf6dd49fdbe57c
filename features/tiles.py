"""Trailing event-time windows for all entities of one shard, kept as pane tiles.

The JVM hands over one :class:`PaneBatch` per shard and pane: every entity's partials
of the pane ``(E - pane, E]``. A window at boundary ``B`` of length ``w`` is exactly the
panes ending in ``(B - w, B]`` (the right-closed trailing window DESIGN asks for).

A feature can only change at a boundary where a pane enters its window or leaves it, so
adding a pane schedules its entity at those two boundaries per (window, slide), and
:meth:`ViewWindows.advance` evaluates only the entities due, in boundary order, once the
watermark has passed. Work follows panes, not entities x boundaries, and a quiet entity
still decays: the boundary where its last pane leaves the window is due, and it writes 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from features.plans import ViewPlan
from features.sql import BatchLayout


@dataclass(frozen=True)
class FeatureRow:
    """Feature values of one entity as of ``ts_ms`` (a window boundary); what the writer
    writes. ``values`` holds only the features that changed since the last row."""

    view: str
    entity_value: str
    ts_ms: int
    values: dict[str, Any]


#: Watermarks at or past this mean "end of input" (Flink sends Long.MAX_VALUE).
END_OF_INPUT = 2**62


def _ceil_to(ts: int, step: int) -> int:
    return -(-ts // step) * step


@dataclass(frozen=True)
class PaneBatch:
    """One shard's panes of a view that end at ``pane_end``: per entity, one partial per
    feature (in plan order). No entities: a tick (event time passed ``pane_end``)."""

    view: str
    shard: int
    pane_end: int
    entities: tuple[str, ...]
    partials: tuple[tuple[Any, ...], ...]

    @classmethod
    def from_slots(cls, plan: ViewPlan, layout: BatchLayout, shard: int, pane_end: int,
                   entities: list[str] | None, slots: dict[str, list[list[Any]] | None]
                   ) -> PaneBatch:
        """Build from the generic batch row's columns (``features.sql.BATCH_COLUMNS``)."""
        if not entities:
            return cls(plan.name, shard, pane_end, (), ())
        per_feature = []
        for spec, cells in zip(plan.features, layout.slots, strict=True):
            columns = [slots[kind][index] for kind, index in cells]  # type: ignore[index]
            from_columns = spec.aggregate.from_columns
            per_feature.append([from_columns(values) for values in zip(*columns, strict=True)])
        return cls(plan.name, shard, pane_end, tuple(entities),
                   tuple(zip(*per_feature, strict=True)))


@dataclass
class EntityTiles:
    """One entity's pane partials and the values last written for it."""

    panes: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    #: feature -> last written value; absent means the empty value (0 or null)
    written: dict[str, Any] = field(default_factory=dict)
    written_once: bool = False


@dataclass
class ShardTiles:
    """Picklable state of one (view, shard): kept in Flink keyed state."""

    entities: dict[str, EntityTiles] = field(default_factory=dict)
    #: boundary -> entities whose features may change there
    due: dict[int, set[str]] = field(default_factory=dict)
    #: every boundary at or before this has been written
    through: int = -1
    #: the newest pane end seen (ticks included): where a bounded input ends
    latest_pane: int = -1


class ViewWindows:
    """Stateless logic over :class:`ShardTiles` for one view plan."""

    def __init__(self, plan: ViewPlan) -> None:
        self.plan = plan
        self._groups = sorted({(f.window_ms, f.slide_ms) for f in plan.features})
        self._empty = {f.name: f.aggregate.result(f.aggregate.empty()) for f in plan.features}

    def add(self, shard: ShardTiles, batch: PaneBatch) -> None:
        """Fold a batch's panes in and schedule the boundaries where they matter."""
        pane = batch.pane_end
        shard.latest_pane = max(shard.latest_pane, pane)
        points = {_ceil_to(pane + lag, slide) for window, slide in self._groups
                  for lag in (0, window)}
        for entity, partials in zip(batch.entities, batch.partials, strict=True):
            tiles = shard.entities.get(entity)
            if tiles is None:
                tiles = shard.entities[entity] = EntityTiles()
            old = tiles.panes.get(pane)
            if old is not None:  # the JVM closes a pane once; merge rather than lose data
                partials = tuple(f.aggregate.merge(a, b) for f, a, b
                                 in zip(self.plan.features, old, partials, strict=True))
            tiles.panes[pane] = partials
            for point in points:
                shard.due.setdefault(point, set()).add(entity)

    def advance(self, shard: ShardTiles, watermark: int) -> list[FeatureRow]:
        """Evaluate every due entity at every due boundary up to ``watermark``, in order;
        return the rows to write (changed features only; the first row of an entity has
        all of them, so a quiet entity reads 0, not null).

        The end of a bounded input arrives as a watermark past all time; event time then
        ends with the last pane, so nothing is written for boundaries after it.
        """
        if watermark >= END_OF_INPUT:
            watermark = shard.latest_pane
        rows = []
        for boundary in sorted(b for b in shard.due if b <= watermark):
            for entity in sorted(shard.due.pop(boundary)):
                row = self._evaluate(shard, entity, boundary)
                if row is not None:
                    rows.append(row)
        shard.through = max(shard.through, watermark)
        return rows

    def value_at(self, tiles: EntityTiles, index: int, boundary: int) -> Any:
        spec = self.plan.features[index]
        agg = spec.aggregate
        acc = agg.empty()
        lo = boundary - spec.window_ms
        for pane_end, partials in tiles.panes.items():
            if lo < pane_end <= boundary:
                acc = agg.merge(acc, partials[index])
        return agg.result(acc)

    def _evaluate(self, shard: ShardTiles, entity: str, boundary: int) -> FeatureRow | None:
        tiles = shard.entities.get(entity)
        if tiles is None:
            return None
        changed: dict[str, Any] = {}
        for i, spec in enumerate(self.plan.features):
            value = self.value_at(tiles, i, boundary // spec.slide_ms * spec.slide_ms)
            empty = self._empty[spec.name]
            if not tiles.written_once or value != tiles.written.get(spec.name, empty):
                changed[spec.name] = value
            if value == empty:
                tiles.written.pop(spec.name, None)
            else:
                tiles.written[spec.name] = value
        tiles.written_once = True
        # A feature reads its window at its own last slide boundary, so keep every pane
        # that a window read at or after this boundary can still hold.
        horizon = min(boundary // f.slide_ms * f.slide_ms - f.window_ms
                      for f in self.plan.features)
        for pane_end in [p for p in tiles.panes if p <= horizon]:
            del tiles.panes[pane_end]
        if not tiles.panes and not tiles.written:
            del shard.entities[entity]
        return FeatureRow(self.plan.name, entity, boundary, changed) if changed else None
