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
from schemas.models import DriftAlert
from streams import stack
from streams.producer import produce_events, simulated_events
from streams.runner import JobHandle, describe
from streams.settings import Settings
from streams.simulator import DriftInjection, tenant_ids
from streams.views import feature_table, format_alert, read_alerts

HOURS = 8.0
#: The traffic is a backfill ending at a fixed moment, not "now": its load
#: follows each tenant's local hour and weekday, so a now-relative stream would be
#: different data every hour, and at night the drifting tenant's windows are too small
#: to test. Event time comes from the payload, so a replay of the past is served as is.
END_MS = 1_796_172_600_000  # 2026-12-02 00:50 UTC
#: The injected drift: one tenant's response latency moves up 0.75 standard deviations.
DRIFT_COLUMN, DRIFT_SD, DRIFT_FROM, DRIFT_TENANT = "response_latency_ms", 0.75, 0.6, 0
#: Drift is monitored per tenant (their channel mixes differ, and their shares of the
#: traffic follow their time zones, so an all-tenant mix moves every hour).
DEMO_DRIFT = {"per_tenant": True, "window_ms": 30 * 60_000, "reference_events": 2_000}
STEPS = 7


def _step(n: int, text: str) -> None:
    print(f"\n[demo {n}/{STEPS}] {text}", flush=True)


def _demo_settings(settings: Settings) -> Settings:
    run = f"demo-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}"
    topics = settings.topics.model_copy(update={
        "input": f"{run}.{settings.topics.input}",
        "dead_letter": f"{run}.{settings.topics.dead_letter}",
        "alerts": f"{run}.{settings.topics.alerts}"})
    job = settings.job.model_copy(update={"consumer_group": run})
    drift = settings.drift.model_copy(update=DEMO_DRIFT)
    return settings.model_copy(update={"topics": topics, "job": job, "drift": drift})


def run_demo(settings: Settings, events: int) -> int:
    settings = _demo_settings(settings)
    started = time.monotonic()
    _step(1, "local stack: broker, Redis, topics")
    already_up = stack.broker_healthy(settings) and stack.redis_healthy(settings)
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
        if not already_up:  # leave a stack the user started running
            for line in stack.down(settings):
                print("  " + line, flush=True)


def _traffic_and_results(settings: Settings, job: JobHandle, count: int, started: float) -> int:
    tenant = tenant_ids(4)[DRIFT_TENANT]
    drift = DriftInjection(column=DRIFT_COLUMN, kind="mean_shift", magnitude=DRIFT_SD,
                           start_count=int(DRIFT_FROM * count), tenant_id=tenant)
    _step(4, f"producing {count:,} simulated interactions (Avro and JSON) over {HOURS:g} h of "
             f"mean load; from event {drift.start_count:,} on, tenant {tenant}'s "
             f"{drift.column} drifts (mean +{DRIFT_SD:g} standard deviations)")
    events = simulated_events(settings, count, HOURS, seed=7, drift=drift, end_ms=END_MS)
    print(f"  (event time {_hhmm(events[0])} to {_hhmm(events[-1])} UTC; the drift starts "
          f"at {_hhmm(events[drift.start_count or 0])})", flush=True)
    produce_events(settings, events, "mixed", total=count)

    frame = pd.DataFrame(events)
    # The job can vouch for event time up to the watermark: newest event minus the bound.
    target = int(frame.event_time.max()) - settings.job.max_out_of_orderness_ms \
        - settings.drift.window_ms
    _step(5, "waiting for the jobs to catch up (event-time watermark per feature view)")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        print(f"  {describe(job.progress(), job.stats())}", flush=True)
        if job.caught_up(target):
            break
        if job.status() in ("FAILED", "CANCELED", "FINISHED"):
            print(f"[demo] the Flink job ended: {job.status()}", flush=True)
            return 1
        time.sleep(5)

    _step(6, "results")
    employees = _interesting_employees(frame)
    rows = [{"tenant_id": t, "employee_id": e} for t, e in employees] + [
        {"tenant_id": t} for t in sorted(frame.tenant_id.unique())]
    for line in feature_table(settings, rows):
        print("  " + line, flush=True)
    print("  (" + "; ".join(f"{e}: {why}" for (_, e), why in employees.items()) + ")",
          flush=True)
    alerts = list(read_alerts(settings, idle_timeout_s=3.0))
    print(f"\n  {len(alerts)} drift alert(s) on {settings.topics.alerts}:", flush=True)
    for line in _alert_summary(alerts):
        print("  " + line, flush=True)
    named = any(a.feature == drift.column and a.tenant_id == tenant for a in alerts)
    _training_set(settings, frame, next(iter(employees)))
    print(f"\n[demo] done in {time.monotonic() - started:.0f} s; the injected drift on "
          f"{tenant} / {drift.column} was {'detected' if named else 'NOT detected'}.", flush=True)
    tenant_of, busy = next(iter(employees))
    print(f"[demo] features stay in Redis: "
          f"`driftline lookup --tenant {tenant_of} --employee {busy}`", flush=True)
    return 0 if named else 1


