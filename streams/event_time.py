"""Per-partition event-time watermarks, kept where the payload is decoded.

Flink's Kafka source builds per-partition watermarks only from a time it can read in the
JVM (the record timestamp), and producers leave that at send time. The payload's
``event_time`` is known only after the decode step, which runs in Python, and a watermark
assigned after it would be one per subtask: a backlog read interleaved across its
partitions would look out of order, and its records late.

So the decode step keeps, for the input partitions its subtask reads, what the Kafka
source would: each partition's newest event time, and the subtask's watermark as the
least of them minus the out-of-orderness bound. Each record leaves with the watermark as
of itself, and the JVM emits the largest seen (streams/job.py), as a source would.

Which partitions a subtask reads is Flink's Kafka split assignment
(``KafkaSourceEnumerator.getSplitOwner``): partition ``p`` of topic ``t`` goes to subtask
``((hash(t) * 31) & 0x7FFFFFFF) % n + p) % n`` of ``n``, with Java's ``String.hashCode``.
The first record a subtask sees names the subtask; the partitions it owns follow. A
partition that never sends holds the watermark back, as in Flink, unless
``idle_ms`` marks partitions silent for that long (wall time) as idle.

Nothing here is checkpointed: after a restore the source replays from its checkpointed
offsets, and the watermark is rebuilt from the records, as Flink's own are.
"""

from __future__ import annotations


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` as an unsigned 32-bit value (UTF-16 code units)."""
    h = 0
    units = text.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h


def split_owner(topic: str, partition: int, readers: int) -> int:
    """The source subtask that Flink's Kafka source assigns ``partition`` to."""
    start = ((java_string_hash(topic) * 31) & 0x7FFFFFFF) % readers
    return (start + partition) % readers


class PartitionClocks:
    """One source subtask's watermark over its partitions' newest event times."""

    def __init__(self, topic: str, partitions: int, readers: int, bound_ms: int,
                 idle_ms: int = 0) -> None:
        self.topic, self.partitions, self.readers = topic, partitions, readers
        self.bound_ms, self.idle_ms = bound_ms, idle_ms
        self.subtask: int | None = None
        self.owned: list[int] = []
        self.newest: dict[int, int] = {}
        self.heard: dict[int, int] = {}  # partition -> wall time of its last record
        self.started_ms = 0  # wall time of the first record
        self.watermark: int | None = None

    def observe(self, partition: int, event_ms: int, now_ms: int) -> int | None:
        """Take one record; the subtask's watermark after it (None: not known yet)."""
        if self.subtask is None:
            self.subtask = split_owner(self.topic, partition, self.readers)
            self.started_ms = now_ms
        self.newest[partition] = max(self.newest.get(partition, event_ms), event_ms)
        self.heard[partition] = now_ms
        if partition not in self.owned:  # the first record, or a partition added since
            self.partitions = max(self.partitions, partition + 1)
            # (with any partition seen, should Flink ever assign splits otherwise)
            self.owned = sorted({p for p in range(self.partitions)
                                 if split_owner(self.topic, p, self.readers) == self.subtask}
                                | self.newest.keys())
        return self.current(now_ms)

    def current(self, now_ms: int) -> int | None:
        """The watermark now: the least newest event time of the partitions not idle,
        minus the bound; never behind what it was."""
        if self.subtask is None:
            return self.watermark
        times = []
        for p in self.owned:
            if self.idle_ms and now_ms - self.heard.get(p, self.started_ms) >= self.idle_ms:
                continue
            if p not in self.newest:
                return self.watermark
            times.append(self.newest[p])
        if times:
            candidate = min(times) - self.bound_ms
            if self.watermark is None or candidate > self.watermark:
                self.watermark = candidate
        return self.watermark
