"""Trailing event-time windows for one entity, kept as panes.

An event at ``ts`` lands in the pane ending at ``ceil(ts / pane) * pane``, so a
window at boundary ``B`` of length ``w`` is exactly the panes ending in
``(B - w, B]``: the right-closed trailing window DESIGN asks for. The Flink
operator keeps one :class:`EntityState` per key, calls :meth:`add` per event and
:meth:`fire` on each event-time timer. Because ``fire`` keeps asking for timers until
every window is empty, features decay: a quiet employee reads 0, not a stale count.

``fire`` brings an entity up to a point in event time (the watermark), not just to
the timer's own boundary: PyFlink does not fire timers in timestamp order across a
large watermark jump (a timer set from inside ``on_timer`` arrives after later ones
already queued), so each firing must be complete and newer than the last on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from features.definitions import ViewPlan


@dataclass
class EntityState:
    """Picklable per-key state: pane partials and what was last written."""

    panes: dict[int, list[Any]] = field(default_factory=dict)
    last_emitted: dict[str, Any] = field(default_factory=dict)
    #: The boundary of the newest firing; a timer at or before it has nothing to add.
    fired_through: int = -1

    def is_empty(self) -> bool:
        return not self.panes and not self.last_emitted


def _ceil_to(ts: int, step: int) -> int:
    return -(-ts // step) * step


class WindowedAggregator:
    """Stateless logic over :class:`EntityState` for one view plan."""

    def __init__(self, plan: ViewPlan) -> None:
        self.plan = plan
        self.pane_ms = plan.pane_ms
        self.min_slide_ms = min(f.slide_ms for f in plan.features)
        self._empty_values = {f.name: f.aggregate.result(f.aggregate.empty())
                              for f in plan.features}

    def add(self, state: EntityState, event: dict[str, Any], ts: int) -> int:
        """Fold one event in; return the event-time timer it needs."""
        pane_end = _ceil_to(ts, self.pane_ms)
        partials = state.panes.get(pane_end)
        if partials is None:
            partials = state.panes[pane_end] = [f.aggregate.empty() for f in self.plan.features]
        for i, f in enumerate(self.plan.features):
            partials[i] = f.aggregate.add(partials[i], event.get(f.column), ts)
        return _ceil_to(ts, self.min_slide_ms)

    def value_at(self, state: EntityState, index: int, boundary: int) -> Any:
        f = self.plan.features[index]
        agg = f.aggregate
        acc = agg.empty()
        lo = boundary - f.window_ms
        for pane_end, partials in state.panes.items():
            if lo < pane_end <= boundary:
                acc = agg.merge(acc, partials[index])
        return agg.result(acc)

    def fire(self, state: EntityState, as_of: int) -> tuple[dict[str, Any], int, int | None]:
        """Bring the features up to event time ``as_of``; emit those that changed.

        Each feature takes its value at its own last slide boundary at or before
        ``as_of``. Returns ``(changed, boundary, next_timer)``: ``boundary`` is ``as_of``
        rounded down to the smallest slide (the row's timestamp); ``next_timer`` is None
        when nothing can change any more (or a newer firing already covered this one).
        """
        boundary = as_of // self.min_slide_ms * self.min_slide_ms
        previous = state.fired_through
        if boundary <= previous:
            return {}, boundary, None
        changed: dict[str, Any] = {}
        for i, f in enumerate(self.plan.features):
            at = boundary // f.slide_ms * f.slide_ms
            if at <= previous // f.slide_ms * f.slide_ms:
                continue  # computed at this boundary already; no event can change it now
            value = self.value_at(state, i, at)
            # The first firing writes every feature, so a quiet entity reads 0, not null.
            if previous < 0 or value != state.last_emitted.get(f.name,
                                                               self._empty_values[f.name]):
                changed[f.name] = value
            if value == self._empty_values[f.name]:
                state.last_emitted.pop(f.name, None)
            else:
                state.last_emitted[f.name] = value
        state.fired_through = boundary
        horizon = boundary - self.plan.max_window_ms
        for pane_end in [p for p in state.panes if p <= horizon]:
            del state.panes[pane_end]
        return changed, boundary, self._next_timer(state, boundary)

    def _next_timer(self, state: EntityState, boundary: int) -> int | None:
        candidates = []
        for f in self.plan.features:
            nxt = (boundary // f.slide_ms + 1) * f.slide_ms
            window_nonempty = any(nxt - f.window_ms < p <= nxt for p in state.panes)
            if window_nonempty or f.name in state.last_emitted:
                candidates.append(nxt)
        return min(candidates, default=None)
