"""Event time is the payload's ``event_time``, whatever the producer set as record timestamp.

A plain producer (confluent-kafka with default record timestamps, i.e. send time) replays
hours of past events in a few seconds, as a backfill or an HR system's batch export would.
Features must equal the brute-force oracle exactly as for live traffic, nothing may be
counted late, at parallelism 1 and 2: the decode step's watermarks must follow each
input partition (a subtask reads several, interleaved) and own exactly the partitions
Flink's Kafka source assigned it (else event time would stall).
"""

from __future__ import annotations

import pandas as pd
import pytest
from confluent_kafka import Producer

from streams.ingest import interaction_serializer
from streams.producer import simulated_events
from tests.integration.conftest import wait_for, wait_until_stable
from tests.oracle import compare_online

pytestmark = pytest.mark.integration

EVENTS = 12_000
HOURS = 5.0
FIVE_MIN = 300_000


def produce_plainly(settings, events: list[dict]) -> None:
    """What an HR system's client does: key, value, and nothing else."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20})
    avro = interaction_serializer(settings, "avro")
    plain_json = interaction_serializer(settings, "json")
    for i, event in enumerate(events):
        value = (avro if i % 2 else plain_json)(event)
        producer.produce(settings.topics.input, key=event["employee_id"].encode(), value=value)
        producer.poll(0)
    producer.flush(60)


@pytest.mark.parametrize("parallelism", [1, 2])
def test_a_plain_producer_backfill_matches_the_oracle(isolated_settings, running_job,
                                                      parallelism):
    settings = isolated_settings(job={"parallelism": parallelism})
    # Yesterday's events, out of order by up to 20 s within the 30 s bound.
    end_ms = int(pd.Timestamp.now(tz="UTC").floor("D").timestamp() * 1000)
    events = simulated_events(settings, EVENTS, HOURS, seed=41, employees_per_tenant=100,
                              out_of_order_ms=20_000, end_ms=end_ms)
    for event in events[::50]:
        event["query_text"] = "please reset my password"  # no text goes downstream
    frame = pd.DataFrame(events)
    produce_plainly(settings, events)

    job = running_job(settings, ["features"])
    newest = int(frame.event_time.max())
    target = (newest - settings.job.max_out_of_orderness_ms) // FIVE_MIN * FIVE_MIN - FIVE_MIN
    wait_for(lambda: job.caught_up(target), timeout_s=300,
             what=f"every shard of both views to reach event time {target}")
    progress = wait_until_stable(job.progress, quiet_s=5, timeout_s=60)
    assert job.status() == "RUNNING"

    compared, wrong = compare_online(settings, frame, progress)
    assert not wrong, f"{len(wrong)} of {compared} values differ, e.g. {wrong[:5]}"
    assert compared > 2_000
    assert "late_records" not in job.stats()
