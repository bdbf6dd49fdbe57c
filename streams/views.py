"""What a person looks at: features read through the Feast SDK, alerts off the alert topic.

Both read the way any user's code would (``FeatureStore.get_online_features``; a plain
Kafka consumer with the registry), so what ``driftline lookup`` and ``driftline alerts``
print is what a model service or a retraining consumer would see.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence

from confluent_kafka import Consumer, TopicPartition

from features.feast_repo import OnlineReader
from features.plans import load_view_plans
from schemas.decode import decode_alert
from schemas.errors import RecordRejected
from schemas.models import DriftAlert
from streams.ingest import schema_registry
from streams.settings import Settings


def feature_table(settings: Settings, entity_rows: Sequence[Mapping[str, str]]) -> list[str]:
    """Lines of a small table per feature view, one row per entity row whose keys are the
    view's join keys: ``{"tenant_id": t}`` for a tenant, ``{"tenant_id": t,
    "employee_id": e}`` for an employee (employees are per tenant)."""
    reader = OnlineReader(settings.feature_repo, settings.redis_url)
    lines: list[str] = []
    for plan in load_view_plans(settings.feature_repo):
        rows = [r for r in entity_rows if set(r) == set(plan.join_keys)]
        if not rows:
            continue
        found = reader.read(plan.name, rows)
        names = [f.name for f in plan.features]
        keys = sorted(plan.join_keys, key=lambda k: k != "tenant_id")  # tenant first
        cells = [[*keys, *names]] + [
            [*(row[k] for k in keys), *(_cell(got.get(n)) for n in names)]
            for row, got in zip(rows, found, strict=True)]
        widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
        lines.append(f"{plan.name} (read through the Feast SDK):")
        lines += ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True))
                  for r in cells]
    return lines


def print_features(settings: Settings, employees: Sequence[str], tenants: Sequence[str]) -> None:
    """Each tenant's own features, and those of each employee given in each of them."""
    rows = [{"tenant_id": t} for t in tenants] + [
        {"tenant_id": t, "employee_id": e} for t in tenants for e in employees]
    for line in feature_table(settings, rows):
        print(line, flush=True)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_alert(alert: DriftAlert) -> str:
    """One readable line plus what moved."""
    stamp = time.strftime("%m-%d %H:%M", time.gmtime(alert.window_start / 1000))
    until = time.strftime("%H:%M", time.gmtime(alert.window_end / 1000))
    scope = f"tenant {alert.tenant_id}" if alert.tenant_id else "all tenants"
    p = f", p={alert.p_value:.2g}" if alert.p_value is not None else ""
    details = json.loads(alert.details) if alert.details else {}
    moved = ", ".join(f"{k}={_cell(v)}" for k, v in details.items()
                      if not isinstance(v, (dict, list)))
    return (f"{alert.severity.upper():8} {alert.feature}: {alert.statistic}={alert.value:.4g} "
            f"> {alert.threshold:.4g}{p} | {scope}, window {stamp}-{until} UTC, "
            f"n={alert.n_window} vs reference {alert.reference_id} (n={alert.n_reference})"
            + (f"\n         {moved}" if moved else ""))


def read_alerts(settings: Settings, follow: bool = False,
                idle_timeout_s: float | None = None) -> Iterator[DriftAlert]:
    """Alerts from the start of the alert topic; with ``follow``, keep waiting for more.

    Partitions are assigned directly (no consumer group), so nothing waits for a group
    join and no offsets are committed on a topic other consumers own.
    """
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": f"driftline-viewer-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    topic = settings.topics.alerts
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    registry = schema_registry(settings)
    idle_limit = idle_timeout_s if idle_timeout_s is not None else (None if follow else 3.0)
    last = time.monotonic()
    try:
        while idle_limit is None or time.monotonic() - last < idle_limit:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            last = time.monotonic()
            try:
                yield decode_alert(msg.value() or b"", registry)
            except RecordRejected as exc:
                print(f"skipping a record that is not a DriftAlert at offset {msg.offset()}: "
                      f"{exc}", flush=True)
    finally:
        consumer.close()


def follow_alerts(settings: Settings, follow: bool, idle_timeout_s: float | None) -> int:
    """``driftline alerts``: print alerts as they arrive; returns how many were shown."""
    shown = 0
    for alert in read_alerts(settings, follow, idle_timeout_s):
        print(format_alert(alert), flush=True)
        shown += 1
    if not shown:
        print(f"no alerts on {settings.topics.alerts}", flush=True)
    return shown


def job_lines(settings: Settings, redis_up: bool) -> list[str]:
    """The jobs Flink runs at ``job.rest_port``, and each feature view's event-time lag."""
    from streams import flink_rest

    found = flink_rest.jobs(settings)
    if found is None:
        return [f"-    job     no Flink at {flink_rest.rest_url(settings)} "
                "(`driftline run` or `driftline cluster up` starts one)"]
    lines = []
    for job in found:
        mark = "ok  " if job.state == "RUNNING" and not job.restarts else "WARN"
        restarts = "?" if job.restarts is None else str(job.restarts)
        if job.state in ("FAILED", "RESTARTING"):
            mark = "DOWN"
        rate = job.records_in / job.uptime_s if job.uptime_s > 0 else 0.0
        lines.append(f"{mark} job     {job.name} {job.state}, up {job.uptime_s:,.0f} s, "
                     f"{restarts} restart(s), {job.records_in:,} records in "
                     f"({rate:,.0f}/s) [{job.job_id}]")
        if job.last_failure:
            lines.append(f"         last failure: {job.last_failure}")
        try:
            dropped = flink_rest.window_drops(settings, job.job_id) \
                if job.state == "RUNNING" else 0
        except (OSError, ValueError):  # restarting, or gone since the listing
            dropped = 0
        if dropped:
            lines.append(f"WARN     {dropped:,} records dropped inside Flink's windows after the "
                         "late check: data lost (docs/semantics.md, \"Feature windows\")")
    if redis_up and found:
        from streams.runner import progress_of

        now = time.time() * 1000
        views = [p.name for p in load_view_plans(settings.feature_repo)]
        for view, through in sorted(progress_of(settings, views).items()):
            if view != "updated_at":
                lines.append(f"         {view}: event time {now - int(through):,.0f} ms "
                             "behind the wall clock")
    return lines
