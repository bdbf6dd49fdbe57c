"""The pane tiles, driven the way the job drives them, against a pandas brute force.

A tiny model of the job: the JVM closes each (entity, pane) when the watermark passes its
end and hands the shard's panes over as one batch, plus a tick for every shard; the Python
operator keeps one pickled state and one pane store per shard (both pickled between
calls, as Flink's state is) and, like PyFlink, fires its timers in no particular order
across a watermark jump. The pane partials are computed here from the
raw values (``partial_columns`` as the JVM would), independently of ``features/``.
"""

from __future__ import annotations

import pickle
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from features.aggregations import make_aggregate
from features.plans import FeatureSpec, ViewPlan
from features.sql import SLOT_TYPES, layout
from features.tiles import END_OF_INPUT, MemoryPanes, PaneBatch, ShardTiles, ViewWindows
from schemas.errors import ConfigError
from tests.oracle import expected_features, same

MIN = 60_000
TYPES = {"count": "INT64", "count_distinct": "INT64", "last": "STRING"}


def _spec(name, column, function, window, slide):
    return FeatureSpec(name, column, function, window, slide, make_aggregate(function),
                       TYPES.get(function, "DOUBLE"))


PLAN = ViewPlan(
    "employee_activity",
    ("employee_id",),
    (
        _spec("n_1h", "interaction_id", "count", 60 * MIN, 5 * MIN),
        _spec("n_24h", "interaction_id", "count", 24 * 60 * MIN, 60 * MIN),
        _spec("sat_24h", "satisfaction", "mean", 24 * 60 * MIN, 60 * MIN),
        _spec("esc_1h", "escalated", "mean", 60 * MIN, 5 * MIN),
        _spec("intents_24h", "intent", "count_distinct", 24 * 60 * MIN, 60 * MIN),
        _spec("last_intent", "intent", "last", 24 * 60 * MIN, 60 * MIN),
        _spec("p95_lat_5m", "latency", "p95", 5 * MIN, MIN),
        _spec("sum_sat_1h", "satisfaction", "sum", 60 * MIN, 5 * MIN),
        _spec("min_lat_1h", "latency", "min", 60 * MIN, 5 * MIN),
        _spec("max_lat_1h", "latency", "max", 60 * MIN, 5 * MIN),
    ),
)
#: As the shipped tenant view: its longest window has a coarser slide than the others,
#: so the finer slides' boundaries must not drop panes that window still needs.
TENANT_PLAN = ViewPlan(
    "tenant_load",
    ("employee_id",),
    (
        _spec("n_5m", "interaction_id", "count", 5 * MIN, MIN),
        _spec("p95_lat_5m", "latency", "p95", 5 * MIN, MIN),
        _spec("esc_1h", "escalated", "mean", 60 * MIN, 5 * MIN),
    ),
)
SHARDS = 4


def jvm_partial_columns(function: str, pane: pd.DataFrame, column: str) -> tuple:
    """What the JVM's SQL aggregates give for one pane (see ``partial_columns``)."""
    values = pane[column]
    present = values.dropna()
    if function == "count":
        return (len(present),)
    if function in ("sum", "mean"):
        total = float(present.astype(float).sum()) if len(present) else None
        return (total,) if function == "sum" else (total, len(present))
    if function in ("min", "max"):
        return (float(getattr(present.astype(float), function)()) if len(present) else None,)
    if function == "count_distinct":
        return (sorted(set(present.astype(str))),)
    if function == "last":
        rows = pane.dropna(subset=[column])
        keys = [f"{t:013d}{s:019d}{v}" for t, s, v in
                zip(rows.event_time, rows.seq, rows[column].astype(str), strict=True)]
        return (max(keys) if keys else None,)
    return (list(present.astype(float)) or None,)  # percentiles: the values


