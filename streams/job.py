"""The driftline Flink job: per-event work in the JVM, Python once per record and once per pane.

```
hr.chatbot.interactions --> decode/validate/redact (Python UDF, once per record),
   |                        with its subtask's per-partition watermark (event time)
   +--> rejected --> hr.chatbot.interactions.dlq                       (JVM Kafka sink)
   +--> accepted, on event time (watermark: the largest the decode step gave)
          +--> late (behind the watermark) --> counted per second
          +--> features: per view, pane partials per entity, gathered per shard (Flink SQL)
          |      --> FeatureTiles (Python, per shard and pane) --> Redis, Feast's format
          |                          +--> every row --> offline log, staged by view and day
          |                                             (JVM file sink, committed at checkpoints)
          +--> drift: per tenant, each slice's values (Flink SQL)
                 --> DriftMonitor (Python, per slice and window) --> hr.drift.alerts (JVM sink)
```

The windows' rows (late counts, panes, slices) are one table, split by kind in the JVM
(:func:`_route_batches`), so each Python branch gets only its own rows and builds its
typed records in its first Python step.

Event time is the payload's ``event_time``: producers leave the record timestamp at send
time, so the Kafka source cannot make the watermarks. The decode step keeps them per
input partition, as the source would (streams/event_time.py, docs/semantics.md).
Checkpoints are aligned (exactly once inside the job): the windows' state and the
source's offsets are taken at the same cut, so a restore replays each record once.

A backfill (streams/backfill.py) runs this same job on bounded input (:class:`Bounded`),
so its rows come from exactly this code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pyflink.common import Configuration, Types
from pyflink.datastream import CheckpointingMode, DataStream, StreamExecutionEnvironment
from pyflink.java_gateway import get_gateway
from pyflink.table import Schema, StatementSet, StreamTableEnvironment, Table
from pyflink.table.udf import udf

from drift.config import MonitorConfig, default_monitor
from features.feast_repo import project_name
from features.offline_log import PARTITION_COLUMNS, ROW_COLUMNS, STAGED_COLUMNS
from features.plans import ViewPlan, load_view_plans
from features.sql import BATCH_COLUMNS, batch_sql, panes_sql, ticks_sql
from schemas.validated import column_types
from streams import assets, checkpoints, stack
from streams.batches import DRIFT, LATE, PANE, TICK, RecordBuilder, drift_sql, late_sql
from streams.drift_operators import ALERT_ROW, DriftMonitor
from streams.feature_operators import LOG_ROW, FeatureTiles, shard_key
from streams.ingest_udf import REJECTED, VALID, DecodeInteractions, result_type
from streams.settings import Settings
from streams.stats import LateCounter

BRANCHES = ("features", "drift")
#: How far the JVM's event time (``rt``, windows, watermarks) is behind the payload's
#: ``event_time``: Flink's ``[start, end)`` windows of it are ``(start, end]`` of ours.
JVM_TIME_LAG_MS = 1


@dataclass(frozen=True)
class Bounded:
    """A run that ends (a backfill, streams/backfill.py): where each topic it reads stops,
    ``{topic: {partition: end offset}}``, and the event times it keeps: records outside
    ``(start_ms - warmup_ms, end_ms]`` are not validated, and only log rows at boundaries
    in ``[start_ms, end_ms]`` are written (earlier windows lack their warm-up)."""

    end_offsets: Mapping[str, Mapping[int, int]]
    start_ms: int
    end_ms: int
    warmup_ms: int


def create_environment(settings: Settings, extra_config: Mapping[str, str] | None = None,
                       branches: Iterable[str] = BRANCHES,
                       resume: bool = True) -> StreamExecutionEnvironment:
    """A local mini-cluster environment (or, under ``flink run``, the cluster's) with the
    Kafka connector and our Python; with ``resume``, restoring the newest checkpoint of
    this same job (streams/checkpoints.py), if there is one.

    Python workers run as their own processes, one per task slot, as on a cluster: the
    default for a local run (loopback) would run every Python operator of every subtask
    inside this interpreter, on one core whatever the parallelism.
    """
    os.environ["_python_worker_execution_mode"] = "process"  # noqa: SIM112 - PyFlink's name
    job = settings.job
    config = Configuration()
    # Big bundles, flushed at the latency budget: per-bundle overhead dominates small ones.
    # Arrow batches (the decode UDF's unit) a tenth of a bundle: a batch goes to Python
    # when full, so Python decodes while the bundle fills; with one batch per bundle all
    # the work would wait for the bundle's end, with the source stopped meanwhile. 10,000
    # rather than 1,000 took 8% off a drain's CPU (benchmarks/READING.md).
    config.set_string("python.fn-execution.bundle.time", str(job.python_bundle_ms))
    config.set_string("python.fn-execution.bundle.size", "100000")
    config.set_string("python.fn-execution.arrow.batch.size", "10000")
    config.set_string("execution.buffer-timeout.interval", f"{job.network_buffer_ms} ms")
    config.set_string("pipeline.auto-watermark-interval", f"{job.watermark_interval_ms} ms")
    config.set_string("python.state.cache-size", "10000")
    # Chained operators hand rows on without a defensive copy each: every JVM operator
    # here is the planner's (written for reuse) or a Python one, which serializes what it
    # gets. Without it, the decoded rows were copied once per query reading them
    # (benchmarks/READING.md).
    config.set_string("pipeline.object-reuse", "true")
    config.set_string("python.execution-mode", "process")
    # One Python process per operator, or one per slot shared through managed memory: a
    # shared process that died (OOM killer, crash) stays cached in its slot, and every
    # restart in that slot fails on it ("Failed to start remote bundle").
    config.set_string("python.fn-execution.memory.managed",
                      str(not job.python_worker_per_operator).lower())
    root = checkpoints.folder(settings, list(branches))
    config.set_string("execution.checkpointing.dir", root.as_uri())
    config.set_string("execution.checkpointing.num-retained", str(checkpoints.RETAINED))
    config.set_string("execution.checkpointing.externalized-checkpoint-retention",
                      "RETAIN_ON_CANCELLATION")
    latest = checkpoints.latest(root) if resume else None
    if latest is not None:
        config.set_string("execution.state-recovery.path", latest.as_uri())
        checkpoints.prune(root, keep=latest.parent.name)
        print(f"[driftline] resuming from checkpoint {latest}", file=sys.stderr, flush=True)
    # The mini-cluster's REST/UI and Prometheus ports (a cluster's come from its own
    # config: streams/cluster.py). The reporter ships in the wheel's plugins/.
    config.set_string("rest.port", str(job.rest_port))
    config.set_string("metrics.reporter.prom.factory.class",
                      "org.apache.flink.metrics.prometheus.PrometheusReporterFactory")
    config.set_string("metrics.reporter.prom.port", str(job.metrics_port))
    for key, value in (extra_config or {}).items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    jars = assets.kafka_connector_jars(settings.kafka_connector_jars)
    env.add_jars(*[p.resolve().as_uri() for p in jars])
    env.set_parallelism(job.parallelism)
    env.set_python_executable(sys.executable)
    env.enable_checkpointing(job.checkpoint_interval_ms, CheckpointingMode.EXACTLY_ONCE)
    return env


def _with(options: Mapping[str, str]) -> str:
    return ",\n".join(f"'{k}' = '{v}'" for k, v in options.items())


def _kafka(settings: Settings, topic: str, **options: str) -> str:
    return _with({"connector": "kafka", "topic": topic,
                  "properties.bootstrap.servers": settings.bootstrap_servers, **options})


def _scan(settings: Settings, group: str, topic: str,
          bounded: Bounded | None = None) -> dict[str, str]:
    options = {"properties.group.id": group, "scan.startup.mode": settings.job.startup_mode,
               "scan.topic-partition-discovery.interval": "10 s"}
    if bounded is not None:
        ends = bounded.end_offsets[topic]
        options |= {"scan.startup.mode": "earliest-offset",
                    "scan.bounded.mode": "specific-offsets",
                    "scan.bounded.specific-offsets": ";".join(
                        f"partition:{p},offset:{o}" for p, o in sorted(ends.items()))}
        del options["scan.topic-partition-discovery.interval"]
    return options


def decoded_view(t_env: StreamTableEnvironment, settings: Settings, partitions: int,
                 bounded: Bounded | None = None) -> None:
    """The raw topic and the view ``decoded`` of its records through the decode UDF (one
    ROW ``r`` per record: ``status``, the validated columns, the dead letter)."""
    topic = settings.topics.input
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE interactions_raw (
            k BYTES, v BYTES, `partition` INT METADATA VIRTUAL, `offset` BIGINT METADATA VIRTUAL
        ) WITH ({_kafka(settings, topic,
                        **_scan(settings, settings.job.consumer_group, topic, bounded),
                        **{"key.format": "raw", "key.fields": "k", "value.format": "raw",
                           "value.fields-include": "EXCEPT_KEY"})})""")
    decode = udf(DecodeInteractions(settings, partitions), result_type=result_type(),
                 func_type="pandas")
    t_env.create_temporary_function("decode_interaction", decode)
    t_env.create_temporary_view("decoded", t_env.sql_query(
        "SELECT decode_interaction(k, v, `partition`, `offset`) AS r FROM interactions_raw"))


