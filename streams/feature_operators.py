"""PyFlink functions of the feature branch: windowed aggregation and the Redis sink.

The maths lives in ``features/`` (pure, unit-tested); these classes only adapt it
to Flink: keyed state, event-time timers, batching and metrics.
"""

from __future__ import annotations

import time
from typing import Any

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext, TimeDomain
from pyflink.datastream.state import ValueStateDescriptor

from features.definitions import ViewPlan
from features.windows import EntityState, WindowedAggregator

# Records between the feature operator and the sink are small tagged tuples:
#   ("row", view, entity_value, ts_ms, {feature: value})
#   ("progress", view, watermark_ms) every row as of event time <= watermark_ms is before it
#   ("late", view, count)            records dropped as later than allowed lateness
ROW, PROGRESS, LATE = "row", "progress", "late"

#: How soon after the watermark moves the operator reports it (processing time).
PROGRESS_DELAY_MS = 200


class WindowedFeatures(KeyedProcessFunction):
    """One view: keyed by the entity's join key, emits changed features as event time moves.

    A timer brings its key up to the current watermark (see ``features/windows.py`` for
    why not just to the timer's own time). Progress: Flink fires every event-time timer
    due at a watermark before anything that follows, so when a processing-time timer
    set after the watermark moved fires, every row up to that watermark is already out.
    """

    def __init__(self, plan: ViewPlan, allowed_lateness_ms: int) -> None:
        self.plan = plan
        self.allowed_lateness_ms = allowed_lateness_ms

    def open(self, runtime_context: RuntimeContext) -> None:
        self.windows = WindowedAggregator(self.plan)
        self.state = runtime_context.get_state(
            ValueStateDescriptor(f"{self.plan.name}_panes", Types.PICKLED_BYTE_ARRAY()))
        self.late_counter = runtime_context.get_metrics_group().counter("late_records")
        self.reported_watermark = -1
        self.progress_timer_set = False
        # The last event-time timer asked for per key: registering costs a message to the
        # JVM, and the events of one pane all ask for the same one (Flink dedupes anyway,
        # so after a restore this starts empty and nothing is lost).
        self.registered: dict[str, int] = {}

    def process_element(self, value: dict[str, Any], ctx: KeyedProcessFunction.Context):
        ts = value["event_time"]
        watermark = ctx.timer_service().current_watermark()
        self._schedule_progress(ctx, watermark)
        if ts <= watermark - self.allowed_lateness_ms:
            self.late_counter.inc()
            yield (LATE, self.plan.name, 1)
            return
        state = self.state.value() or EntityState()
        timer = self.windows.add(state, value, ts)
        self.state.update(state)
        self._register(ctx, timer)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        watermark = ctx.timer_service().current_watermark()
        if ctx.time_domain() == TimeDomain.PROCESSING_TIME:
            self.progress_timer_set = False
            self.reported_watermark = watermark
            yield (PROGRESS, self.plan.name, watermark)
            return
        self._schedule_progress(ctx, watermark)
        key = ctx.get_current_key()
        if self.registered.get(key, timestamp + 1) <= timestamp:
            del self.registered[key]
        state = self.state.value()
        if state is None:
            return
        changed, boundary, next_timer = self.windows.fire(state, max(timestamp, watermark))
        if changed:
            yield (ROW, self.plan.name, key, boundary, changed)
        if next_timer is None and state.is_empty():
            self.state.clear()
            return
        self.state.update(state)
        if next_timer is not None:
            self._register(ctx, next_timer)

    def _register(self, ctx, timer: int) -> None:
        key = ctx.get_current_key()
        if self.registered.get(key) != timer:
            self.registered[key] = timer
            ctx.timer_service().register_event_time_timer(timer)

    def _schedule_progress(self, ctx, watermark: int) -> None:
        if watermark > self.reported_watermark and not self.progress_timer_set:
            self.progress_timer_set = True
            now = ctx.timer_service().current_processing_time()
            ctx.timer_service().register_processing_time_timer(now + PROGRESS_DELAY_MS)


class RedisFeatureSink(KeyedProcessFunction):
    """Batches rows into pipelined newest-wins Redis writes; flushes by size or every 100 ms.

    Keyed by a small bucket number only so it may use processing-time timers to
    flush a partial batch when traffic pauses.
    """

    FLUSH_MS = 100

    def __init__(self, redis_url: str, project: str, plans: list[ViewPlan], batch_size: int):
        self.redis_url, self.project, self.plans = redis_url, project, plans
        self.batch_size = batch_size

    def open(self, runtime_context: RuntimeContext) -> None:
        from features.redis_writer import FeastRedisWriter

        self.writer = FeastRedisWriter(self.redis_url, self.project, self.plans)
        self.rows: list = []
        self.progress: dict[str, int] = {}
        self.late: dict[str, int] = {}
        metrics = runtime_context.get_metrics_group()
        self.written = metrics.counter("feature_rows_written")
        self.refused = metrics.counter("feature_rows_refused_older")

    def process_element(self, value: tuple, ctx: KeyedProcessFunction.Context):
        from features.redis_writer import FeatureRow

        kind = value[0]
        if kind == ROW:
            self.rows.append(FeatureRow(*value[1:]))
        elif kind == PROGRESS:
            self.progress[value[1]] = max(self.progress.get(value[1], -1), value[2])
        elif kind == LATE:
            self.late[value[1]] = self.late.get(value[1], 0) + value[2]
        if len(self.rows) >= self.batch_size:
            self.flush()
        else:
            now = ctx.timer_service().current_processing_time()
            ctx.timer_service().register_processing_time_timer(
                (now // self.FLUSH_MS + 1) * self.FLUSH_MS)
        return iter(())

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        if ctx.time_domain() == TimeDomain.PROCESSING_TIME:
            self.flush()
        return iter(())

    def flush(self) -> None:
        applied, refused = self.writer.write(self.rows)
        self.written.inc(applied)
        self.refused.inc(refused)
        self.rows = []
        client = self.writer.client
        if self.progress or self.late:
            pipe = client.pipeline(transaction=False)
            if self.progress:
                pipe.hset("driftline:progress", mapping={
                    **{view: str(through) for view, through in self.progress.items()},
                    "updated_at": str(int(time.time() * 1000))})
            for view, n in self.late.items():
                pipe.hincrby("driftline:stats", f"late_records:{view}", n)
            pipe.execute()
            self.progress.clear()
            self.late.clear()

    def close(self) -> None:
        if getattr(self, "rows", None) is not None:
            self.flush()
