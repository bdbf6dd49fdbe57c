"""Event time is the payload's ``event_time``, whatever the producer set as record timestamp.

A plain producer (confluent-kafka with default record timestamps, i.e. send time) replays
hours of past events in a few seconds, as a backfill or an HR system's batch export would.
Features must equal the brute-force oracle exactly as for live traffic, nothing may be
counted late, at parallelism 1 and 2: the decode step's watermarks must follow each
input partition (a subtask reads several, interleaved) and own exactly the partitions
Flink's Kafka source assigned it (else event time would stall).
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
from confluent_kafka import Producer

from streams import flink_rest, stack
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
    assert flink_rest.window_drops(job.settings, str(job.client.get_job_id())) == 0


def test_a_watermark_1_ms_before_a_pane_boundary_loses_nothing(isolated_settings, running_job):
    """Event time stops at exactly a pane boundary minus 1 ms, then moves past it.

    Flink's window aggregations buffer records before their state and flush the buffer
    only at watermarks they compute from the window size alone; windows shifted by an
    offset (as ours once were, to be right-closed) then miss a flush at that watermark,
    and the pane's records reach the window after it has fired and are dropped
    (docs/semantics.md, "Feature windows"). One record per partition sets each partition's
    newest event time, so the watermark takes exactly the values chosen here. Checkpoints
    are far apart: a checkpoint flushes those buffers too, and would hide the loss.
    """
    settings = isolated_settings(job={"checkpoint_interval_ms": 600_000})
    partitions = stack.ensure_topics(settings)[settings.topics.input]
    bound = settings.job.max_out_of_orderness_ms
    boundary = (int(time.time() * 1000) - 3_600_000) // FIVE_MIN * FIVE_MIN
    # Before the boundary, up to one on it (a pane is right-closed); then a record per
    # partition at the boundary + bound - 1 ms (watermark: boundary - 1 ms), one past it,
    # and one ten minutes on, so that every shard writes the boundary's rows.
    phases = [[boundary - 200_000 + 1_000 * i for i in range(8)] + [boundary],
              [boundary + bound - 1], [boundary + bound + 5_000], [boundary + 600_000]]
    # Each event a different employee: partitions send at the same times, and two events
    # of one entity at one time, in different partitions, have no order for `last`.
    pool = simulated_events(settings, 20 * len(phases) * partitions * 9, 1.0, seed=5,
                            end_ms=boundary, employees_per_tenant=10_000)
    templates = iter({e["employee_id"]: e for e in pool}.values())
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    encode = interaction_serializer(settings, "json")
    job = running_job(settings, ["features"])
    events = []
    for times in phases:
        for t in times:
            for partition in range(partitions):
                event = {**next(templates), "event_time": t}
                events.append(event)
                producer.produce(settings.topics.input, key=event["employee_id"].encode(),
                                 value=encode(event), partition=partition)
        producer.flush(30)
        time.sleep(3)  # longer than a Python bundle and a watermark interval
    target = boundary + FIVE_MIN
    wait_for(lambda: job.caught_up(target), timeout_s=180,
             what=f"every shard of both views to reach event time {target}")
    progress = wait_until_stable(job.progress, quiet_s=5, timeout_s=60)

    compared, wrong = compare_online(settings, pd.DataFrame(events), progress)
    assert not wrong, f"{len(wrong)} of {compared} values differ, e.g. {wrong[:5]}"
    assert compared > 100
    assert "late_records" not in job.stats()
    assert flink_rest.window_drops(job.settings, str(job.client.get_job_id())) == 0
