"""The pydantic models and the .avsc files must describe the same contract.

The .avsc text is read with plain ``json`` (not through schemas.avsc), and each
model field's annotation is mapped to the Avro type it must correspond to.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path

import pytest

from schemas.models import MODEL_SCHEMAS, ChatbotInteraction, DeadLetter, DriftAlert

AVRO_DIR = Path(__file__).resolve().parents[2] / "schemas" / "avro"
PY_TO_AVRO = {str: {"string"}, int: {"int", "long"}, float: {"float", "double"},
              bool: {"boolean"}, bytes: {"bytes"}}


def _avro_shape(avro_type) -> tuple[bool, object]:
    """(nullable, comparable shape) of an Avro field type."""
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        assert len(branches) == 1, f"only ['null', T] unions are in the contract: {avro_type}"
        return "null" in avro_type, _avro_shape(branches[0])[1]
    if isinstance(avro_type, dict):
        if avro_type["type"] == "array":
            return False, ("array", _avro_shape(avro_type["items"])[1])
        return False, avro_type["type"]  # logical types: the underlying primitive
    return False, avro_type


def _py_shape(annotation) -> tuple[bool, object]:
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        assert len(inner) == 1
        return type(None) in args, _py_shape(inner[0])[1]
    if typing.get_origin(annotation) is list:
        return False, ("array", _py_shape(args[0])[1])
    return False, annotation


def _same_type(py, avro) -> bool:
    if isinstance(py, tuple) or isinstance(avro, tuple):
        return (isinstance(py, tuple) and isinstance(avro, tuple) and py[0] == avro[0]
                and _same_type(py[1], avro[1]))
    return avro in PY_TO_AVRO[py]


@pytest.mark.parametrize("model", list(MODEL_SCHEMAS), ids=lambda m: m.__name__)
def test_model_matches_avsc(model):
    schema = json.loads((AVRO_DIR / f"{MODEL_SCHEMAS[model]}.avsc").read_text())
    assert schema["name"] == model.__name__
    avro_fields = [f["name"] for f in schema["fields"]]
    assert list(model.model_fields) == avro_fields, "field names or order differ"
    for field in schema["fields"]:
        info = model.model_fields[field["name"]]
        a_null, a_shape = _avro_shape(field["type"])
        p_null, p_shape = _py_shape(info.annotation)
        assert p_null == a_null, f"{field['name']}: optionality differs"
        assert _same_type(p_shape, a_shape), f"{field['name']}: {p_shape} vs {a_shape}"
        has_default = "default" in field
        assert (not info.is_required()) == has_default, f"{field['name']}: default differs"
        if has_default:
            assert info.default == field["default"], f"{field['name']}: default value differs"


def test_timestamp_fields_are_millis_in_both():
    for model, name in MODEL_SCHEMAS.items():
        schema = json.loads((AVRO_DIR / f"{name}.avsc").read_text())
        for field in schema["fields"]:
            t = field["type"]
            if isinstance(t, dict) and t.get("logicalType") == "timestamp-millis":
                assert t["type"] == "long"
                assert model.model_fields[field["name"]].annotation is int


def test_the_comparison_catches_divergence():
    """The checker must fail on a model that differs from its schema (it can fail)."""
    from pydantic import create_model

    schema = json.loads((AVRO_DIR / "drift_alert.avsc").read_text())
    field = schema["fields"][2]  # tenant_id: ["null", "string"]
    wrong = create_model("DriftAlert", tenant_id=(str, ...))
    a_null, _ = _avro_shape(field["type"])
    p_null, _ = _py_shape(wrong.model_fields["tenant_id"].annotation)
    assert a_null != p_null
    assert not _same_type(int, "string")
    assert not _same_type(("array", float), "string")


def test_models_accept_a_valid_record_and_forbid_extras():
    record = {"interaction_id": "i", "tenant_id": "t", "employee_id": "e", "session_id": "s",
              "event_time": 1, "channel": "web", "locale": "en-GB", "jurisdiction": "GB",
              "intent": "leave", "response_latency_ms": 1.5, "model_version": "m",
              "confidence": 0.5, "resolved": True, "escalated": False}
    assert ChatbotInteraction(**record).embedding is None
    with pytest.raises(ValueError):
        ChatbotInteraction(**record, unexpected=1)
    DeadLetter(error_kind="oversized", error_message="m", source_topic="t", source_partition=0,
               source_offset=1, rejected_at=2)
    assert DriftAlert.model_fields["details"].annotation is str
