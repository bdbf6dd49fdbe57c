"""Counters the job keeps in Redis (``driftline:<group>:stats``) beside Flink's metrics.

Readable by anything with Redis access (tests, ``driftline run``'s progress line). They
count what the job did; after a restore from a checkpoint the work replayed since that
checkpoint is counted again, so they are at-least-once, unlike the features. Both hashes
are named after the job's consumer group, so jobs sharing a Redis database keep apart.
"""

from __future__ import annotations

from pyflink.datastream import MapFunction, RuntimeContext

from streams.batches import LateRecords
from streams.settings import Settings


def group_key(settings: Settings, name: str) -> str:
    """A Redis key of the job's consumer group: ``driftline:<group>:<name>``."""
    return f"driftline:{settings.job.consumer_group}:{name}"


def stats_key(settings: Settings) -> str:
    return group_key(settings, "stats")


def progress_key(settings: Settings) -> str:
    """Per ``<view>/<shard>``, the event time through which its rows are in Redis."""
    return group_key(settings, "progress")


def add_stats(client, key: str, counts: dict[str, int]) -> None:
    """Add ``counts`` to the stats hash ``key`` in one round trip."""
    pipe = client.pipeline(transaction=False)
    for name, n in counts.items():
        pipe.hincrby(key, name, n)
    pipe.execute()


class LateCounter(MapFunction):
    """Counts records that arrived behind the watermark: ``late_records``."""

    def __init__(self, settings: Settings) -> None:
        self.redis_url, self.key = settings.redis_url, stats_key(settings)

    def open(self, runtime_context: RuntimeContext) -> None:
        from streams.retry import redis_client

        self.redis = redis_client(self.redis_url)
        self.counter = runtime_context.get_metrics_group().counter("late_records")

    def map(self, value: LateRecords) -> int:
        from streams.retry import until_done

        self.counter.inc(value.count)
        until_done(lambda: add_stats(self.redis, self.key, {"late_records": value.count}),
                   "late counter")
        return value.count
