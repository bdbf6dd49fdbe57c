"""Trailing event-time windows for one entity, kept as panes.

An event at ``ts`` lands in the pane ending at ``ceil(ts / pane) * pane``, so a
window at boundary ``B`` of length ``w`` is exactly the panes ending in
``(B - w, B]``: the right-closed trailing window DESIGN asks for. The Flink
operator keeps one :class:`EntityState` per key and calls :meth:`add` per event
and :meth:`fire` on each event-time timer. Because ``fire`` keeps emitting until
every window is empty, features decay: a quiet employee reads 0, not a stale count.
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

    def fire(self, state: EntityState, boundary: int) -> tuple[dict[str, Any], int | None]:
        """Emit the features due at ``boundary`` that changed; return the next timer.

        Returns ``(changed, next_timer)``; ``next_timer`` is None when every window is
        empty and every feature already reads its empty value (the key can be cleared).
        """
        changed: dict[str, Any] = {}
        for i, f in enumerate(self.plan.features):
            if boundary % f.slide_ms:
                continue
            value = self.value_at(state, i, boundary)
            previous = state.last_emitted.get(f.name, self._empty_values[f.name])
            if value != previous:
                changed[f.name] = value
            if value == self._empty_values[f.name]:
                state.last_emitted.pop(f.name, None)
            else:
                state.last_emitted[f.name] = value
        horizon = boundary - self.plan.max_window_ms
        for pane_end in [p for p in state.panes if p <= horizon]:
            del state.panes[pane_end]
        return changed, self._next_timer(state, boundary)

    def _next_timer(self, state: EntityState, boundary: int) -> int | None:
        candidates = []
        for f in self.plan.features:
            nxt = (boundary // f.slide_ms + 1) * f.slide_ms
            window_nonempty = any(nxt - f.window_ms < p <= nxt for p in state.panes)
            if window_nonempty or f.name in state.last_emitted:
                candidates.append(nxt)
        return min(candidates, default=None)
