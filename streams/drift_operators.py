"""PyFlink functions of the drift branch: tumbling windows in, DriftAlerts out.

The statistics, calibration and alert payload are ``drift/`` (pure). Here: which
reference to compare against (a Parquet file, or the first windows' events kept in
Flink state), and writing alerts to the alert topic as Confluent-framed Avro.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, ProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from streams.settings import Settings

ALL_TENANTS = "*"
# The monitor emits tagged tuples: (ALERT, alert_dict) or (STAT, counter_name, increment).
ALERT, STAT = "alert", "stat"


@functools.cache
def _drift_columns() -> tuple[str, ...]:
    from drift.monitor import default_monitor

    return (*default_monitor().columns, "tenant_id", "event_time")


def drift_row(event: dict[str, Any]) -> dict[str, Any]:
    """Only what the monitor reads travels through window state. (The column list is
    cached: building the pydantic monitor config per event cost ~14% of the Python
    operators' time, see benchmarks/results/pipeline.md.)"""
    return {c: event.get(c) for c in _drift_columns()}


def drift_key(row: dict[str, Any], per_tenant: bool) -> str:
    return row["tenant_id"] if per_tenant else ALL_TENANTS


def _columns(rows: list[dict[str, Any]], names) -> dict[str, list]:
    return {c: [r.get(c) for r in rows] for c in names}


class DriftMonitor(KeyedProcessFunction):
    """Tumbling event-time windows on the payload's ``event_time``, tested at each end.

    Rows wait in keyed list state as ``(window_end, row)`` until the watermark passes
    the window; only a window or two is open at a time, so the rewrite on firing is
    small. Without a Parquet profile, the reference is the first whole windows (in event
    time) that together hold ``reference_events`` rows: a set that does not depend on how
    the source interleaved its partitions. Those rows are not tested against themselves.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        from drift.monitor import MonitorEvaluator, default_monitor
        from drift.reference import ReferenceProfile

        drift = self.settings.drift
        self.window_ms = drift.window_ms
        self.monitor = default_monitor(alpha=drift.alpha)
        self.evaluator_cls, self.profile_cls = MonitorEvaluator, ReferenceProfile
        self.static_profile = (None if drift.reference_parquet is None else
                               ReferenceProfile.from_parquet(drift.reference_parquet,
                                                             self.monitor))
        self.profile = runtime_context.get_state(
            ValueStateDescriptor("reference_profile", Types.PICKLED_BYTE_ARRAY()))
        self.window_rows = runtime_context.get_list_state(
            ListStateDescriptor("window_rows", Types.PICKLED_BYTE_ARRAY()))
        metrics = runtime_context.get_metrics_group()
        self.windows_tested = metrics.counter("drift_windows_tested")
        self.late = metrics.counter("drift_late_records")
        self.registered: dict[str, int] = {}  # last window end a timer was set for, per key

    def _current_profile(self):
        return self.static_profile or self.profile.value()

    def process_element(self, row: dict[str, Any], ctx: KeyedProcessFunction.Context):
        ts = row["event_time"]
        if ts <= ctx.timer_service().current_watermark():
            self.late.inc()
            yield STAT, "drift_late_records", 1
            return
        window_end = (ts // self.window_ms + 1) * self.window_ms
        self.window_rows.add((window_end, row))
        key = ctx.get_current_key()
        if self.registered.get(key) != window_end:  # one timer call per key and window
            self.registered[key] = window_end
            ctx.timer_service().register_event_time_timer(window_end - 1)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        window_end = timestamp + 1
        due: list[tuple[int, dict[str, Any]]] = []
        waiting: list[tuple[int, dict[str, Any]]] = []
        for end, row in self.window_rows.get():
            (due if end <= window_end else waiting).append((end, row))
        if self._current_profile() is None:
            self._maybe_fit_reference([r for _, r in due], waiting)
            return
        self.window_rows.update(waiting)
        if not due:
            return
        key = ctx.get_current_key()
        self.windows_tested.inc()
        yield STAT, "drift_windows_tested", 1
        alerts = self.evaluator_cls(self.monitor, self._current_profile()).evaluate(
            _columns([r for _, r in due], self.monitor.columns),
            window_start_ms=window_end - self.window_ms, window_end_ms=window_end,
            tenant_id=None if key == ALL_TENANTS else key,
            detected_at_ms=int(time.time() * 1000))
        for alert in alerts:
            yield ALERT, alert

    def _maybe_fit_reference(self, closed: list[dict[str, Any]], waiting: list) -> None:
        """Once the closed windows hold enough rows, they become the reference."""
        if len(closed) < self.settings.drift.reference_events:
            return  # keep every row (closed windows included) until there are enough
        self.profile.update(self.profile_cls.from_columns(
            _columns(closed, self.monitor.columns), self.monitor,
            source=f"first-{len(closed)}"))
        self.window_rows.update(waiting)


class DriftSink(ProcessFunction):
    """Alerts -> Confluent-framed Avro on the alert topic (keyed by alert_id, so a replayed
    window's alert is the same record); counters -> ``driftline:stats`` in Redis."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        import redis
        from confluent_kafka import Producer

        from streams.ingest import alert_serializer

        self.serialize = alert_serializer(self.settings)
        self.producer = Producer({"bootstrap.servers": self.settings.bootstrap_servers,
                                  "acks": "all"})
        self.redis = redis.Redis.from_url(self.settings.redis_url)

    def process_element(self, value: tuple, ctx: ProcessFunction.Context):
        if value[0] == STAT:
            self.redis.hincrby("driftline:stats", value[1], value[2])
            return iter(())
        alert = value[1]
        self.producer.produce(self.settings.topics.alerts, key=alert["alert_id"].encode(),
                              value=self.serialize(alert))
        self.producer.flush(10)  # alerts are rare; make each one durable before going on
        return iter(())

    def close(self) -> None:
        if getattr(self, "producer", None) is not None:
            self.producer.flush(10)
