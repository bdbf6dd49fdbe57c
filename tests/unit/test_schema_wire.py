"""Confluent wire format: our framing against fastavro and confluent-kafka's own serde."""

from __future__ import annotations

import io
import random
import struct
from datetime import UTC, datetime

import fastavro
import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas import avsc, wire
from schemas.encode import InteractionEncoder
from schemas.errors import RecordRejected
from schemas.registry import make_registry
from tests.ingest_samples import LIMITS, interaction, unique


def _plain_schema():
    return fastavro.parse_schema(avsc.load_json(avsc.schema_text("chatbot_interaction")))


def test_encode_is_magic_id_then_fastavro_body():
    record = interaction()
    framed = wire.encode(258, avsc.packaged_raw("chatbot_interaction"), record)
    assert framed[0] == 0
    assert struct.unpack(">I", framed[1:5])[0] == 258
    body = io.BytesIO()
    fastavro.schemaless_writer(body, _plain_schema(), record)  # the oracle: fastavro itself
    assert framed[5:] == body.getvalue()


def test_round_trip_and_schema_id():
    raw = avsc.packaged_raw("chatbot_interaction")
    record = interaction(query_text=None, satisfaction=None, embedding=None)
    framed = wire.encode(7, raw, record)
    assert wire.schema_id_of(framed) == 7
    assert wire.decode(framed, raw) == record


@pytest.mark.parametrize("value, kind", [
    (b"", "truncated"),
    (b"\x00\x00\x00", "truncated"),
    (b"\x01\x00\x00\x00\x01abc", "bad_magic"),
])
def test_bad_frames(value, kind):
    with pytest.raises(RecordRejected) as err:
        wire.schema_id_of(value)
    assert err.value.kind == kind


def test_body_errors():
    raw = avsc.packaged_raw("chatbot_interaction")
    framed = wire.encode(1, raw, interaction())
    with pytest.raises(RecordRejected) as err:
        wire.decode(framed[:-3], raw)
    assert err.value.kind == "truncated"
    with pytest.raises(RecordRejected) as err:
        wire.decode(framed + b"\x00", raw)
    assert err.value.kind == "invalid_avro"


def test_confluent_serializer_output_decodes_with_our_encoder_ids():
    """confluent's AvroSerializer frames like we do; both ids resolve in one registry."""
    registry = make_registry(unique("mock://wire"))
    topic = "hr.chatbot.interactions"
    serializer = AvroSerializer(registry.client, avsc.schema_text("chatbot_interaction"))
    ctx = SerializationContext(topic, MessageField.VALUE)
    record = interaction()
    theirs = serializer(record, ctx)
    ours = InteractionEncoder(registry, topic, limits=LIMITS)(record)
    assert theirs[0] == 0 and ours[0] == 0
    assert theirs[5:] == ours[5:]  # same Avro body bytes
    deserializer = AvroDeserializer(registry.client)  # the oracle reads ours
    decoded = deserializer(ours, ctx)
    assert decoded == deserializer(theirs, ctx)
    assert decoded.pop("event_time") == datetime.fromtimestamp(record.pop("event_time") / 1000,
                                                               UTC)
    assert decoded == record


def test_corrupt_bodies_only_ever_raise_record_rejected():
    raw = avsc.packaged_raw("chatbot_interaction")
    framed = bytearray(wire.encode(1, raw, interaction()))
    rng = random.Random(11)
    for _ in range(500):
        mutated = bytearray(framed)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(5, len(mutated))] = rng.randrange(256)
        cut = rng.choice([len(mutated), rng.randrange(5, len(mutated))])
        try:
            wire.decode(bytes(mutated[:cut]), raw)
        except RecordRejected as exc:
            assert exc.kind in ("truncated", "invalid_avro")
