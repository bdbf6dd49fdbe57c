"""Nothing a record contains, and no data distribution, may stop the job.

One stream carries what real tenants send and once put the job in a restart loop: a
tenant whose ``confidence`` never varies, traffic without the optional ``embedding``,
a 3 MB record (larger than the dead-letter topic takes) and garbage. The job must keep
running without a restart, with exact features, the oversized record's dead letter cut
to size with its original size and hash, and the tests the data cannot support skipped,
counted and named in the alerts' details.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from confluent_kafka import Producer

from schemas.dead_letter import H_ORIGINAL_BYTES, H_SHA256, H_TRUNCATED, read_dead_letter
from streams import flink_rest
from streams.producer import parse_drift, produce_events, simulated_events
from streams.views import read_alerts
from tests.integration.conftest import read_topic, wait_for, wait_until_stable
from tests.integration.faults import restarts
from tests.oracle import compare_online

pytestmark = pytest.mark.integration

EVENTS = 12_000
HOURS = 5.0
FIVE_MIN = 300_000
HUGE_BYTES = 3 * 1024 * 1024


def test_constant_columns_missing_embeddings_and_a_3_mb_record_keep_the_job_running(
        isolated_settings, running_job):
    settings = isolated_settings(drift={"window_ms": 30 * 60_000, "reference_events": 400,
                                        "per_tenant": True})
    events = simulated_events(settings, EVENTS, HOURS, seed=31, employees_per_tenant=60,
                              out_of_order_ms=10_000,
                              drift=parse_drift("response_latency_ms:mean_shift:2.5@0.5",
                                                EVENTS))
    constant_tenant = events[0]["tenant_id"]
    for event in events:
        event.pop("embedding", None)  # an optional field nobody sends
        if event["tenant_id"] == constant_tenant:
            event["confidence"] = 0.9  # a model that always answers the same
    frame = pd.DataFrame(events)

    half = len(events) // 2
    produce_events(settings, events[:half], "mixed", quiet=True)
    huge = json.dumps(events[half] | {"interaction_id": "huge", "query_text": "x" * HUGE_BYTES})
    big = Producer({"bootstrap.servers": settings.bootstrap_servers,
                    "message.max.bytes": 8 * 1024 * 1024})
    big.produce(settings.topics.input, key=b"huge", value=huge.encode())
    big.produce(settings.topics.input, key=b"junk", value=b"\x07\x00\xffgarbage")
    big.flush(30)
    produce_events(settings, events[half:], "mixed", quiet=True)

    job = running_job(settings, ["features", "drift"])
    newest = int(frame.event_time.max()) - settings.job.max_out_of_orderness_ms
    target = newest // FIVE_MIN * FIVE_MIN - FIVE_MIN
    wait_for(lambda: job.caught_up(target), timeout_s=300, what="the whole stream")
    wait_for(lambda: int(job.stats().get("drift_windows_tested", 0)) >= 8, timeout_s=120,
             what="drift windows tested")
    progress = wait_until_stable(job.progress, quiet_s=5, timeout_s=60)

    assert job.status() == "RUNNING"
    assert restarts(job.settings) == 0, flink_rest.jobs(job.settings)
    compared, wrong = compare_online(settings, frame, progress)
    assert not wrong, f"{len(wrong)} of {compared} values differ, e.g. {wrong[:5]}"
    assert compared > 1_000

    letters = read_topic(settings, settings.topics.dead_letter, expected=2)
    by_kind = {read_dead_letter(m.key(), m.value(), m.headers()).error_kind: m
               for m in letters}
    assert set(by_kind) == {"oversized", "bad_magic"}
    cut = by_kind["oversized"]
    headers = {k: (v or b"").decode() for k, v in cut.headers()}
    assert headers[H_TRUNCATED] == "1"
    assert len(cut.value()) == settings.ingest.max_dead_letter_bytes
    # Nothing in the record needed redacting, so size and hash are the producer's own.
    assert int(headers[H_ORIGINAL_BYTES]) == len(huge.encode())
    assert headers[H_SHA256] == hashlib.sha256(huge.encode()).hexdigest()

    stats = job.stats()
    assert int(stats.get("drift_tests_skipped:embedding", 0)) > 0
    assert int(stats.get("drift_tests_skipped:confidence", 0)) > 0
    alerts = list(read_alerts(settings, idle_timeout_s=5.0))
    assert any(a.feature == "response_latency_ms" for a in alerts)
    for alert in alerts:
        skipped = json.loads(alert.details)["skipped"]
        assert "embedding:mmd" in skipped
        if alert.tenant_id == constant_tenant:
            assert "confidence:psi" in skipped, skipped
