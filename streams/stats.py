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


def add_stats(client, counts: dict[str, int]) -> None:
    """Add ``counts`` to ``driftline:stats`` in one round trip."""
    pipe = client.pipeline(transaction=False)
    for name, n in counts.items():
        pipe.hincrby(STATS_KEY, name, n)
    pipe.execute()


class LateCounter(MapFunction):
    """Counts records that arrived behind the watermark: ``late_records``."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def open(self, runtime_context: RuntimeContext) -> None:
        from streams.retry import redis_client

        self.redis = redis_client(self.redis_url)
        self.counter = runtime_context.get_metrics_group().counter("late_records")

    def map(self, value: LateRecords) -> int:
        from streams.retry import until_done

        self.counter.inc(value.count)
        until_done(lambda: add_stats(self.redis, {"late_records": value.count}),
                   "late counter")
        return value.count
