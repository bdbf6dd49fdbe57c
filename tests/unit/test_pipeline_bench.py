"""The pipeline benchmark's own moving parts, checked against independent oracles:
byte-patched events must decode exactly as freshly encoded ones, the baselines' pandas
windows must equal the brute-force recomputation the integration tests use, and the
stepped test must judge hand-made lag series as a person reading them would."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from fastavro import schemaless_writer

from benchmarks.peers.stream_features import WindowBuffer
from benchmarks.pipeline_load import pooled, stamp, zigzag_long
from benchmarks.pipeline_phases import Sample, judge, max_sustained
from features.plans import ENTITY_SEP, load_view_plans
from streams.ingest import build_decoder, interaction_serializer
from streams.producer import simulated_events
from streams.settings import Settings
from tests.oracle import expected_features, same


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(state_dir=tmp_path, topics={"input": "bench-test.interactions"})


@pytest.mark.parametrize("n", [0, 1, -1, 63, 64, 1_795_000_000_000, -(2**62)])
def test_zigzag_matches_fastavro(n):
    buf = io.BytesIO()
    schemaless_writer(buf, {"type": "long"}, n)
    assert zigzag_long(n) == buf.getvalue()


def test_stamped_records_decode_like_freshly_encoded_ones(settings):
    events = simulated_events(settings, 50, 1.0, seed=3)
    encode = interaction_serializer(settings, "avro")
    decoder, _ = build_decoder(settings)
    now = 1_795_000_000_123
    for seq, event in enumerate(events):
        rec = pooled(encode(event), event["employee_id"].encode())
        got = decoder.decode(stamp(rec, 1000 + seq, now + seq), rec.key, now_ms=now + 10**6)
        prefix = event["interaction_id"][:-10]
        want = decoder.decode(encode(event | {"interaction_id": f"{prefix}{1000 + seq:010d}",
                                              "event_time": now + seq}), rec.key,
                              now_ms=now + 10**6)
        assert got == want


def test_baseline_windows_equal_the_brute_force_oracle():
    # A fixed stretch of event time: load follows each tenant's local hour, so with "now"
    # a tenant can be quiet for the last hour and have no tenant_load row to compare.
    events = simulated_events(Settings(), 3_000, 30.0, seed=5, employees_per_tenant=40,
                              end_ms=1_795_000_000_000)
    buffer = WindowBuffer()
    for i in range(0, len(events), 700):  # in micro-batches, as the baselines consume
        buffer.add(events[i:i + 700])
    frame = pd.DataFrame(events)
    plans = {p.name: p for p in load_view_plans("feature_repo")}
    for view, ids in (("employee_activity", sorted(frame.employee_id + ENTITY_SEP
                                                   + frame.tenant_id)),
                      ("tenant_load", sorted(frame.tenant_id.unique()))):
        keys = list(plans[view].join_keys)
        got = getattr(buffer, view)(ids)
        got.index = got[keys].astype(str).agg(ENTITY_SEP.join, axis=1)
        declared = [(f.name, f.column, f.function, f.window_ms, 1)  # slide 1 ms: "as of now"
                    for f in plans[view].features]
        compared = 0
        for entity in dict.fromkeys(ids):
            want = expected_features(frame, plans[view].entity_values(entity), declared,
                                     buffer.newest)
            if entity not in got.index:  # only events older than 24 h: nothing to write
                assert all(v in (0, None) for v in want.values()), (entity, want)
                continue
            compared += 1
            for name, expected in want.items():
                value = got.loc[entity, name]
                value = None if isinstance(value, float) and pd.isna(value) else value
                if hasattr(value, "item"):
                    value = value.item()
                assert same(value, expected), (view, entity, name, value, expected)
        assert compared >= min(len(ids), 8)


def test_ab_order_puts_each_variant_first_equally_often():
    from benchmarks.ab_drain import order

    runs = order(3)
    pairs = [runs[i:i + 2] for i in range(0, len(runs), 2)]
    assert sorted(runs) == ["a"] * 3 + ["b"] * 3
    assert [p[0] for p in pairs] == ["a", "b", "a"] and all(sorted(p) == ["a", "b"] for p in pairs)


def test_ab_setting_needs_a_key_and_a_value():
    import argparse

    from benchmarks.ab_drain import setting

    assert setting(" table.x = ONE_PHASE ") == ("table.x", "ONE_PHASE")
    for bad in ("no-equals", "=value"):
        with pytest.raises(argparse.ArgumentTypeError):
            setting(bad)


def _samples(rate: float, lags: list[int]) -> list[Sample]:
    """Once a second: ``rate`` produced, and the lag (produced - processed) of each second."""
    return [Sample(float(t), rate, int(rate * t), int(rate * t) - lag, 0.0)
            for t, lag in enumerate(lags)]


def test_a_step_that_keeps_up_in_bursts_is_not_saturated():
    # The processed count moves in bursts (a Python bundle, an Arrow batch per subtask):
    # lag climbs for seconds and falls back at once, ending below where it began. The
    # fitted slope alone exceeds 5% of the rate, and the lag 2 s of input; nothing fell
    # behind (the 2,000/s step of 2026-12-08 01:57).
    lags = [11_000, 9_000, 7_000, 8_000, 8_500, 9_000, 9_500, 10_000, 10_500, 11_000,
            11_500, 12_000, 12_500, 13_000, 8_000]
    w = judge("kept up", 2_000, _samples(2_000, lags))
    assert w.lag_slope_per_s > 100 and w.lag_end > 4_000
    assert not w.saturated


def test_a_step_that_falls_behind_is_saturated():
    lags = [2_000 + 600 * t for t in range(15)]  # 1,400 of 2,000 a second processed
    w = judge("behind", 2_000, _samples(2_000, lags))
    assert w.saturated
    assert w.processed_per_s == pytest.approx(1_400)


def test_a_rate_that_saturates_when_held_again_is_not_sustained():
    kept = _samples(2_000, [2_000] * 15)
    behind = _samples(4_000, [4_000 + 1_500 * t for t in range(15)])
    windows = [judge("2,000/s", 2_000, kept), judge("4,000/s", 4_000, behind),
               judge("4,000/s, held again", 4_000, behind)]
    windows[1].saturated = False  # what step_rates does to a first window that grew
    assert max_sustained(windows) == (2_000, pytest.approx(2_500))