def _events(rng: np.random.Generator, n: int, entities: int, span_ms: int) -> pd.DataFrame:
    ts = np.sort(rng.integers(0, span_ms, n))
    frame = pd.DataFrame(
        {
            "interaction_id": [f"i{i}" for i in range(n)],
            "employee_id": [f"e{k}" for k in rng.zipf(1.6, n) % entities],
            "event_time": ts,
            "satisfaction": [
                None if rng.random() < 0.4 else int(rng.integers(1, 6)) for _ in range(n)
            ],
            "escalated": rng.random(n) < 0.2,
            "intent": rng.choice(["payroll", "leave", "benefits", "other"], n),
            "latency": rng.lognormal(6, 0.5, n),
        }
    )
    # Boundaries hit exactly: they belong to the pane (and window) that ends there.
    frame.loc[frame.index[::97], "event_time"] = frame.event_time[::97] // MIN * MIN
    # Bounded disorder: arrival order differs from event-time order by up to 2 min.
    arrival = np.argsort(frame.event_time + rng.integers(0, 2 * MIN, n), kind="stable")
    frame = frame.iloc[arrival].reset_index(drop=True)
    frame["seq"] = np.arange(n)  # position in its partition: the tie-break of `last`
    return frame


def _batches(plan: ViewPlan, panes: dict, pane_end: int) -> list[PaneBatch]:
    """The JVM's output for one closed pane: a batch per shard with data, ticks for all."""
    lay = layout(plan)
    out = []
    for shard in range(SHARDS):
        by_entity = panes.get((pane_end, shard))
        if not by_entity:
            out.append(PaneBatch(plan.name, shard, pane_end, (), ()))
            continue
        items = []
        for entity in sorted(by_entity):
            slots: dict[str, list] = {k: [] for k in SLOT_TYPES}
            for spec, cells in zip(plan.features, lay.slots, strict=True):
                values = jvm_partial_columns(spec.function, by_entity[entity], spec.column)
                for (kind, index), value in zip(cells, values, strict=True):
                    assert len(slots[kind]) == index  # the layout fills slots in order
                    slots[kind].append(value)
            items.append((entity, *(slots[k] or None for k in SLOT_TYPES)))
        out.append(PaneBatch.from_items(plan, lay, shard, pane_end, items))
    return out


