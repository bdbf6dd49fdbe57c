"""Every rejection kind, through the decoder, for JSON and (where it applies) Avro."""

from __future__ import annotations

import io
import json
import struct

import fastavro
import pytest

from schemas import avsc
from schemas.decode import InteractionDecoder
from schemas.errors import REJECTION_KINDS, RecordRejected
from schemas.registry import make_registry
from schemas.validation import ValidationLimits, parse_event_time
from tests.ingest_samples import LIMITS, NOW_MS, interaction, unique

SUBJECT = "hr.chatbot.interactions-value"


@pytest.fixture()
def avro():
    """(decoder, encode) over a fresh mock registry; encode frames with fastavro directly."""
    registry = make_registry(unique("mock://validation"))
    text = avsc.schema_text("chatbot_interaction")
    sid = registry.register(SUBJECT, text)
    parsed = fastavro.parse_schema(json.loads(text))

    def encode(record):
        buf = io.BytesIO(b"\x00" + struct.pack(">I", sid))
        buf.seek(5)
        fastavro.schemaless_writer(buf, parsed, record)
        return buf.getvalue()

    return InteractionDecoder(registry, LIMITS), encode


def _json(record) -> bytes:
    return json.dumps(record).encode()


def _rejects(decoder, value, kind, field=None):
    with pytest.raises(RecordRejected) as err:
        decoder.decode(value, b"emp-000042", NOW_MS)
    assert err.value.kind == kind, str(err.value)
    assert err.value.kind in REJECTION_KINDS
    if field is not None:
        assert err.value.field == field
    return err.value


def test_valid_json_and_avro_decode_to_the_same_normalised_record(avro):
    decoder, encode = avro
    record = interaction()
    expected = {**record, "pii_redactions": 0}
    assert decoder.decode(_json(record), None, NOW_MS) == expected
    assert decoder.decode(encode(record), None, NOW_MS) == expected
    assert list(decoder.decode(_json(record), None, NOW_MS)) == [*record, "pii_redactions"]


def test_json_accepts_iso_times_ints_as_floats_whitespace_and_unknown_fields(avro):
    decoder, _ = avro
    record = interaction(event_time="2025-10-09T08:52:20.123Z", response_latency_ms=800,
                         confidence=1, satisfaction=None, extra_field={"ignored": True},
                         jurisdiction="gb")
    del record["embedding"], record["query_text"]  # optional: may be absent in JSON
    out = decoder.decode(b"  \n" + _json(record), None, NOW_MS)
    assert out["event_time"] == 1_759_999_940_123
    assert out["response_latency_ms"] == 800.0 and type(out["response_latency_ms"]) is float
    assert out["confidence"] == 1.0 and out["jurisdiction"] == "GB"
    assert out["embedding"] is None and out["query_text"] is None
    assert "extra_field" not in out


@pytest.mark.parametrize("text, millis", [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T01:00:00+01:00", 0),
    ("2025-10-09T08:53:20.5+00:00", 1_760_000_000_500),
])
def test_iso_event_times(text, millis):
    assert parse_event_time(text) == millis


@pytest.mark.parametrize("value, kind", [
    (b"", "truncated"),
    (b"\x00\x00\x00", "truncated"),
    (b"[1, 2]", "bad_magic"),
    (b"hello", "bad_magic"),
    (b"\x7f{}", "bad_magic"),
    (b"{\"interaction_id\": ", "invalid_json"),
    (b"{\xff\xfe}", "invalid_json"),
    (b"\x00\x00\x00\x03\xe7\x02", "unknown_schema"),
])
def test_framing_rejections(avro, value, kind):
    decoder, _ = avro
    _rejects(decoder, value, kind)


def test_oversized():
    decoder = InteractionDecoder(None, ValidationLimits(max_record_bytes=300, embedding_dim=4))
    value = _json(interaction(query_text="x" * 400))
    err = _rejects(decoder, value, "oversized")
    assert "300" in str(err)


def test_avro_body_rejections(avro):
    decoder, encode = avro
    value = encode(interaction())
    _rejects(decoder, value[:-7], "truncated")
    _rejects(decoder, value + b"\x02", "invalid_avro")


def test_json_without_registry_still_works_but_avro_is_refused():
    decoder = InteractionDecoder(None, LIMITS)
    assert decoder.decode(_json(interaction()), None, NOW_MS)["intent"] == "payroll"
    err = _rejects(decoder, b"\x00\x00\x00\x00\x01\x02", "unknown_schema")
    assert "no schema registry" in str(err)


MISSING = ["interaction_id", "tenant_id", "employee_id", "session_id", "event_time", "channel",
           "locale", "jurisdiction", "intent", "response_latency_ms", "model_version",
           "confidence", "resolved", "escalated"]


@pytest.mark.parametrize("field", MISSING)
def test_missing_required_fields(avro, field):
    decoder, _ = avro
    record = interaction()
    del record[field]
    _rejects(decoder, _json(record), "missing_field", field)
    _rejects(decoder, _json({**interaction(), field: None}), "missing_field", field)


@pytest.mark.parametrize("field", ["interaction_id", "tenant_id", "employee_id", "channel"])
def test_empty_ids_are_missing(avro, field):
    decoder, encode = avro
    _rejects(decoder, _json(interaction(**{field: ""})), "missing_field", field)
    _rejects(decoder, encode(interaction(**{field: ""})), "missing_field", field)