def _validated(t_env: StreamTableEnvironment, settings: Settings, partitions: int,
               statements, bounded: Bounded | None) -> None:
    """Raw topic -> decode UDF -> dead letters (a Kafka sink), and the view
    ``validated_in``: the accepted records, on event time.

    The decoded rows go to a DataStream and back, once (:func:`through_datastream`), so
    that the dead letters and the windows share one decode, and so that the table coming
    back can carry a watermark: the largest of the decode step's per-record watermarks,
    which follow each input partition (streams/event_time.py). (Each query reading it
    plans an assigner of its own, all giving the same watermark; a second trip through a
    DataStream to share one measured no cheaper, when the trips still converted every
    row: benchmarks/READING.md.) A rejected record has no event time; it is given 0,
    which moves no watermark, and never reaches a window.

    Inside the JVM, event time and the watermark run 1 ms behind the payload's
    (``JVM_TIME_LAG_MS``): Flink's windows are ``[start, end)``, and ours must be
    right-closed, ``(start, end]`` of ``event_time``, as Feast's are. Shifting the time is
    exact; a 1 ms window offset (the obvious alternative) is not: Flink's window
    aggregations decide when to flush their buffers as if windows had no offset, and a
    watermark of exactly a boundary minus 1 ms then makes them skip a flush and drop the
    next pane's records as late (docs/semantics.md, "Feature windows").
    """
    topics = settings.topics
    if settings.job.idle_source_timeout_ms:  # a subtask whose partitions are all silent
        t_env.get_config().set("table.exec.source.idle-timeout",
                               f"{settings.job.idle_source_timeout_ms} ms")
    decoded_view(t_env, settings, partitions, bounded)
    columns = ", ".join(f"r.`{c}` AS `{c}`" for c in column_types())
    rows = t_env.sql_query(f"""
        SELECT r.status AS status, r.dl_key AS dl_key, r.dl_value AS dl_value,
            r.dl_headers AS dl_headers, {columns},
            TO_TIMESTAMP_LTZ(COALESCE(r.event_time, 0) - {JVM_TIME_LAG_MS}, 3) AS rt,
            TO_TIMESTAMP_LTZ(r.watermark_ms - {JVM_TIME_LAG_MS}, 3) AS wm
        FROM decoded""")
    schema = Schema.new_builder().column_by_expression("pt", "PROCTIME()") \
        .watermark("rt", "wm").build()
    t_env.create_temporary_view("checked", through_datastream(t_env, rows, schema))
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE dead_letters (
            k BYTES, v BYTES, headers MAP<STRING, BYTES> METADATA
        ) WITH ({_kafka(settings, topics.dead_letter, **{
            "key.format": "raw", "key.fields": "k", "value.format": "raw",
            "value.fields-include": "EXCEPT_KEY", "sink.delivery-guarantee": "at-least-once"})})""")
    statements.add_insert_sql(f"""INSERT INTO dead_letters SELECT dl_key, dl_value,
        dl_headers FROM checked WHERE status = '{REJECTED}'""")
    in_range = "" if bounded is None else (
        f" AND event_time > {bounded.start_ms - bounded.warmup_ms}"
        f" AND event_time <= {bounded.end_ms}")
    t_env.create_temporary_view("validated_in", t_env.sql_query(
        f"SELECT * FROM checked WHERE status = '{VALID}'{in_range}"))


def _windows_source(t_env: StreamTableEnvironment) -> None:
    """``events`` on time, ``late_events`` behind the watermark (as read right after
    the decode step, before any window)."""
    t_env.create_temporary_view("events", t_env.sql_query(
        "SELECT * FROM validated_in WHERE CURRENT_WATERMARK(rt) IS NULL "
        "OR rt > CURRENT_WATERMARK(rt)"))
    t_env.create_temporary_view("late_events", t_env.sql_query(
        "SELECT * FROM validated_in WHERE rt <= CURRENT_WATERMARK(rt)"))


@dataclass
class JvmStages:
    """What :func:`jvm_stages` planned: the table environment, the statements to run, and
    the views (``plans``) and monitor whose rows the view ``batches`` carries."""

    t_env: StreamTableEnvironment
    statements: StatementSet
    plans: list[ViewPlan]
    monitor: MonitorConfig | None


def build_pipeline(env: StreamExecutionEnvironment, settings: Settings,
                   branches: Iterable[str] = BRANCHES, bounded: Bounded | None = None) -> None:
    """The job, on the input topic as it streams, or ``bounded`` (a backfill)."""
    # Workers may not share our working directory (a cluster's TaskManagers).
    settings = settings.model_copy(update={"state_dir": settings.state_dir.resolve(),
                                           "feature_repo": settings.feature_repo.resolve()})
    stages = jvm_stages(env, settings, branches, bounded)
    _python_branches(stages, settings, bounded)
    stages.statements.attach_as_datastream()


def jvm_stages(env: StreamExecutionEnvironment, settings: Settings,
               branches: Iterable[str] = BRANCHES, bounded: Bounded | None = None) -> JvmStages:
    """Everything before the Python branches: the decode step, dead letters, event time
    and the SQL windows, whose rows (late counts, panes, slices) are the view ``batches``.
    (benchmarks/drain.py measures this part alone.)"""
    branches = set(branches)
    partitions = stack.ensure_topics(settings)[settings.topics.input]
    t_env = StreamTableEnvironment.create(env)
    t_env.get_config().set("table.local-time-zone", "UTC")  # windows align to UTC
    statements = t_env.create_statement_set()
    _validated(t_env, settings, partitions, statements, bounded)
    _windows_source(t_env)
    plans = load_view_plans(settings.feature_repo) if "features" in branches else []
    monitor = default_monitor(alpha=settings.drift.alpha) if "drift" in branches else None
    parts = [late_sql("late_events")]
    for plan in plans:
        t_env.create_temporary_view(f"panes_{plan.name}", t_env.sql_query(
            panes_sql(plan, "events", time_col="event_time", seq_col="source_offset")))
        parts.append(batch_sql(plan, f"panes_{plan.name}", settings.job.shards))
        parts.append(ticks_sql(plan, "events", settings.job.shards))
    if monitor is not None:
        parts.append(drift_sql(monitor, "events", settings.drift.window_ms,
                               settings.drift.per_tenant))
    _route_batches(t_env, "\nUNION ALL\n".join(f"({p})" for p in parts))
    return JvmStages(t_env, statements, plans, monitor)


def _python_branches(stages: JvmStages, settings: Settings, bounded: Bounded | None) -> None:
    """The view ``batches`` -> late counts, features (Redis, offline log), drift alerts."""
    t_env, plans, monitor = stages.t_env, stages.plans, stages.monitor
    build = RecordBuilder(plans, monitor, settings.drift.window_ms)

    def records(*kinds: str) -> DataStream:
        """The batch rows of ``kinds`` (split in the JVM), as typed records. The builder
        chains into the branch's first Python step: one process per branch, and each
        record crosses to the branch's Python once."""
        listed = ", ".join(f"'{k}'" for k in kinds)
        table = t_env.sql_query(f"SELECT {', '.join(f'`{c}`' for c, _ in BATCH_COLUMNS)} "
                                f"FROM batches WHERE kind IN ({listed})")
        return t_env.to_data_stream(table).map(build, Types.PICKLED_BYTE_ARRAY()) \
            .name(f"{kinds[0]}-records").uid(f"{kinds[0]}-records")

    records(LATE).map(LateCounter(settings), Types.INT()).name("late-count").uid("late-count")
    if plans:
        tiles = FeatureTiles(plans, settings, project_name(settings.feature_repo),
                             input_ends_at=None if bounded is None else bounded.end_ms)
        log_rows = records(PANE, TICK) \
            .key_by(lambda b: shard_key(b.view, b.shard), Types.STRING()) \
            .process(tiles, LOG_ROW).name("feature-tiles").uid("feature-tiles")
        if settings.offline.enabled:
            _offline_log(t_env, settings, stages.statements, log_rows, bounded)
    if monitor is not None:
        alerts = records(DRIFT).key_by(lambda s: s.key, Types.STRING()) \
            .process(DriftMonitor(settings), ALERT_ROW) \
            .name("drift-monitor").uid("drift-monitor")
        t_env.execute_sql(f"""
            CREATE TEMPORARY TABLE alerts_out (k BYTES, v BYTES) WITH ({_kafka(
                settings, settings.topics.alerts, **{
                    "key.format": "raw", "key.fields": "k", "value.format": "raw",
                    "value.fields-include": "EXCEPT_KEY",
                    "sink.delivery-guarantee": "at-least-once"})})""")
        t_env.create_temporary_view("alerts", t_env.from_data_stream(alerts))
        stages.statements.add_insert_sql(
            "INSERT INTO alerts_out SELECT key, `value` FROM alerts")