def _panes(plan: ViewPlan, events: pd.DataFrame) -> dict:
    """(pane end, shard) -> entity -> its events in the right-closed pane (E - pane, E]."""
    frame = events.assign(pane=-(-events.event_time // plan.pane_ms) * plan.pane_ms,
                          shard=events.employee_id.map(lambda e: hash(e) % SHARDS))
    out: dict = {}
    for (pane, shard, entity), group in frame.groupby(["pane", "shard", "employee_id"]):
        out.setdefault((int(pane), int(shard)), {})[entity] = group
    return out


def _run(plan: ViewPlan, events: pd.DataFrame, bound_ms: int, final_watermark: int,
         advance_every: int, rng: np.random.Generator) -> dict[int, dict[str, dict]]:
    """Feed ``events`` through; return snapshots of what Feast would read, per watermark
    the operator had fully processed (as its progress would report)."""
    windows = ViewWindows(plan)
    panes = _panes(plan, events)
    states = {s: (ShardTiles(), MemoryPanes()) for s in range(SHARDS)}
    store: dict[str, dict] = {}
    newest: dict[str, int] = {}
    snapshots: dict[int, dict[str, dict]] = {}
    closed = -plan.pane_ms  # the newest pane end closed so far

    def advance(watermark: int) -> None:
        nonlocal closed
        timers: set[tuple[int, int]] = set()
        end = closed
        while end + plan.pane_ms <= watermark:  # (other traffic keeps the ticks coming)
            end += plan.pane_ms
            for batch in _batches(plan, panes, end):
                state = pickle.loads(pickle.dumps(states[batch.shard]))  # as Flink state
                windows.add(*state, batch)
                states[batch.shard] = state
                timers.add((batch.pane_end, batch.shard))
        closed = max(closed, end)
        # PyFlink fires the timers of a watermark jump in no particular order.
        for _, shard in sorted(timers, key=lambda _: rng.random()):
            state = pickle.loads(pickle.dumps(states[shard]))
            for row in windows.advance(*state, watermark):
                assert row.ts_ms >= newest.get(row.entity_value, -1)  # rows move forward
                newest[row.entity_value] = row.ts_ms
                store.setdefault(row.entity_value, {}).update(row.values)
            states[shard] = state
        if timers and rng.random() < min(1.0, 12 * advance_every / len(events)):
            snapshots[watermark] = {e: dict(v) for e, v in store.items()}

    watermark = -1
    for i, ts in enumerate(events.event_time):
        assert ts > watermark  # the bound keeps every event on time
        if i % advance_every == 0:
            watermark = max(watermark, int(ts) - bound_ms)
            advance(watermark)
    advance(final_watermark)
    snapshots[final_watermark] = store
    return snapshots


@pytest.mark.parametrize("plan", [PLAN, TENANT_PLAN], ids=lambda p: p.name)
@pytest.mark.parametrize(("seed", "advance_every"), [(1, 1), (2, 7), (3, 150), (4, 3000)])
def test_windows_match_pandas_brute_force_with_decay(plan, seed, advance_every):
    rng = np.random.default_rng(seed)
    span = 6 * 60 * MIN
    events = _events(rng, 2000, 40 if plan is PLAN else 3, span)
    # The last read is 90 minutes after the last event: 1h and 5m features have decayed.
    final = span + 90 * MIN
    snapshots = _run(plan, events, bound_ms=2 * MIN, final_watermark=final,
                     advance_every=advance_every, rng=rng)
    assert len(snapshots) >= 2 or advance_every > len(events) // 2
    feats = [(f.name, f.column, f.function, f.window_ms, f.slide_ms) for f in plan.features]
    checked = 0
    for watermark, store in snapshots.items():
        first_seen = events.groupby("employee_id").event_time.min()
        boundary = watermark // plan.min_slide_ms * plan.min_slide_ms
        for entity in first_seen[first_seen <= boundary].index:
            want = expected_features(events, {"employee_id": entity}, feats, watermark)
            got = store[entity]
            for name, value in want.items():
                assert name in got, (entity, name)  # never written would read null in Feast
                assert same(got[name], value), (watermark, entity, name, got[name], value)
                checked += 1
    assert checked >= 5 * len(snapshots)
    decayed = snapshots[final]  # nothing in the last 90 minutes: short windows read 0
    assert all(decayed[e]["n_1h" if plan is PLAN else "n_5m"] == 0 for e in decayed)


def _one_event_view() -> tuple[ViewWindows, tuple[ShardTiles, MemoryPanes], list[int]]:
    windows = ViewWindows(PLAN)
    state = ShardTiles(), MemoryPanes()
    events = pd.DataFrame({"interaction_id": ["x"], "employee_id": ["e"], "event_time": [1],
                           "satisfaction": [None], "escalated": [False], "intent": ["leave"],
                           "latency": [1.0], "seq": [0]})
    for batch in _batches(PLAN, _panes(PLAN, events), MIN):
        windows.add(*state, batch)
    return windows, state, sorted(state[0].due)


def test_work_follows_panes_not_boundaries():
    """One event is evaluated where it enters or leaves a window, not at every slide."""
    windows, state, due = _one_event_view()
    # Per (window, slide): where the pane ending at 1 min enters and where it leaves.
    assert [d // MIN for d in due] == [1, 5, 6, 60, 65, 1500]
    rows = windows.advance(*state, 2 * 24 * 60 * MIN)
    assert [r.ts_ms // MIN for r in rows] == [1, 5, 6, 60, 65, 1500]
    assert all(r.values.keys() == {f.name for f in PLAN.features} for r in rows)  # whole rows
    assert rows[0].values["p95_lat_5m"] == 1.0 and rows[1].values["n_1h"] == 1
    empty = {f.name: f.aggregate.value(f.aggregate.start()) for f in PLAN.features}
    assert rows[-1].values == empty  # decayed to 0 and null, then forgotten
    tiles, panes = state
    assert not tiles.entities and not tiles.due and not tiles.held and not panes  # nothing kept


def test_end_of_input_writes_nothing_past_the_last_pane():
    windows, state, _ = _one_event_view()
    rows = windows.advance(*state, END_OF_INPUT + 5)
    assert [r.ts_ms for r in rows] == [MIN]
    assert state[0].through == MIN  # progress stays a real event time


def test_end_of_input_at_a_backfills_end_writes_the_decay_up_to_it():
    """The input is complete up to 70 min: the windows that the one event left by then
    decay (60, 65 min), the 24 h window's decay (1500 min) is after the end."""
    windows, state, _ = _one_event_view()
    rows = windows.advance(*state, END_OF_INPUT + 5, input_ends_at=70 * MIN)
    assert [r.ts_ms // MIN for r in rows] == [1, 5, 6, 60, 65]
    assert state[0].through == 70 * MIN


def test_unknown_function_names_the_field():
    with pytest.raises(ConfigError) as err:
        make_aggregate("median", "feature_repo.v.aggregations[x].function")
    assert "aggregations[x].function" in str(err.value)


def test_plan_pane_is_gcd_of_windows_and_slides():
    assert PLAN.pane_ms == MIN
    assert PLAN.max_window_ms == timedelta(hours=24).total_seconds() * 1000


def _frame(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    """Events of ``(employee, event_time, latency)``."""
    return pd.DataFrame({"interaction_id": [f"i{i}" for i in range(len(rows))],
                         "employee_id": [e for e, _, _ in rows],
                         "event_time": [t for _, t, _ in rows], "satisfaction": [3] * len(rows),
                         "escalated": [False] * len(rows), "intent": ["leave"] * len(rows),
                         "latency": [x for *_, x in rows], "seq": list(range(len(rows)))})


def test_partials_that_come_late_join_their_windows_at_once():
    """The JVM closes a pane once; should a pane's partials come again after its windows
    took it, they join those windows at once (counted once, not twice) and are written
    at the entity's next evaluation, where they read as if they had come on time."""
    events = _frame([("a", 30_000, 5.0), ("a", 40_000, 7.0), ("b", 50_000, 9.0),
                     ("a", 20 * MIN, 1.0)])
    on_time, late = events.iloc[[0, 3]], events.iloc[[1, 2]]
    want = expected_features(events, {"employee_id": "a"},
                             [(f.name, f.column, f.function, f.window_ms, f.slide_ms)
                              for f in PLAN.features], 30 * MIN)
    windows, state = ViewWindows(PLAN), (ShardTiles(), MemoryPanes())
    for batch in _batches(PLAN, _panes(PLAN, on_time), MIN):
        windows.add(*state, batch)
    windows.advance(*state, 10 * MIN)  # the 1 min pane is in its 5 min and 1 h windows
    for batch in _batches(PLAN, _panes(PLAN, late), MIN):
        windows.add(*state, batch)
    for batch in _batches(PLAN, _panes(PLAN, on_time), 20 * MIN):
        windows.add(*state, batch)
    got: dict[str, dict] = {}
    for row in windows.advance(*state, 30 * MIN):
        got.setdefault(row.entity_value, {}).update(row.values)
    assert got["a"]["n_1h"] == 3 and same(got["a"]["min_lat_1h"], 1.0)
    for name, value in want.items():
        assert same(got["a"][name], value), (name, got["a"][name], value)
    assert got["b"]["n_1h"] == 1  # a new entity in a late pane, written at once