@pytest.mark.parametrize("field", ["interaction_id", "tenant_id", "employee_id"])
def test_ids_with_control_characters_are_refused(avro, field):
    # Ids become (composite) feature keys: a separator inside one would split it.
    decoder, encode = avro
    for value in ("emp\x1f42", "emp\n42", "\x1b[2Jemp"):
        _rejects(decoder, _json(interaction(**{field: value})), "out_of_range", field)
        _rejects(decoder, encode(interaction(**{field: value})), "out_of_range", field)


@pytest.mark.parametrize("field, value", [
    ("interaction_id", 17), ("event_time", 1.5), ("event_time", True),
    ("event_time", "yesterday"), ("event_time", "2025-10-09T08:00:00"),  # no offset
    ("response_latency_ms", "812"), ("confidence", True), ("resolved", "true"),
    ("escalated", 0), ("satisfaction", 4.0), ("satisfaction", "4"), ("query_text", 5),
    ("embedding", "0.1,0.2"), ("intent", ["leave"]),
])
def test_wrong_types(avro, field, value):
    decoder, _ = avro
    _rejects(decoder, _json(interaction(**{field: value})), "wrong_type", field)


@pytest.mark.parametrize("field, value", [
    ("confidence", 1.0001), ("confidence", -0.1), ("satisfaction", 0), ("satisfaction", 6),
    ("response_latency_ms", -1.0), ("event_time", -5), ("jurisdiction", "GBR"),
    ("jurisdiction", "G1"), ("satisfaction", 10**30), ("event_time", 2**70),
])
def test_out_of_range(avro, field, value):
    decoder, encode = avro
    _rejects(decoder, _json(interaction(**{field: value})), "out_of_range", field)
    if field in ("confidence", "response_latency_ms", "jurisdiction") or (
            field == "satisfaction" and abs(value) < 2**31):
        _rejects(decoder, encode(interaction(**{field: value})), "out_of_range", field)


def test_non_finite_numbers(avro):
    decoder, encode = avro
    for field in ("response_latency_ms", "confidence"):
        for bad in (float("nan"), float("inf")):
            _rejects(decoder, _json(interaction(**{field: bad})), "out_of_range", field)
            _rejects(decoder, encode(interaction(**{field: bad})), "out_of_range", field)


def test_future_events(avro):
    decoder, encode = avro
    limit = LIMITS.max_future_ms
    ok = interaction(event_time=NOW_MS + limit)
    assert decoder.decode(_json(ok), None, NOW_MS)["event_time"] == NOW_MS + limit
    late = interaction(event_time=NOW_MS + limit + 1)
    _rejects(decoder, _json(late), "future_event", "event_time")
    _rejects(decoder, encode(late), "future_event", "event_time")


@pytest.mark.parametrize("embedding", [
    [0.1, 0.2, 0.3],  # too short
    [0.1] * 5,  # too long
    [0.1, 0.2, float("nan"), 0.4],
    [0.1, 0.2, float("inf"), 0.4],
    [0.1, "x", 0.3, 0.4],
    [0.1, True, 0.3, 0.4],
    [0.1, None, 0.3, 0.4],
])
def test_bad_embeddings(avro, embedding):
    decoder, encode = avro
    _rejects(decoder, _json(interaction(embedding=embedding)), "bad_embedding", "embedding")
    if all(type(x) is float for x in embedding):
        _rejects(decoder, encode(interaction(embedding=embedding)), "bad_embedding")


def test_integer_embedding_values_are_floats():
    decoder = InteractionDecoder(None, LIMITS)
    out = decoder.decode(_json(interaction(embedding=[1, 0, -1, 2])), None, NOW_MS)
    assert out["embedding"] == [1.0, 0.0, -1.0, 2.0]
    assert all(type(x) is float for x in out["embedding"])


def test_query_text_is_redacted_and_counted(avro):
    decoder, encode = avro
    text = "Email me at jane.doe@example.com or call +44 7700 900123."
    for value in (_json(interaction(query_text=text)), encode(interaction(query_text=text))):
        out = decoder.decode(value, None, NOW_MS)
        assert out["query_text"] == "Email me at [EMAIL] or call [PHONE]."
        assert out["pii_redactions"] == 2


def test_rejection_messages_carry_no_record_text(avro):
    decoder, _ = avro
    secret = "jane.doe@example.com"
    for record in (interaction(employee_id=None, query_text=secret),
                   interaction(confidence=secret), interaction(event_time=secret),
                   interaction(embedding=[secret] * 4)):
        with pytest.raises(RecordRejected) as err:
            decoder.decode(_json(record), None, NOW_MS)
        assert "jane" not in str(err.value) and "example" not in str(err.value)


def test_every_kind_is_reachable_and_the_set_is_closed():
    expected = {"oversized", "truncated", "bad_magic", "invalid_avro", "unknown_schema",
                "incompatible_schema", "invalid_json", "missing_field", "wrong_type",
                "out_of_range", "future_event", "bad_embedding", "duplicate"}
    assert set(REJECTION_KINDS) == expected
