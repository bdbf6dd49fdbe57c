"""Partition routing into the validated topic, where ingestion resumes after a restore, and
reading a topic to its end (:func:`end_offsets`, :func:`recent_keys`).

Validated partition ``i`` holds exactly the accepted records of input partition ``i``, in
their input order, so the windows' per-partition watermarks see each input partition's
own event-time order (a merge of partitions would make a backlog look late).

Flink's Kafka SQL sink cannot name a partition, but leaves the choice to the Kafka
producer, which takes ``murmur2(key) % partitions`` for a keyed record. So each record is
keyed with a short token chosen to land on its source partition (:func:`partition_tokens`).

Because of that one-to-one mapping, the newest record of validated partition ``i`` says
how far input partition ``i`` was already handed on (:func:`resume_offsets`). After a
restore from a checkpoint, ingestion skips what is already there instead of writing it
twice: the validated stream holds every accepted record once, with no dedup state.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from schemas.errors import DriftlineError

_M, _R, _SEED = 0x5BD1E995, 24, 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.toPositive(Utils.murmur2(data))`` (its built-in key partitioner)."""
    n = len(data)
    h = (_SEED ^ n) & _MASK
    tail = n - n % 4
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> _R
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = n % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h & 0x7FFFFFFF


def partition_tokens(partitions: int) -> list[bytes]:
    """``tokens[i]`` is a record key that Kafka's partitioner sends to partition ``i``."""
    found: dict[int, bytes] = {}
    i = 0
    while len(found) < partitions:
        token = f"p{i}".encode()
        found.setdefault(murmur2(token) % partitions, token)
        i += 1
    return [found[p] for p in range(partitions)]


def _tail(bootstrap_servers: str, topic: str, last_n: int,
          partitions: Iterable[int] | None = None, ends: dict[int, int] | None = None,
          limit_s: float = 60.0) -> Iterator[Message]:
    """The last ``last_n`` records of each partition (default: every partition of the
    topic), read until each partition has reported its end (into ``ends``, if given).

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
        if partitions is None:
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


def resume_offsets(bootstrap_servers: str, topic: str, partitions: int) -> dict[int, int]:
    """Per input partition, the source offset of the newest record already in the
    validated ``topic`` (partitions with nothing yet are absent)."""
    newest: dict[int, int] = {}
    for msg in _tail(bootstrap_servers, topic, 1, range(partitions)):
        partition, value = msg.partition(), msg.value()
        if partition is not None and value is not None:
            newest[partition] = int(json.loads(value)["source_offset"])
    return newest


def recent_keys(bootstrap_servers: str, topic: str, limit: int = 10_000) -> set[bytes]:
    """The keys of (about) the last ``limit`` records of each partition of ``topic``: what a
    restored alert writer checks so that an alert sent before a crash is not sent again."""
    return {key for msg in _tail(bootstrap_servers, topic, limit)
            if (key := msg.key()) is not None}


__all__ = ["end_offsets", "murmur2", "partition_tokens", "recent_keys", "resume_offsets"]