def _training_set(settings: Settings, frame: pd.DataFrame, employee: tuple[str, str]) -> None:
    """A point-in-time training set from the offline log: one employee every 2 hours."""
    from streams.offline import log_committed, write_training_set

    _step(7, f"a training set from the offline log: {employee[1]} every 2 h, point-in-time "
             "(Feast's get_historical_features)")
    deadline = time.monotonic() + 60
    while not log_committed(settings) and time.monotonic() < deadline:
        time.sleep(1)  # the log's rows are visible once Flink's next checkpoint commits them
    start, end = int(frame.event_time.min()), int(frame.event_time.max())
    instants = range(start // 3_600_000 * 3_600_000 + 7_200_000, end, 7_200_000)
    rows = pd.DataFrame({"tenant_id": employee[0], "employee_id": employee[1],
                         "event_timestamp": pd.to_datetime(list(instants), unit="ms",
                                                           utc=True)})
    entities = settings.state_dir / "demo-entities.csv"
    out = settings.state_dir / "demo-training-set.parquet"
    rows.to_csv(entities, index=False)
    features = ["employee_activity:interactions_1h", "employee_activity:interactions_24h",
                "employee_activity:last_intent", "tenant_load:interactions_5m"]
    write_training_set(settings, entities, features, out, say=lambda line: print(f"  {line}"))
    table = pd.read_parquet(out).drop(columns=["tenant_id", "employee_id"])
    print("  " + table.to_string(index=False).replace("\n", "\n  "), flush=True)


def _hhmm(event: dict) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(event["event_time"] / 1000))


def _interesting_employees(frame: pd.DataFrame) -> dict[tuple[str, str], str]:
    """A busy, a typical and a quiet employee (whose 1 h count has decayed to 0), each
    as (tenant, employee)."""
    counts = frame.groupby(["tenant_id", "employee_id"]).size().sort_values(
        ascending=False, kind="stable")
    last_seen = frame.groupby(["tenant_id", "employee_id"]).event_time.max()
    end = frame.event_time.max()
    quiet = last_seen[(last_seen < end - 2 * 3_600_000) & (counts[last_seen.index] >= 5)]
    picks = {counts.index[20]: "busy", counts.index[len(counts) // 3]: "typical"}
    if len(quiet):
        gap_h = (end - quiet.iloc[0]) / 3_600_000
        picks[quiet.index[0]] = f"quiet for the last {gap_h:.1f} h"
    return picks


def _alert_summary(alerts: list[DriftAlert]) -> list[str]:
    """One line per (tenant, column, statistic), then the first alert of each in full."""
    groups: dict[tuple, list[DriftAlert]] = {}
    for a in sorted(alerts, key=lambda a: a.window_start):
        groups.setdefault((a.tenant_id, a.feature, a.statistic), []).append(a)
    lines = [f"{n:>3} x {stat:4} on {feature} ({tenant or 'all tenants'})"
             for (tenant, feature, stat), n in
             sorted(((k, len(v)) for k, v in groups.items()), key=lambda kv: -kv[1])]
    firsts = {(a[0].tenant_id, a[0].feature): a[0] for a in groups.values()}
    lines.append("first alert of each:")
    lines += [format_alert(a).replace("\n", "\n  ") for a in firsts.values()]
    return lines
