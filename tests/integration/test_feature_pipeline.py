"""End to end: seeded HR traffic -> broker -> Flink feature job -> Redis -> Feast SDK.

The oracle is a brute-force pandas recomputation from the same raw events
(``tests/oracle.py``), at the event-time boundary the job reports it has fully
processed. Among the valid records (Avro and JSON, out of order by up to 20 s) are
malformed ones of eight kinds: none may count as a feature, each must be on the
dead-letter topic with its kind, and the job keeps running.
"""

from __future__ import annotations

import json
import struct

import pandas as pd
import pytest

from features.feast_repo import OnlineReader
from schemas.dead_letter import read_dead_letter
from streams.ingest import interaction_serializer
from streams.producer import produce_events, produce_raw, simulated_events
from tests.integration.conftest import read_topic, wait_for, wait_until_stable
from tests.oracle import compare_online

pytestmark = pytest.mark.integration

EVENTS = 20_000
HOURS = 6.0
OUT_OF_ORDER_MS = 20_000  # below the job's 30 s bound: nothing may be late
FIVE_MIN = 300_000


def malformed_records(settings, valid: dict) -> list[tuple[str, bytes | None, bytes]]:
    """(expected kind, key, value) for each way a producer gets a record wrong."""
    avro = interaction_serializer(settings, "avro")(valid)
    as_json = dict(valid)

    def js(**changes) -> bytes:
        return json.dumps({**as_json, **changes}).encode()

    missing = {k: v for k, v in as_json.items() if k != "employee_id"}
    key = valid["employee_id"].encode()
    return [
        ("truncated", key, avro[: len(avro) // 2]),
        ("unknown_schema", key, b"\x00" + struct.pack(">I", 999_999) + avro[5:]),
        ("invalid_json", key, b'{"interaction_id": "broken",'),
        ("wrong_type", key, js(interaction_id="bad-type", response_latency_ms="fast")),
        ("out_of_range", key, js(interaction_id="bad-range", confidence=1.7)),
        ("oversized", key, js(interaction_id="too-big", query_text="x" * 70_000)),
        ("missing_field", key, json.dumps(missing).encode()),
        ("bad_magic", key, b"\x07garbage"),
    ]


def test_features_match_brute_force_oracle_and_malformed_records_go_to_dlq(
        isolated_settings, running_job):
    settings = isolated_settings()
    events = simulated_events(settings, EVENTS, HOURS, seed=11, employees_per_tenant=150,
                              out_of_order_ms=OUT_OF_ORDER_MS)
    # Two tenants' HR systems number employees alike: 40 ids of the first tenant recur in
    # the second, as other people. Features are per tenant, so each keeps its own.
    tenants = sorted({e["tenant_id"] for e in events})
    ids = {t: sorted({e["employee_id"] for e in events if e["tenant_id"] == t}) for t in tenants}
    alias = dict(zip(ids[tenants[1]][:40], ids[tenants[0]][:40], strict=True))
    for event in events:
        if event["tenant_id"] == tenants[1]:
            event["employee_id"] = alias.get(event["employee_id"], event["employee_id"])
    frame = pd.DataFrame(events)
    assert frame.employee_id.nunique() >= 300  # hundreds of employees
    shared = frame.groupby("employee_id").tenant_id.nunique()
    assert (shared > 1).sum() >= 40
    bad = malformed_records(settings, events[0] | {"interaction_id": "never-valid"})

    # Valid traffic in two encodings, with the malformed records in the middle of it.
    half = len(events) // 2
    produce_events(settings, events[:half], "mixed", quiet=True)
    # Sent as a live producer would: record timestamps at the stream's current time.
    produce_raw(settings, [(key, value) for _, key, value in bad],
                timestamp_ms=events[half - 1]["event_time"])
    produce_events(settings, events[half:], "mixed", quiet=True)

    job = running_job(settings, ["features"])
    # The watermark ends 30 s behind the newest event; the last 5-minute boundary
    # before that is the furthest the job can report.
    newest = int(frame.event_time.max())
    target = (newest - settings.job.max_out_of_orderness_ms) // FIVE_MIN * FIVE_MIN - FIVE_MIN
    wait_for(lambda: job.caught_up(target), timeout_s=300,
             what=f"both views to reach event time {target}")
    progress = wait_until_stable(job.progress, quiet_s=5, timeout_s=60)
    assert job.status() == "RUNNING"

    compared, wrong = compare_online(settings, frame, progress)
    assert not wrong, f"{len(wrong)} of {compared} values differ, e.g. {wrong[:5]}; " \
                      f"job stats {job.stats()}"
    assert compared > 2_000

    # Decay: employees active earlier but quiet for the hour before the last 5-minute
    # boundary the watermark has passed read exactly 0.
    boundary = int(progress["employee_activity"]) // FIVE_MIN * FIVE_MIN
    last_seen = frame.groupby(["tenant_id", "employee_id"]).event_time.max()
    quiet = last_seen[(last_seen <= boundary - 3_600_000)
                      & (last_seen > boundary - 3 * 3_600_000)].index.tolist()
    assert len(quiet) >= 20
    rows = OnlineReader(settings.feature_repo, settings.redis_url).read(
        "employee_activity", [{"tenant_id": t, "employee_id": e} for t, e in quiet])
    assert [r["interactions_1h"] for r in rows] == [0] * len(quiet)

    # Every malformed record is on the dead-letter topic with its kind, exactly once.
    letters = [read_dead_letter(m.key(), m.value(), m.headers())
               for m in read_topic(settings, settings.topics.dead_letter, len(bad))]
    assert sorted(d.error_kind for d in letters) == sorted(kind for kind, _, _ in bad)
    assert all(d.source_topic == settings.topics.input for d in letters)
    stats = job.stats()
    for kind, _, _ in bad:
        assert int(stats[f"dead_letter:{kind}"]) == 1
    assert not any(k.startswith("late_records") for k in stats)
