"""Producer-side serializers, and the settings glue in streams.ingest."""

from __future__ import annotations

import io
import json

import fastavro
import pytest
from pydantic import ValidationError

from schemas import avsc
from schemas.encode import AlertEncoder, InteractionEncoder
from schemas.errors import ConfigError, RecordRejected
from schemas.registry import make_registry
from streams import ingest
from streams.settings import Settings
from tests.ingest_samples import LIMITS, NOW_MS, interaction, unique

ALERT = {"alert_id": "a1", "monitor": "default", "tenant_id": None, "feature": "confidence",
         "statistic": "ks", "value": 0.31, "threshold": 0.2, "p_value": 1e-6,
         "window_start": 1_000, "window_end": 2_000, "n_window": 500, "n_reference": 5000,
         "reference_id": "ref-1", "severity": "critical", "detected_at": 2_500,
         "details": "{\"shift\":0.1}"}


def test_json_encoder_normalises_and_validates():
    encode = InteractionEncoder(None, "t", "json", limits=LIMITS)
    value = encode(interaction(event_time="2025-10-09T08:53:20Z", response_latency_ms=5))
    decoded = json.loads(value)
    assert decoded["event_time"] == 1_760_000_000_000
    assert decoded["response_latency_ms"] == 5.0
    with pytest.raises(RecordRejected) as err:
        encode(interaction(confidence=3.0))
    assert err.value.kind == "out_of_range"


def test_avro_encoder_registers_under_topic_value_subject():
    registry = make_registry(unique("mock://encode"))
    encode = InteractionEncoder(registry, "my.topic", limits=LIMITS)
    sid, schema = registry.latest("my.topic-value")
    assert encode.schema_id == sid
    value = encode(interaction())
    assert value[:5] == b"\x00" + sid.to_bytes(4, "big")
    body = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, None)
    assert body["event_time"].timestamp() * 1000 == interaction()["event_time"]


def test_avro_encoder_needs_a_registry_and_a_known_encoding():
    with pytest.raises(ConfigError):
        InteractionEncoder(None, "t", "avro")
    with pytest.raises(ConfigError):
        InteractionEncoder(None, "t", "protobuf")  # type: ignore[arg-type]


def test_alert_encoder_round_trip_through_fastavro():
    registry = make_registry(unique("mock://alerts"))
    encode = AlertEncoder(registry, "hr.drift.alerts")
    value = encode(ALERT)
    plain = fastavro.parse_schema(json.loads(avsc.schema_text("drift_alert")))
    decoded = fastavro.schemaless_reader(io.BytesIO(value[5:]), plain, None)
    for field in ("window_start", "window_end", "detected_at"):  # timestamp-millis
        decoded[field] = round(decoded[field].timestamp() * 1000)
    assert decoded == ALERT
    as_mapping = encode({**ALERT, "details": {"shift": 0.1}})
    assert as_mapping == value
    with pytest.raises(RecordRejected) as err:
        encode({k: v for k, v in ALERT.items() if k != "severity"})
    assert err.value.kind == "missing_field" and err.value.field == "severity"


def test_settings_glue_shares_the_local_registry(tmp_path):
    settings = Settings(state_dir=tmp_path, embedding_dim=4,
                        ingest={"max_future_ms": 1000, "dedup_window_ms": 60_000})
    produce = ingest.interaction_serializer(settings, "avro")
    produce_json = ingest.interaction_serializer(settings, "json")
    decoder, dedup = ingest.build_decoder(settings)  # a separate registry object, same file
    assert decoder.limits.max_future_ms == 1000 and decoder.limits.embedding_dim == 4
    assert dedup.window_ms == 60_000
    for value in (produce(interaction()), produce_json(interaction())):
        record = decoder.decode(value, None, NOW_MS)
        assert record["interaction_id"] == "ix-0001"
    with pytest.raises(ingest.RecordRejected):
        dedup.check("x", 1)
        dedup.check("x", 1)
    alert = ingest.alert_serializer(settings)(ALERT)
    assert (tmp_path / "schema-registry.json").exists() and alert[0] == 0


def test_ingest_settings_forbid_unknown_fields():
    with pytest.raises(ValidationError):
        Settings(ingest={"max_future_ms": 1, "typo": 2})
    assert Settings().ingest.max_record_bytes == 64 * 1024
