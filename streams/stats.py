"""Counters the job keeps in Redis (``driftline:stats``) beside Flink's own metrics.

Readable by anything with Redis access (tests, ``driftline run``'s progress line). They
count what the job did; after a restore from a checkpoint the work replayed since that
checkpoint is counted again, so they are at-least-once, unlike the features.
"""

from __future__ import annotations

from pyflink.datastream import MapFunction, RuntimeContext

from streams.batches import LateRecords

STATS_KEY = "driftline:stats"
#: Per ``<view>/<shard>``, the event time through which its rows are in Redis.
PROGRESS_KEY = "driftline:progress"


class LateCounter(MapFunction):
    """Counts records that arrived behind the watermark: ``late_records``."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def open(self, runtime_context: RuntimeContext) -> None:
        import redis

        self.redis = redis.Redis.from_url(self.redis_url)
        self.counter = runtime_context.get_metrics_group().counter("late_records")

    def map(self, value: LateRecords) -> int:
        self.counter.inc(value.count)
        self.redis.hincrby(STATS_KEY, "late_records", value.count)
        return value.count
