"""PyFlink functions of the drift branch: tumbling windows in, DriftAlerts out.

The statistics, calibration and alert payload are ``drift/`` (pure). Here: which
reference to compare against (a Parquet file, or the first N events kept in Flink
state), and writing alerts to the alert topic as Confluent-framed Avro.
"""

from __future__ import annotations

import time
from typing import Any

from pyflink.common import Types
from pyflink.datastream import ProcessFunction, RuntimeContext
from pyflink.datastream.functions import ProcessWindowFunction
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from streams.settings import Settings

ALL_TENANTS = "*"


def drift_row(event: dict[str, Any]) -> dict[str, Any]:
    """Only what the monitor reads travels through window state."""
    from drift.monitor import default_monitor

    return {c: event.get(c) for c in (*default_monitor().columns, "tenant_id")}


def drift_key(row: dict[str, Any], per_tenant: bool) -> str:
    return row["tenant_id"] if per_tenant else ALL_TENANTS


def _columns(rows: list[dict[str, Any]], names) -> dict[str, list]:
    return {c: [r.get(c) for r in rows] for c in names}


class DriftWindow(ProcessWindowFunction):
    """Tests each closed window against the reference; the first windows may build it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        from drift.monitor import MonitorEvaluator, default_monitor
        from drift.reference import ReferenceProfile

        drift = self.settings.drift
        self.monitor = default_monitor(alpha=drift.alpha)
        self.static_profile = None
        if drift.reference_parquet is not None:
            self.static_profile = ReferenceProfile.from_parquet(
                drift.reference_parquet, self.monitor)
        self.evaluator_cls = MonitorEvaluator
        self.profile_cls = ReferenceProfile
        self.profile_desc = ValueStateDescriptor("reference_profile", Types.PICKLED_BYTE_ARRAY())
        self.buffer_desc = ListStateDescriptor("reference_rows", Types.PICKLED_BYTE_ARRAY())
        metrics = runtime_context.get_metrics_group()
        self.windows_tested = metrics.counter("drift_windows_tested")
        self.alerts_raised = metrics.counter("drift_alerts_raised")

    def _profile(self, context: ProcessWindowFunction.Context, rows: list[dict]):
        """The reference to test against, or None while the first N events are collected."""
        if self.static_profile is not None:
            return self.static_profile
        profile_state = context.global_state().get_state(self.profile_desc)
        profile = profile_state.value()
        if profile is not None:
            return profile
        buffer = context.global_state().get_list_state(self.buffer_desc)
        buffer.add(rows)
        collected = [r for batch in buffer.get() for r in batch]
        wanted = self.settings.drift.reference_events
        if len(collected) < wanted:
            return None
        profile = self.profile_cls.from_columns(
            _columns(collected[:wanted], self.monitor.columns), self.monitor,
            source=f"first-{wanted}")
        profile_state.update(profile)
        buffer.clear()
        return None  # the window that completed the reference is not tested against itself

    def process(self, key: str, context: ProcessWindowFunction.Context, elements):
        rows = list(elements)
        profile = self._profile(context, rows)
        if profile is None:
            return
        window = context.window()
        self.windows_tested.inc()
        alerts = self.evaluator_cls(self.monitor, profile).evaluate(
            _columns(rows, self.monitor.columns), window_start_ms=window.start,
            window_end_ms=window.end, tenant_id=None if key == ALL_TENANTS else key,
            detected_at_ms=int(time.time() * 1000))
        self.alerts_raised.inc(len(alerts))
        yield from alerts


class AlertSink(ProcessFunction):
    """DriftAlert dicts -> Confluent-framed Avro on the alert topic, keyed by alert_id."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        from confluent_kafka import Producer

        from streams.ingest import alert_serializer

        self.serialize = alert_serializer(self.settings)
        self.producer = Producer({"bootstrap.servers": self.settings.bootstrap_servers,
                                  "acks": "all", "enable.idempotence": False})

    def process_element(self, alert: dict[str, Any], ctx: ProcessFunction.Context):
        self.producer.produce(self.settings.topics.alerts, key=alert["alert_id"].encode(),
                              value=self.serialize(alert))
        self.producer.flush(10)  # alerts are rare; make each one durable before going on
        return iter(())

    def close(self) -> None:
        if getattr(self, "producer", None) is not None:
            self.producer.flush(10)