def through_datastream(t_env: StreamTableEnvironment, table: Table, schema: Schema) -> Table:
    """``table`` through a DataStream and back as a table of ``schema``: planned once, so
    every query reading the result shares it, and able to carry a watermark.

    The rows cross as Flink's internal ``RowData``, as the planner holds them: PyFlink's
    ``to_data_stream`` and ``from_data_stream`` convert every field of every row to
    Java objects (``Row``, ``String``, lists) and back, which a stream that goes on in
    the JVM never needs (benchmarks/READING.md). PyFlink's wrappers take no target
    type, so this goes through the Java objects they wrap.
    """
    jvm = get_gateway().jvm
    internal = table._j_table.getResolvedSchema().toPhysicalRowDataType() \
        .bridgedTo(jvm.java.lang.Class.forName("org.apache.flink.table.data.RowData"))
    j_tenv = t_env._j_tenv
    return Table(j_tenv.fromDataStream(j_tenv.toDataStream(table._j_table, internal),
                                       schema._j_schema), t_env)


def _route_batches(t_env: StreamTableEnvironment, query: str) -> None:
    """The view ``batches``: every branch's rows, from one translation of ``query``.

    Each ``to_data_stream`` is planned on its own, so three branches converted from three
    queries would decode every record three times. Converted once and brought back
    as a table, the rows (one per shard and pane, or per slice: few) are split by kind in
    the JVM, and each branch's Python step sees only its own. The event-time watermark
    crosses with them (``SOURCE_WATERMARK``): the tiles' and the monitor's timers need it.
    A watermark needs a time column to hang on; ``window_end`` serves, and is never used
    as event time (a late count's is processing time).
    """
    schema = Schema.new_builder() \
        .column_by_expression("rowtime", "window_end") \
        .watermark("rowtime", "SOURCE_WATERMARK()").build()
    t_env.create_temporary_view("batches", through_datastream(t_env, t_env.sql_query(query),
                                                              schema))


