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
from features.sql import SLOT_TYPES, BatchLayout


@dataclass(frozen=True)
class FeatureRow:
    """Every feature value of one entity as of ``ts_ms`` (a window boundary): what the
    online store then holds for it, and one row of the offline log. A row is made only
    where some feature changed; whole rows, so that a write by another Feast client is
    gone after the job's next one."""

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
    def from_items(cls, plan: ViewPlan, layout: BatchLayout, shard: int, pane_end: int,
                   items: list[Any] | None) -> PaneBatch:
        """Build from the generic batch row's items (``features.sql.ITEM_TYPE``): per
        entity ``(entity, longs, doubles, strings, string_sets, double_lists)``."""
        if not items:
            return cls(plan.name, shard, pane_end, (), ())
        slot = {kind: i + 1 for i, kind in enumerate(SLOT_TYPES)}
        cells = [[(slot[kind], index) for kind, index in per_feature]
                 for per_feature in layout.slots]
        features = [(spec.aggregate.from_columns, c) for spec, c in zip(plan.features, cells,
                                                                        strict=True)]
        partials = tuple(tuple(from_columns(tuple(item[k][i] for k, i in c))
                               for from_columns, c in features) for item in items)
        return cls(plan.name, shard, pane_end, tuple(item[0] for item in items), partials)


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
    #: boundary -> entity -> bit mask of the (window, slide) groups that may change there
    due: dict[int, dict[str, int]] = field(default_factory=dict)
    #: every boundary at or before this has been written
    through: int = -1
    #: the newest pane end seen (ticks included): where a bounded input ends
    latest_pane: int = -1


@dataclass(frozen=True)
class _Group:
    """Features sharing a (window, slide): they change at the same boundaries."""

    window_ms: int
    slide_ms: int
    features: tuple[int, ...]  # indices into the plan's features


