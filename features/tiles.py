"""Trailing event-time windows for all entities of one shard, as running accumulators.

The JVM hands over one :class:`PaneBatch` per shard and pane: every entity's partials
of the pane ``(E - pane, E]``. A window at boundary ``B`` of length ``w`` is exactly the
panes ending in ``(B - w, B]`` (the right-closed trailing window DESIGN asks for).

Features sharing a (window, slide) form a group. At each of the group's slide boundaries
the panes entering its window join each entity's running accumulators and the panes
ageing out leave them (``Aggregate.join`` and ``leave``), and only the entities of those
panes are evaluated. A slide costs the panes that move, not a pass over every pane a
window holds, and a quiet entity still decays: where its last pane leaves, it writes 0.

The state is split the way Flink keeps it cheaply. Each pane batch is written once to a
store keyed by pane end (a Flink ``MapState`` in the job, :class:`MemoryPanes` in tests
and benchmarks) and read back when it enters and leaves. :class:`ShardTiles`, the value
Beam pickles again after every bundle, holds per entity only its accumulators and what
was last written.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any, Protocol

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


class PaneStore(Protocol):
    """Pane batches by pane end: the subset of Flink's ``MapState`` the tiles use."""

    def get(self, key: int) -> PaneBatch | None: ...

    def put(self, key: int, value: PaneBatch) -> None: ...

    def remove(self, key: int) -> None: ...


class MemoryPanes(dict):
    """A :class:`PaneStore` in memory."""

    def put(self, key: int, value: PaneBatch) -> None:
        self[key] = value

    def remove(self, key: int) -> None:
        del self[key]


@dataclass
class EntityTiles:
    """One entity's running windows and the values last written for it."""

    #: per group, its features' running accumulators (``Aggregate.start``)
    accs: list[list[Any]]
    #: per group, how many of the entity's panes its window holds
    panes_in: list[int]
    #: feature -> last written value; absent means the empty value (0 or null)
    written: dict[str, Any] = field(default_factory=dict)
    written_once: bool = False


@dataclass
class ShardTiles:
    """Picklable state of one (view, shard), beside its :class:`PaneStore`."""

    entities: dict[str, EntityTiles] = field(default_factory=dict)
    #: the pane ends in the store, ascending
    held: list[int] = field(default_factory=list)
    #: boundary -> bit mask of the (window, slide) groups a pane enters or leaves there
    due: dict[int, int] = field(default_factory=dict)
    #: every boundary at or before this has been written
    through: int = -1
    #: the newest pane end seen (ticks included): where a bounded input ends
    latest_pane: int = -1
    #: entity -> mask of the groups that partials joined late (``ViewWindows.add``):
    #: evaluated at the next boundary
    late: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Group:
    """Features sharing a (window, slide): they change at the same boundaries."""

    window_ms: int
    slide_ms: int
    features: tuple[int, ...]  # indices into the plan's features

    def enters(self, pane: int) -> int:
        return _ceil_to(pane, self.slide_ms)

    def leaves(self, pane: int) -> int:
        return _ceil_to(pane + self.window_ms, self.slide_ms)