def _offline_log(t_env: StreamTableEnvironment, settings: Settings, statements,
                 log_rows: DataStream, bounded: Bounded | None) -> None:
    """Feature rows -> JSON lines by view and day, visible once a checkpoint commits them
    (features/offline_log.py compacts them to Parquet). Files roll at the checkpoint
    interval: a row-format file is otherwise kept open, unseen, for up to 30 minutes."""
    columns = ", ".join(f"`{name}` {kind}" for name, kind in STAGED_COLUMNS)
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE offline_log ({columns})
        PARTITIONED BY ({", ".join(f"`{c}`" for c in PARTITION_COLUMNS)})
        WITH ({_with({"connector": "filesystem", "format": "json",
                      "path": settings.offline_staging_dir.resolve().as_uri(),
                      "sink.rolling-policy.rollover-interval":
                          f"{settings.job.checkpoint_interval_ms} ms",
                      "sink.rolling-policy.check-interval": "1 s"})})""")
    t_env.create_temporary_view("log_rows", t_env.from_data_stream(log_rows))
    names = ", ".join(f"`{name}`" for name, _ in ROW_COLUMNS)
    in_range = "" if bounded is None else \
        f" WHERE ts_ms BETWEEN {bounded.start_ms} AND {bounded.end_ms}"
    statements.add_insert_sql(f"""INSERT INTO offline_log SELECT {names},
        DATE_FORMAT(TO_TIMESTAMP_LTZ(ts_ms, 3), 'yyyy-MM-dd') FROM log_rows{in_range}""")

