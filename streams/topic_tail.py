"""Reading a topic's tail: where each partition ends (:func:`end_offsets`, which a
backfill bounds its run at) and the keys of its newest records (:func:`recent_keys`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from schemas.errors import DriftlineError


def _tail(bootstrap_servers: str, topic: str, last_n: int, ends: dict[int, int] | None = None,
          limit_s: float = 60.0) -> Iterator[Message]:
    """The last ``last_n`` records of each partition of the topic, read until each
    partition has reported its end (into ``ends``, if given).

    Tansu's high watermark is not the log end (DESIGN.md: often the base offset of the
    last batch), so reading starts ``last_n`` before it, and stops at the consumer's
    end-of-partition event, which is at the true end on Tansu as on Kafka. (An idle
    timeout instead stops early whenever the first fetch is slow, as beside a busy job,
    and loses the last batch.)
    """
    consumer = Consumer({"bootstrap.servers": bootstrap_servers,
                         "group.id": f"driftline-tail-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        partitions = list(meta.partitions) if meta else []
        assignment = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assignment.append(TopicPartition(topic, p, max(low, high - last_n)))
        if not assignment:
            return
        consumer.assign(assignment)
        pending = {tp.partition for tp in assignment}
        deadline = time.monotonic() + limit_s
        while pending:
            if time.monotonic() > deadline:
                raise DriftlineError(f"could not read to the end of {topic} (partitions "
                                     f"{sorted(pending)}) within {limit_s:.0f} s")
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            if error is None:
                yield msg
            elif error.code() == KafkaError._PARTITION_EOF:
                partition, offset = msg.partition(), msg.offset()
                pending.discard(partition)
                if ends is not None and partition is not None and offset is not None:
                    ends[partition] = offset
    finally:
        consumer.close()


def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """Per partition, the offset after its last record, read rather than asked for (a
    bounded read that stops at the reported high watermark would miss Tansu's last batch)."""
    ends: dict[int, int] = {}
    for _ in _tail(bootstrap_servers, topic, 1, ends=ends):
        pass
    return ends


def recent_keys(bootstrap_servers: str, topic: str, limit: int = 10_000) -> set[bytes]:
    """The keys of (about) the last ``limit`` records of each partition of ``topic``: what a
    restored alert writer checks so that an alert sent before a crash is not sent again."""
    return {key for msg in _tail(bootstrap_servers, topic, limit)
            if (key := msg.key()) is not None}


__all__ = ["end_offsets", "recent_keys"]