class ViewWindows:
    """Stateless logic over :class:`ShardTiles` and its pane store for one view plan."""

    def __init__(self, plan: ViewPlan) -> None:
        self.plan = plan
        self._aggs = [f.aggregate for f in plan.features]
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(plan.features):
            by_shape.setdefault((f.window_ms, f.slide_ms), []).append(i)
        self._groups = [_Group(w, s, tuple(ix)) for (w, s), ix in sorted(by_shape.items())]
        self._all = (1 << len(self._groups)) - 1
        self._empty = {f.name: f.aggregate.value(f.aggregate.start()) for f in plan.features}
        self._empty_partials = tuple(f.aggregate.empty() for f in plan.features)
        #: per group, its features whose partials are worth dropping once it has left
        self._sizeable = [frozenset(i for i in g.features if self._aggs[i].sizeable)
                          for g in self._groups]

    def add(self, shard: ShardTiles, panes: PaneStore, batch: PaneBatch) -> None:
        """Store a batch's panes and schedule, per group, the boundaries where they enter
        its window and where they leave it.

        The JVM closes a pane once, before event time passes it. Should a pane's partials
        come again, or after the boundary where they should have entered a window, they
        are merged rather than lost: they join the windows they belong in at once and
        are written at the group's next boundary.
        """
        pane = batch.pane_end
        shard.latest_pane = max(shard.latest_pane, pane)
        if not batch.entities:
            return  # a tick
        at = bisect_left(shard.held, pane)
        held = at < len(shard.held) and shard.held[at] == pane
        old = panes.get(pane) if held else None
        needed = False
        for gi, g in enumerate(self._groups):
            enters, leaves = g.enters(pane), g.leaves(pane)
            if leaves <= shard.through:
                continue  # already out of this group's window
            needed = True
            shard.due[leaves] = shard.due.get(leaves, 0) | 1 << gi
            if enters > shard.through:
                shard.due[enters] = shard.due.get(enters, 0) | 1 << gi
                continue
            self._join(shard, gi, batch, old)
            after = g.enters(shard.through + 1)
            shard.due[after] = shard.due.get(after, 0) | 1 << gi
            for entity in batch.entities:
                shard.late[entity] = shard.late.get(entity, 0) | 1 << gi
        if not needed:
            return
        if old is not None:
            batch = self._merged(old, batch)
        elif not held:
            shard.held.insert(at, pane)
        panes.put(pane, batch)

    def advance(self, shard: ShardTiles, panes: PaneStore, watermark: int,
                input_ends_at: int | None = None) -> list[FeatureRow]:
        """Slide every group's windows over every due boundary up to ``watermark``, in
        order, and evaluate the entities whose panes moved; return the rows to write (an
        entity's first row too, so a quiet entity reads 0, not null).

        The end of a bounded input arrives as a watermark past all time. Event time then
        ends at ``input_ends_at``, where the input is known to be complete (a backfill's
        end: the decay after the last event up to it is written), or by default at the
        last pane, so nothing is written for boundaries after it.
        """
        if watermark >= END_OF_INPUT:
            watermark = shard.latest_pane if input_ends_at is None else input_ends_at
        rows = []
        for boundary in sorted(b for b in shard.due if b <= watermark):
            mask = shard.due.pop(boundary)
            moved: dict[str, int] = {}  # entity -> mask of the groups its panes moved in
            left: list[tuple[int, int]] = []  # (pane, group) pairs that left
            for gi, g in enumerate(self._groups):
                if mask >> gi & 1:
                    for pane in self._held_in(shard, boundary - g.slide_ms, boundary):
                        for entity in self._join(shard, gi, panes.get(pane)):
                            moved[entity] = moved.get(entity, 0) | 1 << gi
                    edge = boundary - g.window_ms
                    for pane in self._held_in(shard, edge - g.slide_ms, edge):
                        left.append((pane, gi))
                        for entity in self._leave(shard, gi, panes.get(pane)):
                            moved[entity] = moved.get(entity, 0) | 1 << gi
            for entity, late in shard.late.items():
                moved[entity] = moved.get(entity, 0) | late
            shard.late.clear()
            for entity in sorted(moved):
                row = self._evaluate(shard, entity, boundary, moved[entity])
                if row is not None:
                    rows.append(row)
            self._forget(shard, panes, boundary, left)
        shard.through = max(shard.through, watermark)
        return rows

    @staticmethod
    def _held_in(shard: ShardTiles, lo: int, hi: int) -> list[int]:
        """The stored pane ends in ``(lo, hi]``."""
        return shard.held[bisect_right(shard.held, lo):bisect_right(shard.held, hi)]

    def _join(self, shard: ShardTiles, gi: int, batch: PaneBatch | None,
              already: PaneBatch | None = None) -> tuple[str, ...]:
        """``batch``'s partials join group ``gi``'s windows (``already``: the pane's
        partials that joined before, when these come late)."""
        if batch is None:
            return ()
        known = set(already.entities) if already is not None else set()
        group = self._groups[gi]
        for entity, partials in zip(batch.entities, batch.partials, strict=True):
            tiles = shard.entities.get(entity)
            if tiles is None:
                tiles = shard.entities[entity] = EntityTiles(
                    [[self._aggs[i].start() for i in g.features] for g in self._groups],
                    [0] * len(self._groups))
            accs = tiles.accs[gi]
            for j, i in enumerate(group.features):
                accs[j] = self._aggs[i].join(accs[j], partials[i])
            if entity not in known:
                tiles.panes_in[gi] += 1
        return batch.entities

    def _leave(self, shard: ShardTiles, gi: int, batch: PaneBatch | None) -> tuple[str, ...]:
        if batch is None:
            return ()
        group = self._groups[gi]
        for entity, partials in zip(batch.entities, batch.partials, strict=True):
            tiles = shard.entities[entity]
            accs = tiles.accs[gi]
            for j, i in enumerate(group.features):
                accs[j] = self._aggs[i].leave(accs[j], partials[i])
            tiles.panes_in[gi] -= 1
        return batch.entities

    def _evaluate(self, shard: ShardTiles, entity: str, boundary: int,
                  mask: int) -> FeatureRow | None:
        tiles = shard.entities[entity]
        first = not tiles.written_once
        if first:
            mask = self._all
        changed = False
        for gi, group in enumerate(self._groups):
            if not mask >> gi & 1:
                continue  # no pane entered or left this group's windows here
            for i, acc in zip(group.features, tiles.accs[gi], strict=True):
                name = self.plan.features[i].name
                value, empty = self._aggs[i].value(acc), self._empty[name]
                changed = changed or value != tiles.written.get(name, empty)
                if value == empty:
                    tiles.written.pop(name, None)
                else:
                    tiles.written[name] = value
        tiles.written_once = True
        values = {name: tiles.written.get(name, empty) for name, empty in self._empty.items()}
        if not any(tiles.panes_in) and not tiles.written:
            del shard.entities[entity]
        if not (first or changed):
            return None
        return FeatureRow(self.plan.name, entity, boundary, values)

    def _forget(self, shard: ShardTiles, panes: PaneStore, boundary: int,
                left: list[tuple[int, int]]) -> None:
        """Drop from the store the panes every group's windows have left (a prefix of
        ``held``: a later pane leaves each window no earlier), and from the panes still
        held the sizeable partials whose own window just left them (a 5 min p95's values
        are not kept for the view's 1 h mean)."""
        gone = 0
        while gone < len(shard.held) and all(g.leaves(shard.held[gone]) <= boundary
                                             for g in self._groups):
            panes.remove(shard.held[gone])
            gone += 1
        del shard.held[:gone]
        for pane, gi in left:
            sizeable = self._sizeable[gi]
            if not sizeable or not shard.held or pane < shard.held[0]:
                continue  # nothing to drop, or the pane is gone (the prefix above)
            batch = panes.get(pane)
            if batch is not None:
                partials = tuple(tuple(self._empty_partials[i] if i in sizeable else p
                                       for i, p in enumerate(ps)) for ps in batch.partials)
                panes.put(pane, PaneBatch(batch.view, batch.shard, pane, batch.entities,
                                          partials))

    def _merged(self, old: PaneBatch, new: PaneBatch) -> PaneBatch:
        merged = dict(zip(old.entities, old.partials, strict=True))
        for entity, partials in zip(new.entities, new.partials, strict=True):
            before = merged.get(entity)
            merged[entity] = partials if before is None else tuple(
                a.merge(x, y) for a, x, y in zip(self._aggs, before, partials, strict=True))
        return PaneBatch(old.view, old.shard, old.pane_end, tuple(merged),
                         tuple(merged.values()))


def latest_per_entity(rows: list[FeatureRow]) -> list[FeatureRow]:
    """The latest row of each (view, entity): what an online store needs after a
    watermark jump (a drain), where the rows before it would be overwritten at once."""
    latest = {(row.view, row.entity_value): row for row in rows}  # rows come in time order
    return list(latest.values())
