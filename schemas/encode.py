"""Serializers for our own producers: the traffic simulator, tests and the alert sink.

They register their schema under ``<topic>-value`` once, at construction, so an
incompatible schema fails the producer at start-up rather than its consumers later,
and so every process on a machine agrees on ids. Interactions are validated with
the consumer's own gates (minus the clock-dependent future check) before they are
written: a producer cannot emit what the decoder would reject for its shape.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any, Literal

from fastavro import schemaless_writer
from pydantic import ValidationError

from schemas import avsc
from schemas.errors import ConfigError, RecordRejected
from schemas.models import DriftAlert
from schemas.registry import SchemaRegistry
from schemas.topics import value_subject
from schemas.validation import ValidationLimits, validate
from schemas.wire import HEADER, MAGIC_BYTE

Encoding = Literal["avro", "json"]


def _frame(schema_id: int, parsed: Any, record: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(HEADER.pack(MAGIC_BYTE, schema_id))
    schemaless_writer(buf, parsed, record)
    return buf.getvalue()


class InteractionEncoder:
    """``ChatbotInteraction`` dict -> Confluent-framed Avro or compact UTF-8 JSON.

    ``event_time`` may be epoch millis or ISO-8601 (normalised to millis). Raises
    :class:`~schemas.errors.RecordRejected` for a record the decoder would reject.
    """

    def __init__(self, registry: SchemaRegistry | None, topic: str,
                 encoding: Encoding = "avro", *, limits: ValidationLimits | None = None,
                 schema: str | None = None) -> None:
        if encoding not in ("avro", "json"):
            raise ConfigError("encoding", f"expected 'avro' or 'json', got {encoding!r}")
        self.encoding = encoding
        self.topic = topic
        self.limits = limits or ValidationLimits()
        self.schema_id: int | None = None
        if encoding == "avro":
            if registry is None:
                raise ConfigError("schema_registry_url", "Avro encoding needs a schema registry")
            text = schema if schema is not None else avsc.schema_text(avsc.CHATBOT_INTERACTION)
            self.schema_id = registry.register(value_subject(topic), text)
            self._parsed = avsc.parse_raw(text)

    def __call__(self, record: Mapping[str, Any]) -> bytes:
        return self.encode(record)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        clean = validate(dict(record), self.limits, None)
        if self.schema_id is None:
            return json.dumps(clean, ensure_ascii=False, separators=(",", ":"),
                              allow_nan=False).encode()
        return _frame(self.schema_id, self._parsed, clean)


class AlertEncoder:
    """``DriftAlert`` dict -> Confluent-framed Avro; ``details`` may be a mapping (dumped as JSON).

    Raises :class:`~schemas.errors.RecordRejected` when the alert does not fit the model.
    """

    def __init__(self, registry: SchemaRegistry, topic: str) -> None:
        self.topic = topic
        self.schema_id = registry.register(value_subject(topic),
                                           avsc.schema_text(avsc.DRIFT_ALERT))
        self._parsed = avsc.packaged_raw(avsc.DRIFT_ALERT)

    def __call__(self, alert: Mapping[str, Any]) -> bytes:
        return self.encode(alert)

    def encode(self, alert: Mapping[str, Any]) -> bytes:
        data = dict(alert)
        if isinstance(data.get("details"), Mapping):
            data["details"] = json.dumps(data["details"], sort_keys=True, separators=(",", ":"))
        try:
            model = DriftAlert.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            kind = "missing_field" if first["type"] == "missing" else "wrong_type"
            raise RecordRejected(kind, f"DriftAlert.{field}: {first['msg']}", field) from None
        return _frame(self.schema_id, self._parsed, model.model_dump())
