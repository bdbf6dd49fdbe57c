"""The pipeline benchmark's own moving parts, checked against independent oracles:
byte-patched events must decode exactly as freshly encoded ones, and the baselines'
pandas windows must equal the brute-force recomputation the integration tests use."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from fastavro import schemaless_writer

from benchmarks.peers.stream_features import WindowBuffer
from benchmarks.pipeline_load import pooled, stamp, zigzag_long
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
