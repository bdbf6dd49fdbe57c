"""The pane windows, driven the way Flink drives them, against a pandas brute force."""

from __future__ import annotations

import pickle
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from features.aggregations import make_aggregate
from features.definitions import FeatureSpec, ViewPlan
from features.windows import EntityState, WindowedAggregator
from schemas.errors import ConfigError
from tests.oracle import expected_features, same

MIN = 60_000


def _spec(name, column, function, window, slide):
    return FeatureSpec(name, column, function, window, slide, make_aggregate(function))


PLAN = ViewPlan(
    "employee_activity",
    "employee_id",
    (
        _spec("n_1h", "interaction_id", "count", 60 * MIN, 5 * MIN),
        _spec("n_24h", "interaction_id", "count", 24 * 60 * MIN, 60 * MIN),
        _spec("sat_24h", "satisfaction", "mean", 24 * 60 * MIN, 60 * MIN),
        _spec("esc_1h", "escalated", "mean", 60 * MIN, 5 * MIN),
        _spec("intents_24h", "intent", "count_distinct", 24 * 60 * MIN, 60 * MIN),
        _spec("last_intent", "intent", "last", 24 * 60 * MIN, 60 * MIN),
        _spec("p95_lat_5m", "latency", "p95", 5 * MIN, MIN),
    ),
)


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
    # Bounded disorder: arrival order differs from event-time order by up to 2 min.
    arrival = np.argsort(ts + rng.integers(0, 2 * MIN, n), kind="stable")
    return frame.iloc[arrival].reset_index(drop=True)


def _run(plan: ViewPlan, events: pd.DataFrame, bound_ms: int, final_watermark: int,
         advance_every: int = 1):
    """A tiny PyFlink: per-key state, event-time timers, watermark = max_ts - bound,
    moved every ``advance_every`` events (a backlog moves it in big jumps).

    As in PyFlink, a timer set from inside a firing joins the queue only after every
    timer already due has fired, so one key's timers can fire out of timestamp order.
    """
    agg = WindowedAggregator(plan)
    states: dict[str, EntityState] = {}
    timers: set[tuple[int, str]] = set()
    store: dict[str, dict] = {}
    newest: dict[str, int] = {}

    def advance(to: int) -> None:
        while due := sorted(t for t in timers if t[0] <= to):
            timers.difference_update(due)
            registered_while_firing = []
            for ts, key in due:
                state = pickle.loads(pickle.dumps(states[key]))  # as Flink state would
                changed, boundary, nxt = agg.fire(state, max(ts, to))
                states[key] = state
                if changed:
                    assert boundary >= newest.get(key, -1)  # rows per key only move forward
                    newest[key] = boundary
                    store.setdefault(key, {}).update(changed)
                if nxt is not None:
                    registered_while_firing.append((nxt, key))
            timers.update(registered_while_firing)

    rows = events.astype(object).where(events.notna(), None).to_dict("records")
    watermark = -1
    for i, row in enumerate(rows):
        key = row[plan.join_key]
        assert int(row["event_time"]) > watermark  # the bound keeps every event on time
        state = states.setdefault(key, EntityState())
        timers.add((agg.add(state, row, int(row["event_time"])), key))
        if i % advance_every == 0:
            watermark = max(watermark, int(row["event_time"]) - bound_ms)
            advance(watermark)
    advance(final_watermark)
    return store


@pytest.mark.parametrize(("seed", "advance_every"), [(1, 1), (2, 1), (3, 400), (4, 3000)])
def test_windows_match_pandas_brute_force_with_decay(seed, advance_every):
    rng = np.random.default_rng(seed)
    span = 6 * 60 * MIN
    events = _events(rng, 3000, 60, span)
    # Read 90 minutes after the last event: 1h and 5m features must have decayed.
    final = span + 90 * MIN
    store = _run(PLAN, events, bound_ms=2 * MIN, final_watermark=final,
                 advance_every=advance_every)
    feats = [(f.name, f.column, f.function, f.window_ms, f.slide_ms) for f in PLAN.features]
    checked = 0
    for entity in events.employee_id.unique():
        want = expected_features(events, "employee_id", entity, feats, final)
        got = store[entity]
        for name, value in want.items():
            assert name in got, (entity, name)  # never written would read null in Feast
            assert same(got[name], value), (entity, name, got[name], value)
            checked += 1
    assert checked > 100
    quiet = [e for e, feats_ in store.items() if feats_.get("n_24h")]
    assert quiet and all(store[e]["n_1h"] == 0 for e in quiet)


def test_timers_stop_when_every_window_is_empty():
    agg = WindowedAggregator(PLAN)
    state = EntityState()
    timer = agg.add(state, {"interaction_id": "x", "intent": "leave", "latency": 1.0}, 1)
    fired = []
    while timer is not None:
        fired.append(timer // MIN)
        _, _, timer = agg.fire(state, timer)
    assert state.is_empty()
    # Each slide keeps firing while its window holds the event, plus once to decay it.
    expected = sorted({*range(1, 7), *range(10, 66, 5), *range(120, 1501, 60)})
    assert fired == expected


def test_unknown_function_names_the_field():
    with pytest.raises(ConfigError) as err:
        make_aggregate("median", "feature_repo.v.aggregations[x].function")
    assert "aggregations[x].function" in str(err.value)


def test_plan_pane_is_gcd_of_windows_and_slides():
    assert PLAN.pane_ms == MIN
    assert PLAN.max_window_ms == timedelta(hours=24).total_seconds() * 1000
