"""The drift branch's Python step: slices of a tenant's values in, alerts out.

Keyed by monitor key (a tenant, or ``*`` for all). The statistics, calibration and alert
payload are ``drift/`` (pure); here: which reference to compare against (a Parquet file,
or the first whole event-time windows holding ``reference_events`` events, kept in Flink
state), folding slices into the window's mergeable accumulators
(``MonitorEvaluator.update``), and testing each window when event time passes its end.
Alerts leave as Confluent-framed Avro rows for the JVM Kafka sink.

Nothing in the data can stop it: a reference that cannot fit a test (a constant column,
no embeddings) skips that test with the reason, and a window that cannot be evaluated
is counted and logged, never raised.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from drift.slices import DriftSlice
from schemas.errors import DriftlineError
from streams.batches import ALL_TENANTS
from streams.retry import redis_client, until_done
from streams.settings import Settings
from streams.stats import add_stats, stats_key
from streams.topic_tail import recent_keys

log = logging.getLogger("driftline.drift")
#: Output rows: Kafka key and value of one alert.
ALERT_ROW = Types.ROW_NAMED(["key", "value"], [Types.PRIMITIVE_ARRAY(Types.BYTE()),
                                                Types.PRIMITIVE_ARRAY(Types.BYTE())])


class DriftMonitor(KeyedProcessFunction):
    """Tumbling event-time windows of ``drift.window_ms``, tested at each end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        from drift.monitor import MonitorEvaluator, default_monitor
        from drift.reference import ReferenceProfile
        from streams.ingest import alert_serializer

        drift = self.settings.drift
        self.window_ms = drift.window_ms
        self.monitor = default_monitor(alpha=drift.alpha)
        self.evaluator_cls, self.profile_cls = MonitorEvaluator, ReferenceProfile
        self.static_profile = (None if drift.reference_parquet is None else
                               ReferenceProfile.from_parquet(drift.reference_parquet,
                                                             self.monitor))
        self.serialize = alert_serializer(self.settings)
        # Alerts already on the topic (a restore re-tests the windows since the last
        # checkpoint): each alert id is sent once.
        self.sent = recent_keys(self.settings.bootstrap_servers, self.settings.topics.alerts)
        self.redis = redis_client(self.settings.redis_url)
        self.stats_key = stats_key(self.settings)
        pickled = Types.PICKLED_BYTE_ARRAY()
        self.profile = runtime_context.get_state(ValueStateDescriptor("profile", pickled))
        # window end -> accumulators (or, before the reference exists, raw columns)
        self.windows = runtime_context.get_state(ValueStateDescriptor("windows", pickled))
        metrics = runtime_context.get_metrics_group()
        self.tested = metrics.counter("drift_windows_tested")
        self.failed = metrics.counter("drift_windows_failed")
        self.metrics = metrics
        self.skipped_tests: dict[str, Any] = {}  # column -> counter

    def _current_profile(self):
        return self.static_profile or self.profile.value()

    def process_element(self, piece: DriftSlice, ctx: KeyedProcessFunction.Context):
        end = piece.window_end(self.window_ms)
        windows: dict[int, Any] = self.windows.value() or {}
        profile = self._current_profile()
        if profile is None:  # gathering the reference: keep the raw columns
            raw = windows.setdefault(end, {c: [] for c in piece.columns})
            for column, values in piece.columns.items():
                raw.setdefault(column, []).extend(values)
        else:
            evaluator = self.evaluator_cls(self.monitor, profile)
            state = windows.get(end)
            if state is None or isinstance(state, dict):  # new, or raw from before the fit
                state = evaluator.update(evaluator.init(), state or {})
            windows[end] = evaluator.update(state, piece.columns)
        self.windows.update(windows)
        ctx.timer_service().register_event_time_timer(end - 1)
        return iter(())

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        windows: dict[int, Any] = self.windows.value() or {}
        closed = sorted(end for end in windows if end <= timestamp + 1)
        if not closed:
            return
        key = ctx.get_current_key()
        if self._current_profile() is None:
            self._maybe_fit_reference(windows, closed, key)
            return
        evaluator = self.evaluator_cls(self.monitor, self._current_profile())
        stats: dict[str, int] = {}
        for end in closed:
            state = windows.pop(end)
            if isinstance(state, dict):  # raw columns kept from before the reference
                state = evaluator.update(evaluator.init(), state)
            try:
                evaluation = evaluator.finish(
                    state, window_start_ms=end - self.window_ms, window_end_ms=end,
                    tenant_id=None if key == ALL_TENANTS else key,
                    detected_at_ms=int(time.time() * 1000))
            except DriftlineError as exc:
                log.warning("drift window %s..%s of %s not evaluated: %s",
                            end - self.window_ms, end, key, exc)
                self.failed.inc()
                stats["drift_windows_failed"] = stats.get("drift_windows_failed", 0) + 1
                continue
            self.tested.inc()
            stats["drift_windows_tested"] = stats.get("drift_windows_tested", 0) + 1
            for skip in evaluation.skipped:
                name = f"drift_tests_skipped:{skip.column}"
                stats[name] = stats.get(name, 0) + len(skip.statistics)
                if skip.column not in self.skipped_tests:
                    self.skipped_tests[skip.column] = self.metrics.add_group(
                        "column", skip.column).counter("drift_tests_skipped")
                self.skipped_tests[skip.column].inc(len(skip.statistics))
            for alert in evaluation.alerts:
                alert_key = alert["alert_id"].encode()
                if alert_key not in self.sent:
                    self.sent.add(alert_key)
                    yield Row(key=alert_key, value=self.serialize(alert))
        self.windows.update(windows)
        if stats:
            until_done(lambda: add_stats(self.redis, self.stats_key, stats), "drift counters")

    def _maybe_fit_reference(self, windows: dict[int, Any], closed: list[int], key: str) -> None:
        """Once the closed windows hold enough events, they become the reference (and
        are not tested against themselves)."""
        rows: dict[str, list[Any]] = {}
        for end in closed:
            for column, values in windows[end].items():
                rows.setdefault(column, []).extend(values)
        n = max((len(v) for v in rows.values()), default=0)
        if n < self.settings.drift.reference_events:
            return  # keep every window until there are enough
        profile = self.profile_cls.fit(rows, self.monitor, source=f"first-{n}",
                                       tolerate_unfit=True)
        for (column, statistic), reason in profile.unfit.items():
            log.warning("drift reference of %s cannot fit %s on %s: %s", key, statistic,
                        column, reason)
        self.profile.update(profile)
        for end in closed:
            del windows[end]
        self.windows.update(windows)
