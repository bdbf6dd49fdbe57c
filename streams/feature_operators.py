"""The feature branch's Python step: pane batches in, Feast rows in Redis and the log out.

Keyed by ``<view>/<shard>``. The maths is ``features/tiles.py`` (pure, unit-tested); here
only Flink's keyed state, event-time timers, the Redis writes and progress. The shard's
pane batches are a ``MapState`` by pane end, so each is serialized when it is stored,
not again with every bundle; the rest of the shard's tiles is one value. A batch or
tick for pane ``E`` arrives before the watermark passes ``E`` (the JVM emits a window's
rows, then forwards the watermark), so the timer at ``E`` sees every pane up to it.
"""

from __future__ import annotations

import time

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext, TimeDomain
from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

from features.offline_log import ROW_COLUMNS, staged_values
from features.plans import ViewPlan
from features.redis_writer import FeastRedisWriter
from features.tiles import FeatureRow, PaneBatch, ShardTiles, ViewWindows, latest_per_entity
from streams.retry import redis_client, until_done
from streams.settings import Settings
from streams.stats import progress_key

_FLINK_TYPES = {"STRING": Types.STRING(), "BIGINT": Types.LONG()}
#: A row of the offline log as the tiles emit it (the sink derives its day).
LOG_ROW = Types.ROW_NAMED([n for n, _ in ROW_COLUMNS], [_FLINK_TYPES[t] for _, t in ROW_COLUMNS])


def shard_key(view: str, shard: int) -> str:
    return f"{view}/{shard}"


class ShardWrites:
    """One worker's Redis writes for its shards: a timer's rows together with the shard's
    progress, in one pipeline retried whole while Redis is away; progress alone at most
    every ``PROGRESS_EVERY_MS`` of processing time, so a drain does not pay a round trip
    per pane and shard.

    A report counts as made only once Redis has acknowledged it: a try lost to an outage
    is made again, never skipped as done (else a shard whose rows were all written in that
    try would show no progress for ever).
    """

    PROGRESS_EVERY_MS = 500

    def __init__(self, writer: FeastRedisWriter, progress_key: str) -> None:
        self.writer, self.progress_key = writer, progress_key
        self.reported: dict[str, tuple[int, float]] = {}  # key -> (through, wall time)

    def rows(self, key: str, rows: list[FeatureRow], through: int) -> int:
        """Write ``rows`` and progress ``through``; return how many rows were applied (the
        rest were refused as older than what Redis holds)."""
        mapping = self._mapping(key, through)

        def write() -> int:
            pipe = self.writer.client.pipeline(transaction=False)
            n = self.writer.queue(pipe, rows)
            pipe.hset(self.progress_key, mapping=mapping)
            return sum(pipe.execute()[:n])

        applied = until_done(write, f"feature rows of {key}")
        self.reported[key] = (through, time.monotonic())
        return applied

    def progress(self, key: str, through: int, force: bool = False) -> bool:
        """Report that ``key`` has written everything through ``through``; False if that
        was deferred (a report went out less than ``PROGRESS_EVERY_MS`` ago)."""
        last, at = self.reported.get(key, (-1, 0.0))
        if through <= last:
            return True
        if not force and time.monotonic() - at < self.PROGRESS_EVERY_MS / 1000:
            return False
        mapping = self._mapping(key, through)
        until_done(lambda: self.writer.client.hset(self.progress_key, mapping=mapping),
                   f"progress of {key}")
        self.reported[key] = (through, time.monotonic())
        return True

    def lag_ms(self, view: str) -> int:
        """How far this worker's slowest shard of ``view`` is behind the wall clock (-1
        before it wrote anything)."""
        marks = [t for key, (t, _) in self.reported.items() if key.startswith(f"{view}/")]
        return int(time.time() * 1000) - min(marks) if marks else -1

    @staticmethod
    def _mapping(key: str, through: int) -> dict[str, str]:
        return {key: str(through), "updated_at": str(int(time.time() * 1000))}


class FeatureTiles(KeyedProcessFunction):
    """Folds pane batches into one shard's tiles; writes due rows as event time passes.

    Progress: after a timer, every row of this shard up to the watermark is in Redis;
    the hash ``driftline:<group>:progress`` holds that watermark per ``<view>/<shard>``, and a
    view has reached event time T when all its shards have (streams/runner.py). It goes
    out with the shard's rows or, when a timer wrote none, on its own (:class:`ShardWrites`;
    a deferred report is flushed by a processing-time timer).
    """

    def __init__(self, plans: list[ViewPlan], settings: Settings, project: str,
                 input_ends_at: int | None = None) -> None:
        self.plans, self.redis_url, self.project = plans, settings.redis_url, project
        self.input_ends_at = input_ends_at  # a bounded run's end of event time (tiles.py)
        self.progress_key = progress_key(settings)
        self.log, self.write_online = settings.offline.enabled, settings.job.write_online

    def open(self, runtime_context: RuntimeContext) -> None:
        self.windows = {p.name: ViewWindows(p) for p in self.plans}
        writer = FeastRedisWriter(self.redis_url, self.project, self.plans,
                                  client=redis_client(self.redis_url))
        self.writes = ShardWrites(writer, self.progress_key)
        self.state = runtime_context.get_state(
            ValueStateDescriptor("shard_tiles", Types.PICKLED_BYTE_ARRAY()))
        self.panes = runtime_context.get_map_state(
            MapStateDescriptor("shard_panes", Types.LONG(), Types.PICKLED_BYTE_ARRAY()))
        metrics = runtime_context.get_metrics_group()
        self.written = metrics.counter("feature_rows_written")
        self.refused = metrics.counter("feature_rows_refused_older")
        for plan in self.plans:  # wall clock minus the event time written, per view
            metrics.add_group("view", plan.name).gauge(
                "event_time_lag_ms", lambda view=plan.name: self.writes.lag_ms(view))

    def process_element(self, batch: PaneBatch, ctx: KeyedProcessFunction.Context):
        tiles = self.state.value() or ShardTiles()
        self.windows[batch.view].add(tiles, self.panes, batch)
        self.state.update(tiles)
        ctx.timer_service().register_event_time_timer(batch.pane_end)
        return iter(())

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        key = ctx.get_current_key()
        tiles = self.state.value()
        if tiles is None:
            return iter(())
        if ctx.time_domain() == TimeDomain.PROCESSING_TIME:
            self.writes.progress(key, tiles.through, force=True)
            return iter(())
        view = key.rpartition("/")[0]
        watermark = max(timestamp, ctx.timer_service().current_watermark())
        computed = self.windows[view].advance(tiles, self.panes, watermark, self.input_ends_at)
        rows = latest_per_entity(computed) if self.write_online else []
        self.state.update(tiles)
        if rows:
            applied = self.writes.rows(key, rows, tiles.through)
            self.written.inc(applied)
            self.refused.inc(len(rows) - applied)
        elif not self.writes.progress(key, tiles.through):
            now = ctx.timer_service().current_processing_time()
            ctx.timer_service().register_processing_time_timer(now + ShardWrites.PROGRESS_EVERY_MS)
        if not self.log:
            return iter(())
        return (Row(r.view, r.entity_value, r.ts_ms, staged_values(r)) for r in computed)
