"""Settings -> the ingestion contract's objects (decoder, deduplicator, serializers).

The only place that reads ``Settings`` for ingestion, so the Flink operators, the
producers and tests build the same decoder against the same registry: Confluent
Schema Registry when ``schema_registry_url`` is set, otherwise the file registry in
``state_dir`` that every local process shares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.decode import InteractionDecoder
from schemas.dedup import Deduplicator
from schemas.encode import AlertEncoder, Encoding, InteractionEncoder
from schemas.errors import RecordRejected
from schemas.registry import SchemaRegistry, make_registry
from schemas.validation import ValidationLimits
from streams.settings import Settings

__all__ = ["RecordRejected", "alert_serializer", "build_decoder", "interaction_serializer",
           "schema_registry", "validation_limits"]


def schema_registry(settings: Settings) -> SchemaRegistry:
    """The registry this deployment is configured for."""
    return make_registry(settings.schema_registry_url, settings.state_dir)


def validation_limits(settings: Settings) -> ValidationLimits:
    ingest = settings.ingest
    return ValidationLimits(max_future_ms=ingest.max_future_ms,
                            max_record_bytes=ingest.max_record_bytes,
                            embedding_dim=settings.embedding_dim,
                            dedup_window_ms=ingest.dedup_window_ms)


def build_decoder(settings: Settings) -> tuple[InteractionDecoder, Deduplicator]:
    """A decoder for the input topic and a fresh deduplicator over the configured window."""
    limits = validation_limits(settings)
    return (InteractionDecoder(schema_registry(settings), limits),
            Deduplicator(limits.dedup_window_ms))


def interaction_serializer(settings: Settings,
                           encoding: Encoding = "avro") -> Callable[[dict[str, Any]], bytes]:
    """Value serializer for the input topic (registers the schema when Avro)."""
    return InteractionEncoder(schema_registry(settings), settings.topics.input, encoding,
                              limits=validation_limits(settings))


def alert_serializer(settings: Settings) -> Callable[[dict[str, Any]], bytes]:
    """Value serializer for the alert topic (registers the DriftAlert schema)."""
    return AlertEncoder(schema_registry(settings), settings.topics.alerts)
