"""Schema evolution: one topic carrying records of three writer versions at once.

v1 (oldest): no ``embedding``; an optional ``client_hint`` since removed;
``response_latency_ms`` and ``confidence`` as ``float``.
v2: the packaged contract (``embedding`` added with a default, ``client_hint``
removed, both numbers widened to ``double``).
v3: ``satisfaction`` widened from int to long.

Records are framed by hand with fastavro and the registered ids (not with our
encoder), and expected values come from the inputs (float32 rounding computed with
``struct``), so the decoder is checked against an independent oracle.
"""

from __future__ import annotations

import io
import json
import struct

import fastavro
import pytest

from schemas import avsc
from schemas.decode import UNKNOWN_ID_RETRY_MS, InteractionDecoder
from schemas.errors import RecordRejected, SchemaCompatibilityError
from schemas.registry import make_registry
from tests.ingest_samples import LIMITS, NOW_MS, interaction, unique

SUBJECT = "hr.chatbot.interactions-value"


def _v2() -> dict:
    return json.loads(avsc.schema_text("chatbot_interaction"))


def _v1() -> dict:
    schema = _v2()
    fields = [f for f in schema["fields"] if f["name"] != "embedding"]
    for f in fields:
        if f["name"] in ("response_latency_ms", "confidence"):
            f["type"] = "float"
    fields.insert(10, {"name": "client_hint", "type": ["null", "string"], "default": None})
    schema["fields"] = fields
    return schema


def _v3() -> dict:
    schema = _v2()
    for f in schema["fields"]:
        if f["name"] == "satisfaction":
            f["type"] = ["null", "long"]
    return schema


def _frame(schema_id: int, schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


@pytest.fixture(params=["local", "mock"])
def registry(request, tmp_path):
    return make_registry(None, tmp_path) if request.param == "local" else make_registry(
        unique("mock://evolution"))


def test_three_writer_versions_on_one_topic(registry):
    ids = [registry.register(SUBJECT, json.dumps(v)) for v in (_v1(), _v2(), _v3())]
    assert len(set(ids)) == 3
    v1_rec = {k: v for k, v in interaction(interaction_id="a", response_latency_ms=812.3,
                                           confidence=0.7).items() if k != "embedding"}
    v1_rec["client_hint"] = "mobile"
    v2_rec = interaction(interaction_id="b")
    v3_rec = interaction(interaction_id="c", satisfaction=5)
    stream = [_frame(ids[0], _v1(), v1_rec), _frame(ids[1], _v2(), v2_rec),
              _frame(ids[2], _v3(), v3_rec), _frame(ids[0], _v1(), {**v1_rec, "client_hint": None,
                                                                     "interaction_id": "d"})]
    decoder = InteractionDecoder(registry, LIMITS, reader_schema=json.dumps(_v3()))
    out = [decoder.decode(value, None, NOW_MS) for value in stream]

    expected_v1 = {k: v for k, v in v1_rec.items() if k != "client_hint"}
    expected_v1.update(embedding=None, response_latency_ms=_f32(812.3), confidence=_f32(0.7),
                       pii_redactions=0)
    assert out[0] == expected_v1
    assert out[1] == {**v2_rec, "pii_redactions": 0}
    assert out[2] == {**v3_rec, "pii_redactions": 0}
    assert out[3]["interaction_id"] == "d" and "client_hint" not in out[3]
    assert [type(r["response_latency_ms"]) for r in out] == [float] * 4


def test_packaged_reader_reads_older_but_not_newer_writers(registry):
    id1 = registry.register(SUBJECT, json.dumps(_v1()))
    id2 = registry.register(SUBJECT, json.dumps(_v2()))
    id3 = registry.register(SUBJECT, json.dumps(_v3()))
    decoder = InteractionDecoder(registry, LIMITS)  # reader = packaged v2
    old = {k: v for k, v in interaction().items() if k != "embedding"}
    assert decoder.decode(_frame(id1, _v1(), {**old, "client_hint": "x"}), None,
                          NOW_MS)["embedding"] is None
    assert decoder.decode(_frame(id2, _v2(), interaction()), None, NOW_MS)["satisfaction"] == 4
    # v3 wrote satisfaction as long: a v2 reader (int) cannot promise to read it
    with pytest.raises(RecordRejected) as err:
        decoder.decode(_frame(id3, _v3(), interaction()), None, NOW_MS)
    assert err.value.kind == "incompatible_schema"
    assert err.value.field == "satisfaction"


def test_incompatible_change_is_refused_at_registration(registry):
    registry.register(SUBJECT, json.dumps(_v1()))
    registry.register(SUBJECT, json.dumps(_v2()))
    bad = _v2()
    for f in bad["fields"]:
        if f["name"] == "response_latency_ms":
            f["type"] = "int"  # double -> int narrows
    with pytest.raises(SchemaCompatibilityError) as err:
        registry.register(SUBJECT, json.dumps(bad))
    assert "response_latency_ms" in str(err.value) and "cannot promote" in str(err.value)


def test_writer_schema_looked_up_once_per_id(tmp_path):
    class CountingRegistry:  # wraps the real local registry, counting lookups
        def __init__(self, inner):
            self.inner, self.lookups = inner, 0

        def register(self, subject, text):
            return self.inner.register(subject, text)

        def schema_by_id(self, schema_id):
            self.lookups += 1
            return self.inner.schema_by_id(schema_id)

        def latest(self, subject):
            return self.inner.latest(subject)

    registry = CountingRegistry(make_registry(None, tmp_path))
    sid = registry.register(SUBJECT, json.dumps(_v2()))
    decoder = InteractionDecoder(registry, LIMITS)
    for i in range(5):
        decoder.decode(_frame(sid, _v2(), interaction(interaction_id=str(i))), None, NOW_MS)
    assert registry.lookups == 1


def test_foreign_and_unknown_schema_ids(registry):
    alert_schema = json.loads(avsc.schema_text("drift_alert"))
    alert_id = registry.register("hr.drift.alerts-value", json.dumps(alert_schema))
    alert = {"alert_id": "a", "monitor": "m", "tenant_id": None, "feature": "f",
             "statistic": "psi", "value": 1.0, "threshold": 0.5, "p_value": None,
             "window_start": 0, "window_end": 1, "n_window": 1, "n_reference": 1,
             "reference_id": "r", "severity": "warning", "detected_at": 2, "details": "{}"}
    decoder = InteractionDecoder(registry, LIMITS)
    with pytest.raises(RecordRejected) as err:
        decoder.decode(_frame(alert_id, alert_schema, alert), None, NOW_MS)
    assert err.value.kind == "incompatible_schema"

    unknown = _frame(alert_id + 50, _v2(), interaction())
    with pytest.raises(RecordRejected) as err:
        decoder.decode(unknown, None, NOW_MS)
    assert err.value.kind == "unknown_schema"
    assert "not registered" in str(err.value)


def test_unknown_id_is_retried_after_a_while(tmp_path):
    registry = make_registry(None, tmp_path)
    decoder = InteractionDecoder(registry, LIMITS)
    value = _frame(1, _v2(), interaction())
    with pytest.raises(RecordRejected):
        decoder.decode(value, None, NOW_MS)
    assert registry.register(SUBJECT, json.dumps(_v2())) == 1  # registered late
    with pytest.raises(RecordRejected):  # still remembered as unknown
        decoder.decode(value, None, NOW_MS + 1)
    later = NOW_MS + UNKNOWN_ID_RETRY_MS
    assert decoder.decode(value, None, later)["interaction_id"] == "ix-0001"
