"""PyFlink functions of the drift branch: tumbling windows in, DriftAlerts out.

The statistics, calibration and alert payload are ``drift/`` (pure). Here: which
reference to compare against (a Parquet file, or the first N events kept in Flink
state), and writing alerts to the alert topic as Confluent-framed Avro.
"""

from __future__ import annotations

import time
from typing import Any

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, ProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from streams.settings import Settings

ALL_TENANTS = "*"
# The monitor emits tagged tuples: (ALERT, alert_dict) or (STAT, counter_name, increment).
ALERT, STAT = "alert", "stat"


def drift_row(event: dict[str, Any]) -> dict[str, Any]:
    """Only what the monitor reads travels through window state."""
    from drift.monitor import default_monitor

    return {c: event.get(c) for c in (*default_monitor().columns, "tenant_id", "event_time")}


def drift_key(row: dict[str, Any], per_tenant: bool) -> str:
    return row["tenant_id"] if per_tenant else ALL_TENANTS


def _columns(rows: list[dict[str, Any]], names) -> dict[str, list]:
    return {c: [r.get(c) for r in rows] for c in names}


class DriftMonitor(KeyedProcessFunction):
    """Tumbling event-time windows on the payload's ``event_time``, tested at each end.

    Rows wait in keyed list state as ``(window_end, row)`` until the watermark passes
    the window; only a window or two is open at a time, so the rewrite on firing is
    small. Until a reference exists (no Parquet profile), the first
    ``reference_events`` rows build one and are not tested against themselves.
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
        self.reference_rows = runtime_context.get_list_state(
            ListStateDescriptor("reference_rows", Types.PICKLED_BYTE_ARRAY()))
        self.reference_count = runtime_context.get_state(
            ValueStateDescriptor("reference_count", Types.LONG()))
        self.window_rows = runtime_context.get_list_state(
            ListStateDescriptor("window_rows", Types.PICKLED_BYTE_ARRAY()))
        metrics = runtime_context.get_metrics_group()
        self.windows_tested = metrics.counter("drift_windows_tested")
        self.late = metrics.counter("drift_late_records")

    def _current_profile(self):
        return self.static_profile or self.profile.value()

    def process_element(self, row: dict[str, Any], ctx: KeyedProcessFunction.Context):
        if self._current_profile() is None:
            self._collect_reference(row)
            return
        ts = row["event_time"]
        if ts <= ctx.timer_service().current_watermark():
            self.late.inc()
            yield STAT, "drift_late_records", 1
            return
        window_end = (ts // self.window_ms + 1) * self.window_ms
        self.window_rows.add((window_end, row))
        ctx.timer_service().register_event_time_timer(window_end - 1)

    def _collect_reference(self, row: dict[str, Any]) -> None:
        self.reference_rows.add(row)
        count = (self.reference_count.value() or 0) + 1
        self.reference_count.update(count)
        wanted = self.settings.drift.reference_events
        if count < wanted:
            return
        rows = list(self.reference_rows.get())
        self.profile.update(self.profile_cls.from_columns(
            _columns(rows, self.monitor.columns), self.monitor, source=f"first-{wanted}"))
        self.reference_rows.clear()
        self.reference_count.clear()

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        window_end = timestamp + 1
        due, waiting = [], []
        for end, row in self.window_rows.get():
            (due if end == window_end else waiting).append((end, row))
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
