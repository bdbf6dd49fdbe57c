"""Dead letters: original bytes with PII overwritten, and the reason in headers."""

from __future__ import annotations

import hashlib
import io
import json
import struct

import fastavro
import pytest

from schemas import avsc
from schemas.dead_letter import build_dead_letter, read_dead_letter
from schemas.decode import InteractionDecoder
from schemas.errors import RecordRejected
from tests.ingest_samples import LIMITS, NOW_MS, interaction

PII = ["jane.doe@example.com", "+44 7700 900123", "4111 1111 1111 1111", "123-45-6789",
       "GB82 WEST 1234 5698 7654 32"]
# Fragments that must not survive anywhere in a dead letter.
FRAGMENTS = [b"jane.doe", b"example.com", b"7700 900123", b"4111 1111", b"1111 1111 1111",
             b"123-45-6789", b"WEST 1234", b"5698 7654"]


def _build(kind="out_of_range", message="confidence: must be in [0, 1]", key=b"emp-1",
           value=b"{}"):
    return build_dead_letter(kind=kind, message=message, topic="hr.chatbot.interactions",
                             partition=3, offset=12345, key=key, value=value, now_ms=NOW_MS)


def _no_pii(key, value, headers):
    blobs = [key or b"", value or b""] + [v for _, v in headers]
    for blob in blobs:
        for fragment in FRAGMENTS:
            assert fragment not in blob, fragment


def test_headers_name_the_error_and_the_source():
    key, value, headers = _build()
    h = dict(headers)
    assert h["driftline.error.kind"] == b"out_of_range"
    assert h["driftline.error.message"] == b"confidence: must be in [0, 1]"
    assert h["driftline.source.topic"] == b"hr.chatbot.interactions"
    assert h["driftline.source.partition"] == b"3"
    assert h["driftline.source.offset"] == b"12345"
    assert h["driftline.rejected_at"] == str(NOW_MS).encode()
    assert h["driftline.value.encoding"] == b"json"
    assert key == b"emp-1" and value == b"{}"
    assert all(isinstance(n, str) and isinstance(v, bytes) for n, v in headers)


def test_json_value_keeps_shape_and_loses_pii():
    record = interaction(query_text="Contact " + ", ".join(PII), confidence=2.0)
    raw = json.dumps(record).encode()
    key, value, headers = _build(value=raw, key=b"jane.doe@example.com")
    _no_pii(key, value, headers)
    assert len(value) == len(raw)
    parsed = json.loads(value)
    assert parsed["confidence"] == 2.0 and parsed["interaction_id"] == record["interaction_id"]
    assert dict(headers)["driftline.redacted"] == b"CARD=1,EMAIL=2,IBAN=1,NATIONAL_ID=1,PHONE=1"


def test_avro_value_keeps_length_and_still_decodes():
    text = avsc.schema_text("chatbot_interaction")
    parsed = fastavro.parse_schema(json.loads(text))
    record = interaction(query_text="Hi, it is " + " and ".join(PII), confidence=2.0)
    buf = io.BytesIO(b"\x00" + struct.pack(">I", 1))
    buf.seek(5)
    fastavro.schemaless_writer(buf, parsed, record)
    raw = buf.getvalue()
    key, value, headers = _build(value=raw)
    _no_pii(key, value, headers)
    assert len(value) == len(raw) and value[:5] == raw[:5]
    body = io.BytesIO(value[5:])
    back = fastavro.schemaless_reader(body, parsed, None)  # fastavro itself, not our decoder
    assert back["confidence"] == 2.0
    assert back["query_text"].startswith("Hi, it is [EMAIL]")
    assert dict(headers)["driftline.value.encoding"] == b"avro"


def test_unparseable_payloads_are_scanned_too():
    raw = b"\x13garbage jane.doe@example.com ; 4111 1111 1111 1111 \xff"
    key, value, headers = _build(kind="bad_magic", value=raw)
    _no_pii(key, value, headers)
    assert len(value) == len(raw) and value.endswith(b"\xff")
    assert dict(headers)["driftline.value.encoding"] == b"unknown"


def test_json_escapes_cannot_hide_pii():
    raw = b'{"query_text": "mail jane.doe\\u0040example.com", "confidence": 7}'
    key, value, headers = _build(value=raw)
    assert json.loads(value)["query_text"] == "mail [EMAIL]"
    assert dict(headers)["driftline.value.rewritten"] == b"1"
    _no_pii(key, value, headers)


def test_message_is_redacted_and_bounded():
    message = "bad value jane.doe@example.com " + "x" * 5000
    _, _, headers = _build(message=message)
    text = dict(headers)["driftline.error.message"]
    assert b"jane" not in text and b"[EMAIL]" in text and len(text) <= 1000


def test_tombstones_and_missing_keys():
    key, value, headers = _build(key=None, value=None, kind="truncated")
    assert key is None and value is None
    assert dict(headers)["driftline.value.encoding"] == b"none"


@pytest.mark.parametrize("raw", [
    json.dumps(interaction(satisfaction=9, query_text="call +44 7700 900123")).encode(),
    b"{not json jane.doe@example.com",
    b"",
])
def test_decoder_rejection_round_trips_through_the_dead_letter(raw):
    decoder = InteractionDecoder(None, LIMITS)
    with pytest.raises(RecordRejected) as err:
        decoder.decode(raw, b"emp-000042", NOW_MS)
    key, value, headers = _build(kind=err.value.kind, message=str(err.value), value=raw,
                                 key=b"emp-000042")
    _no_pii(key, value, headers)
    letter = read_dead_letter(key, value, headers)
    assert letter.error_kind == err.value.kind
    assert letter.source_partition == 3 and letter.source_offset == 12345
    assert letter.rejected_at == NOW_MS and letter.key == b"emp-000042"
    assert len(letter.value) == len(raw)


def test_an_oversized_value_is_cut_to_fit_with_its_size_and_hash():
    big = json.dumps({"interaction_id": "x", "query_text": "mail jane.doe@example.com "
                      + "y" * 3_000_000}).encode()

    def build(cap):
        return build_dead_letter(kind="oversized", message="too big", topic="t", partition=0,
                                 offset=1, key=b"k", value=big, now_ms=NOW_MS,
                                 max_value_bytes=cap)

    _, whole, _ = build(None)
    key, value, headers = build(64 * 1024)
    h = dict(headers)
    assert len(value) == 64 * 1024 and value == whole[:64 * 1024]
    assert h["driftline.value.truncated"] == b"1"
    assert int(h["driftline.value.original_bytes"]) == len(big)  # redaction keeps the length
    assert h["driftline.value.sha256"] == hashlib.sha256(whole).hexdigest().encode()
    _no_pii(key, value, headers)  # redacted before it was cut
