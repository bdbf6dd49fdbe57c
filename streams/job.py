"""The driftline Flink job: one source, one decode stage, two branches.

``hr.chatbot.interactions`` -> decode/validate/redact (rejects -> DLQ)
  -> event-time watermarks
  -> feature branch: one keyed windowed operator per Feast view -> Redis (Feast format)
  -> drift branch: tumbling windows -> drift tests vs the reference -> ``hr.drift.alerts``

Both branches share the decode stage, so a record is parsed once. ``branches``
selects one of them (to run the feature job and the drift job separately).
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Iterable, Mapping

from pyflink.common import Configuration, Types
from pyflink.datastream import CheckpointingMode, DataStream, StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment

from features.definitions import load_view_plans
from streams import assets
from streams.drift_operators import DriftMonitor, DriftSink, drift_key, drift_row
from streams.feature_operators import RedisFeatureSink, WindowedFeatures
from streams.ingest_operators import DEAD_LETTER_TAG, DeadLetterSink, DecodeAndValidate
from streams.settings import Settings

BRANCHES = ("features", "drift")


def create_environment(settings: Settings,
                       extra_config: Mapping[str, str] | None = None) -> StreamExecutionEnvironment:
    """A local mini-cluster environment with the Kafka connector and our Python.

    ``extra_config``: further Flink options (the benchmark sets a REST port and a fast
    metric refresh), applied last.
    """
    config = Configuration()
    config.set_string("python.fn-execution.bundle.time", "50")
    config.set_string("python.fn-execution.bundle.size", "5000")
    config.set_string("python.state.cache-size", "200000")
    config.set_string("python.execution-mode", "process")
    # Python operators chain into one worker (the default). With chaining, a side output
    # nobody consumes leaks (tag, value) pairs into the main output in PyFlink 2.0.2, so
    # build_pipeline always attaches the dead-letter sink.
    config.set_string("execution.checkpointing.dir",
                      (settings.state_dir / "checkpoints").resolve().as_uri())
    for key, value in (extra_config or {}).items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    jars = assets.kafka_connector_jars(settings.kafka_connector_jars)
    env.add_jars(*[p.resolve().as_uri() for p in jars])
    env.set_parallelism(settings.job.parallelism)
    env.set_python_executable(sys.executable)
    env.enable_checkpointing(settings.job.checkpoint_interval_ms, CheckpointingMode.AT_LEAST_ONCE)
    return env


def kafka_source(env: StreamExecutionEnvironment, settings: Settings) -> DataStream:
    """Raw (key, value, partition, offset) rows with event-time watermarks.

    Bytes stay bytes so Avro and JSON both pass. Watermarks are made per partition
    inside the Kafka source from the record timestamp, which producers set to the
    event time (ours do; see docs/semantics.md): a watermark assigned after the source
    would see the partitions interleaved and declare most of a backlog late.
    """
    t_env = StreamTableEnvironment.create(env)
    job = settings.job
    if job.idle_source_timeout_ms:
        t_env.get_config().set("table.exec.source.idle-timeout",
                               f"{job.idle_source_timeout_ms} ms")
    options = {
        "connector": "kafka",
        "topic": settings.topics.input,
        "properties.bootstrap.servers": settings.bootstrap_servers,
        "properties.group.id": job.consumer_group,
        "scan.startup.mode": job.startup_mode,
        "scan.topic-partition-discovery.interval": "10 s",
        "key.format": "raw",
        "key.fields": "k",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
    }
    with_clause = ",\n".join(f"'{k}' = '{v}'" for k, v in options.items())
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE interactions_raw (
            k BYTES, v BYTES,
            `partition` INT METADATA VIRTUAL,
            `offset` BIGINT METADATA VIRTUAL,
            produced_at TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
            WATERMARK FOR produced_at AS
                produced_at - INTERVAL '{job.max_out_of_orderness_ms / 1000:.3f}' SECOND
        ) WITH ({with_clause})""")
    raw = t_env.sql_query("SELECT k, v, `partition`, `offset` FROM interactions_raw")
    return t_env.to_data_stream(raw)


def build_pipeline(env: StreamExecutionEnvironment, settings: Settings,
                   branches: Iterable[str] = BRANCHES) -> None:
    branches = set(branches)
    decoded = kafka_source(env, settings).process(
        DecodeAndValidate(settings), Types.PICKLED_BYTE_ARRAY()).name("decode-validate-redact")
    decoded.get_side_output(DEAD_LETTER_TAG).process(DeadLetterSink(settings)) \
        .name("dead-letter-sink")
    events = decoded

    if "features" in branches:
        plans = load_view_plans(settings.feature_repo)
        per_view = [
            events.key_by(lambda r, k=plan.join_key: r[k], Types.STRING()).process(
                WindowedFeatures(plan, settings.job.allowed_lateness_ms),
                Types.PICKLED_BYTE_ARRAY()).name(f"features-{plan.name}")
            for plan in plans]
        emissions = per_view[0].union(*per_view[1:]) if len(per_view) > 1 else per_view[0]
        # Many small buckets, so Flink's key-group hashing spreads them over the sink's
        # subtasks (two keys 0 and 1 can land on one). Progress goes to bucket 0: exact
        # at parallelism 1, only indicative above it.
        buckets = settings.job.parallelism * 32
        emissions.key_by(lambda r: zlib.crc32(r[2].encode()) % buckets if r[0] == "row" else 0,
                         Types.INT()).process(
            RedisFeatureSink(settings.redis_url, "hr_chatbot", plans,
                             settings.job.redis_batch_size)).name("feast-redis-sink")

    if "drift" in branches:
        events.map(drift_row, Types.PICKLED_BYTE_ARRAY()) \
            .key_by(lambda r: drift_key(r, settings.drift.per_tenant), Types.STRING()) \
            .process(DriftMonitor(settings), Types.PICKLED_BYTE_ARRAY()).name("drift-monitor") \
            .process(DriftSink(settings)).name("alert-sink")
