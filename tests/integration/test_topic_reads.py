"""Reading a topic to its end, against the real broker: where a backfill's bounded stages
stop (``end_offsets``) and what a restored alert writer knows was sent (``recent_keys``).

The oracle is the producer's own delivery reports: the offset the broker gave each record.
Batches of every size, flushed at random, leave Tansu's reported high watermark short of
the log end (DESIGN.md); the reads must still reach the last record of every partition.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from streams import stack
from streams.settings import Settings
from streams.topic_tail import end_offsets, recent_keys

PARTITIONS = 3  # the last one stays empty


def _produce(settings: Settings, topic: str, seed: int) -> dict[int, list[tuple[int, bytes]]]:
    """Records in batches of random sizes to all partitions but the last; per partition,
    (offset, key) of each as the broker acknowledged it."""
    rng = random.Random(seed)
    delivered: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(PARTITIONS)}

    def report(err, msg) -> None:
        assert err is None, err
        delivered[msg.partition()].append((msg.offset(), msg.key()))

    for linger_ms, batch_bytes in ((0, 1_000), (20, 262_144), (5, 16_384)):
        producer = Producer({"bootstrap.servers": settings.bootstrap_servers,
                             "linger.ms": linger_ms, "batch.size": batch_bytes})
        for _ in range(rng.choice([1, 7, 300, 2_000])):
            producer.produce(topic, key=uuid.uuid4().hex.encode(),
                             value=b"x" * rng.randint(1, 400),
                             partition=rng.randrange(PARTITIONS - 1), on_delivery=report)
            if rng.random() < 0.01:
                producer.flush()
        producer.flush()
    return delivered


@pytest.fixture
def topic(local_stack: Settings) -> Iterator[tuple[Settings, str]]:
    """A fresh input topic (and the dead-letter and alert topics that come with
    it), removed afterwards."""
    run = uuid.uuid4().hex[:8]
    settings = local_stack.model_copy(update={"topics": local_stack.topics.model_copy(update={
        "input": f"it-{run}.reads", "input_partitions": PARTITIONS,
        "dead_letter": f"it-{run}.dlq", "alerts": f"it-{run}.alerts"})})
    made = stack.ensure_topics(settings)
    yield settings, settings.topics.input
    stack.delete_topics(settings, list(made))


def test_end_offsets_are_after_each_partitions_last_record(topic):
    settings, name = topic
    delivered = _produce(settings, name, seed=1)
    want = {p: max((o for o, _ in recs), default=-1) + 1 for p, recs in delivered.items()}
    assert want[PARTITIONS - 1] == 0 and all(want[p] > 0 for p in range(PARTITIONS - 1))
    assert end_offsets(settings.bootstrap_servers, name) == want


def test_recent_keys_include_each_partitions_last_records(topic):
    settings, name = topic
    delivered = _produce(settings, name, seed=2)
    last = 50
    want = {key for recs in delivered.values() for _, key in sorted(recs)[-last:]}
    got = recent_keys(settings.bootstrap_servers, name, limit=last)
    assert want <= got, f"{len(want - got)} of the newest keys missing"


def test_deleted_topics_are_gone(local_stack: Settings):
    # The oracle is the broker's own topic list, read by a client of this test's own.
    from confluent_kafka.admin import AdminClient

    run = uuid.uuid4().hex[:8]
    settings = local_stack.model_copy(update={"topics": local_stack.topics.model_copy(update={
        "input": f"it-{run}.gone", "dead_letter": f"it-{run}.dlq", "alerts": f"it-{run}.alerts"})})
    stack.ensure_topics(settings)
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    assert set(settings.topics.names) <= set(admin.list_topics(timeout=5).topics)
    stack.delete_topics(settings, list(settings.topics.names))
    assert not set(settings.topics.names) & set(admin.list_topics(timeout=5).topics)