class ViewWindows:
    """Stateless logic over :class:`ShardTiles` for one view plan."""

    def __init__(self, plan: ViewPlan) -> None:
        self.plan = plan
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(plan.features):
            by_shape.setdefault((f.window_ms, f.slide_ms), []).append(i)
        self._groups = [_Group(w, s, tuple(ix)) for (w, s), ix in sorted(by_shape.items())]
        self._all = (1 << len(self._groups)) - 1
        self._empty = {f.name: f.aggregate.result(f.aggregate.empty()) for f in plan.features}
        self._empty_partials = tuple(f.aggregate.empty() for f in plan.features)

    def add(self, shard: ShardTiles, batch: PaneBatch) -> None:
        """Fold a batch's panes in and schedule the boundaries where they matter: per
        group, where the pane enters its window and where it leaves."""
        pane = batch.pane_end
        shard.latest_pane = max(shard.latest_pane, pane)
        points: dict[int, int] = {}
        for gi, g in enumerate(self._groups):
            for point in (_ceil_to(pane, g.slide_ms), _ceil_to(pane + g.window_ms, g.slide_ms)):
                points[point] = points.get(point, 0) | (1 << gi)
        for entity, partials in zip(batch.entities, batch.partials, strict=True):
            tiles = shard.entities.get(entity)
            if tiles is None:
                tiles = shard.entities[entity] = EntityTiles()
            old = tiles.panes.get(pane)
            if old is not None:  # the JVM closes a pane once; merge rather than lose data
                partials = tuple(f.aggregate.merge(a, b) for f, a, b
                                 in zip(self.plan.features, old, partials, strict=True))
            tiles.panes[pane] = partials
            for point, mask in points.items():
                due = shard.due.get(point)
                if due is None:
                    due = shard.due[point] = {}
                due[entity] = due.get(entity, 0) | mask

    def advance(self, shard: ShardTiles, watermark: int,
                input_ends_at: int | None = None) -> list[FeatureRow]:
        """Evaluate every due entity at every due boundary up to ``watermark``, in order;
        return the rows to write (an entity's first row too, so a quiet entity reads 0,
        not null).

        The end of a bounded input arrives as a watermark past all time. Event time then
        ends at ``input_ends_at``, where the input is known to be complete (a backfill's
        end: the decay after the last event up to it is written), or by default at the
        last pane, so nothing is written for boundaries after it.
        """
        if watermark >= END_OF_INPUT:
            watermark = shard.latest_pane if input_ends_at is None else input_ends_at
        rows = []
        for boundary in sorted(b for b in shard.due if b <= watermark):
            for entity, mask in sorted(shard.due.pop(boundary).items()):
                row = self._evaluate(shard, entity, boundary, mask)
                if row is not None:
                    rows.append(row)
        shard.through = max(shard.through, watermark)
        return rows

    def _group_values(self, tiles: EntityTiles, group: _Group, boundary: int) -> list[Any]:
        """The group's feature values at ``boundary``: one pass over the entity's panes."""
        specs = [self.plan.features[i] for i in group.features]
        accs = [s.aggregate.empty() for s in specs]
        lo = boundary - group.window_ms
        for pane_end, partials in tiles.panes.items():
            if lo < pane_end <= boundary:
                for j, (i, spec) in enumerate(zip(group.features, specs, strict=True)):
                    accs[j] = spec.aggregate.merge(accs[j], partials[i])
        return [s.aggregate.result(a) for s, a in zip(specs, accs, strict=True)]

    def _evaluate(self, shard: ShardTiles, entity: str, boundary: int,
                  mask: int) -> FeatureRow | None:
        tiles = shard.entities.get(entity)
        if tiles is None:
            return None
        first = not tiles.written_once
        if first:
            mask = self._all
        changed = False
        for gi, group in enumerate(self._groups):
            if not mask >> gi & 1:
                continue  # no pane entered or left this group's windows here
            at = boundary // group.slide_ms * group.slide_ms
            for i, value in zip(group.features, self._group_values(tiles, group, at),
                                strict=True):
                name = self.plan.features[i].name
                empty = self._empty[name]
                changed = changed or value != tiles.written.get(name, empty)
                if value == empty:
                    tiles.written.pop(name, None)
                else:
                    tiles.written[name] = value
        tiles.written_once = True
        self._forget(tiles, boundary)
        values = {name: tiles.written.get(name, empty) for name, empty in self._empty.items()}
        if not tiles.panes and not tiles.written:
            del shard.entities[entity]
        if not (first or changed):
            return None
        return FeatureRow(self.plan.name, entity, boundary, values)

    def _forget(self, tiles: EntityTiles, boundary: int) -> None:
        """Drop what no window read at or after ``boundary`` can hold. A feature reads its
        window at its own last slide boundary, so a group never again reads a pane at or
        before that read's start: a pane older than every group's is deleted, and in a
        pane only some groups can still read, the others' partials are emptied (a 5 min
        p95 need not keep its values for as long as the view's 1 h mean)."""
        horizons = [(boundary // g.slide_ms * g.slide_ms - g.window_ms, g.features)
                    for g in self._groups]
        oldest, newest = min(h for h, _ in horizons), max(h for h, _ in horizons)
        for pane_end in [p for p in tiles.panes if p <= newest]:
            if pane_end <= oldest:
                del tiles.panes[pane_end]
                continue
            stale = {i for h, features in horizons if pane_end <= h for i in features}
            partials = tiles.panes[pane_end]
            if any(partials[i] != self._empty_partials[i] for i in stale):
                tiles.panes[pane_end] = tuple(self._empty_partials[i] if i in stale else p
                                              for i, p in enumerate(partials))


def latest_per_entity(rows: list[FeatureRow]) -> list[FeatureRow]:
    """The latest row of each (view, entity): what an online store needs after a
    watermark jump (a drain), where the rows before it would be overwritten at once."""
    latest = {(row.view, row.entity_value): row for row in rows}  # rows come in time order
    return list(latest.values())
