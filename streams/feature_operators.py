"""The feature branch's Python step: pane batches in, Feast rows in Redis out.

Keyed by ``<view>/<shard>``. The maths is ``features/tiles.py`` (pure, unit-tested); here
only Flink's keyed state, event-time timers, the Redis writes and progress. A batch or
tick for pane ``E`` arrives before the watermark passes ``E`` (the JVM emits a window's
rows, then forwards the watermark), so the timer at ``E`` sees every pane up to it.
"""

from __future__ import annotations

import time

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from features.plans import ViewPlan
from features.tiles import PaneBatch, ShardTiles, ViewWindows
from streams.stats import PROGRESS_KEY


def shard_key(view: str, shard: int) -> str:
    return f"{view}/{shard}"


class FeatureTiles(KeyedProcessFunction):
    """Folds pane batches into one shard's tiles; writes due rows as event time passes.

    Progress: after a timer, every row of this shard up to the watermark is in Redis;
    the hash ``driftline:progress`` holds that watermark per ``<view>/<shard>``, and a
    view has reached event time T when all its shards have (streams/runner.py).
    """

    def __init__(self, plans: list[ViewPlan], redis_url: str, project: str) -> None:
        self.plans, self.redis_url, self.project = plans, redis_url, project

    def open(self, runtime_context: RuntimeContext) -> None:
        from features.redis_writer import FeastRedisWriter

        self.windows = {p.name: ViewWindows(p) for p in self.plans}
        self.writer = FeastRedisWriter(self.redis_url, self.project, self.plans)
        self.state = runtime_context.get_state(
            ValueStateDescriptor("shard_tiles", Types.PICKLED_BYTE_ARRAY()))
        metrics = runtime_context.get_metrics_group()
        self.written = metrics.counter("feature_rows_written")
        self.refused = metrics.counter("feature_rows_refused_older")

    def process_element(self, batch: PaneBatch, ctx: KeyedProcessFunction.Context):
        tiles = self.state.value() or ShardTiles()
        self.windows[batch.view].add(tiles, batch)
        self.state.update(tiles)
        ctx.timer_service().register_event_time_timer(batch.pane_end)
        return iter(())

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        tiles = self.state.value()
        if tiles is None:
            return iter(())
        key = ctx.get_current_key()
        view = key.rpartition("/")[0]
        watermark = max(timestamp, ctx.timer_service().current_watermark())
        rows = self.windows[view].advance(tiles, watermark)
        self.state.update(tiles)
        pipe = self.writer.client.pipeline(transaction=False)
        n = self.writer.queue(pipe, rows)
        pipe.hset(PROGRESS_KEY, mapping={key: str(tiles.through),
                                         "updated_at": str(int(time.time() * 1000))})
        applied = sum(pipe.execute()[:n])
        self.written.inc(applied)
        self.refused.inc(n - applied)
        return iter(())
