"""``driftline demo`` (``make demo``): the whole product, end to end, in a few minutes.

Starts the local stack, applies the Feast repo, runs the feature and drift jobs on a
Flink mini-cluster, produces hours of simulated HR traffic (event time compressed into
wall time) with one injected drift, then shows features read through the Feast SDK and
the alerts read off the alert topic, and shuts down what it started.

Each run writes to its own topics (``demo-<run>.*``), so an earlier run's records on a
long-lived broker never mix into this one.
"""

from __future__ import annotations

import time
import uuid

import pandas as pd

from features.feast_repo import apply
from streams import stack
from streams.producer import produce_events, simulated_events
from streams.runner import JobHandle, describe
from streams.settings import Settings
from streams.simulator import DriftInjection
from streams.views import feature_table, format_alert, read_alerts

HOURS = 8.0
#: The injected drift: response latency moves up one standard deviation from here on.
DRIFT_COLUMN, DRIFT_SD, DRIFT_FROM = "response_latency_ms", 1.0, 0.6
STEPS = 6


def _step(n: int, text: str) -> None:
    print(f"\n[demo {n}/{STEPS}] {text}", flush=True)


def _demo_settings(settings: Settings) -> Settings:
    run = f"demo-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}"
    topics = settings.topics.model_copy(update={
        "input": f"{run}.{settings.topics.input}",
        "dead_letter": f"{run}.{settings.topics.dead_letter}",
        "alerts": f"{run}.{settings.topics.alerts}"})
    job = settings.job.model_copy(update={"consumer_group": run})
    return settings.model_copy(update={"topics": topics, "job": job})


def run_demo(settings: Settings, events: int) -> int:
    settings = _demo_settings(settings)
    started = time.monotonic()
    _step(1, "local stack: broker, Redis, topics")
    for line in stack.up(settings):
        print("  " + line, flush=True)
    try:
        _step(2, "feast apply (feature_repo/ -> Feast registry)")
        print("  " + apply(settings.feature_repo, settings.redis_url).replace("\n", "\n  "))

        _step(3, "starting the feature and drift jobs on a Flink mini-cluster")
        job = JobHandle(settings, ["features", "drift"])
        try:
            return _traffic_and_results(settings, job, events, started)
        finally:
            job.cancel()
            print("[demo] Flink job cancelled", flush=True)
    finally:
        for line in stack.down(settings):
            print("  " + line, flush=True)


def _traffic_and_results(settings: Settings, job: JobHandle, count: int, started: float) -> int:
    drift = DriftInjection(column=DRIFT_COLUMN, kind="mean_shift", magnitude=DRIFT_SD,
                           start_count=int(DRIFT_FROM * count))
    _step(4, f"producing {count:,} simulated interactions over {HOURS:g} h of event time; "
             f"from event {drift.start_count:,} on, {drift.column} drifts "
             f"(mean +{DRIFT_SD:g} standard deviation)")
    events = simulated_events(settings, count, HOURS, seed=7, drift=drift)
    produce_events(settings, events, "mixed", total=count)

    frame = pd.DataFrame(events)
    # The job can vouch for event time up to the watermark: newest event minus the bound.
    target = int(frame.event_time.max()) - settings.job.max_out_of_orderness_ms \
        - settings.drift.window_ms
    _step(5, "waiting for the jobs to catch up (event-time watermark per feature view)")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        progress = job.progress()
        print(f"  {describe(progress, job.stats())}", flush=True)
        views = [int(v) for k, v in progress.items() if k != "updated_at"]
        if views and min(views) >= target:
            break
        if job.status() in ("FAILED", "CANCELED", "FINISHED"):
            print(f"[demo] the Flink job ended: {job.status()}", flush=True)
            return 1
        time.sleep(5)

    _step(6, "results")
    busiest = frame.employee_id.value_counts().index[:3].tolist()
    tenants = sorted(frame.tenant_id.unique())
    for line in feature_table(settings, busiest, tenants):
        print("  " + line, flush=True)
    alerts = list(read_alerts(settings, idle_timeout_s=3.0))
    print(f"\n  {len(alerts)} drift alert(s) on {settings.topics.alerts}:", flush=True)
    for alert in alerts:
        print("  " + format_alert(alert).replace("\n", "\n  "), flush=True)
    named = any(a.feature == drift.column for a in alerts)
    print(f"\n[demo] done in {time.monotonic() - started:.0f} s; the injected drift on "
          f"{drift.column} was {'detected' if named else 'NOT detected'}.", flush=True)
    print("[demo] look again any time: `driftline lookup --employee ID`, `driftline alerts`",
          flush=True)
    return 0 if named else 1
