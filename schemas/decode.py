"""Bytes off ``hr.chatbot.interactions`` -> one validated, redacted interaction dict.

The one place that decides what an input record means. Avro and JSON share the
topic, so the first byte picks the path: Confluent's magic byte 0 means Avro,
resolved from the writer's schema (looked up once per schema id, then cached) to
the reader schema, so every registered earlier version still decodes; ``{``
(after optional whitespace) means UTF-8 JSON with the same field names. Both paths
then pass the same validation gates and have ``query_text`` redacted, with the
number of redacted spans kept as ``pii_redactions`` (a usable feature).

Failures raise :class:`~schemas.errors.RecordRejected`; a registry that cannot be
reached raises :class:`~schemas.errors.ServiceUnavailable` instead, because that
is no fault of the record and dead-lettering it would lose good data.
"""

from __future__ import annotations

import json
from typing import Any

from schemas import avsc
from schemas.compat import check_backward
from schemas.errors import RecordRejected, SchemaNotFound
from schemas.models import DriftAlert
from schemas.pii import redact
from schemas.registry import SchemaRegistry
from schemas.validation import ValidationLimits, validate
from schemas.wire import HEADER_SIZE, decode_body, schema_id_of

_JSON_START = 0x7B  # "{"
#: How long an unknown schema id is remembered before the registry is asked again.
UNKNOWN_ID_RETRY_MS = 60_000


class InteractionDecoder:
    """Decode, validate and redact ``ChatbotInteraction`` values (Avro or JSON).

    ``reader_schema`` defaults to the packaged ``chatbot_interaction.avsc``; a
    deployment that has evolved the contract passes its newest version. Without a
    ``registry`` only JSON is accepted (Avro records are ``unknown_schema``).
    """

    def __init__(self, registry: SchemaRegistry | None, limits: ValidationLimits | None = None,
                 reader_schema: str | dict[str, Any] | None = None) -> None:
        self.registry = registry
        self.limits = limits or ValidationLimits()
        text = reader_schema
        if text is None:
            text = avsc.schema_text(avsc.CHATBOT_INTERACTION)
        self._reader_json = avsc.strip_logical_types(avsc.load_json(text))
        self._reader = avsc.parse(self._reader_json)
        self._reader_text = avsc.canonical_text(avsc.strip_logical_types(self._reader))
        self._reader_name = self._reader_json.get("name", "record")
        # schema id -> (parsed writer schema, reader schema or None when they are equal)
        self._writers: dict[int, tuple[Any, Any]] = {}
        self._refused: dict[int, tuple[str, str, str | None]] = {}  # incompatible: permanent
        self._unknown: dict[int, int] = {}  # unknown id -> retry after (ms)

    def decode(self, value: bytes, key: bytes | None, now_ms: int) -> dict[str, Any]:
        """The validated, redacted interaction in ``value``; ``key`` is not inspected.

        ``now_ms`` is processing time, for the future-event gate and the retry of
        unknown schema ids; passing it in keeps the decoder free of clocks.
        """
        if not value:
            raise RecordRejected("truncated", "empty value (a tombstone or an empty message)")
        size = len(value)
        if size > self.limits.max_record_bytes:
            raise RecordRejected("oversized", f"{size} bytes exceeds the limit of "
                                              f"{self.limits.max_record_bytes}")
        first = value[0]
        if first == 0:
            record = self._avro(value, size, now_ms)
        elif first == _JSON_START or value.lstrip()[:1] == b"{":
            record = self._json(value)
        else:
            raise RecordRejected("bad_magic", f"first byte 0x{first:02x} is neither the Avro "
                                              "magic byte 0 nor the start of a JSON object")
        out = validate(record, self.limits, now_ms)
        text = out["query_text"]
        count = 0
        if text:
            result = redact(text)
            if result.counts_by_kind:
                out["query_text"] = result.text
                count = sum(result.counts_by_kind.values())
        out["pii_redactions"] = count
        return out

    # -- Avro ----------------------------------------------------------------------
    def _avro(self, value: bytes, size: int, now_ms: int) -> dict[str, Any]:
        if size < HEADER_SIZE:
            raise RecordRejected("truncated", f"{size} bytes is shorter than the "
                                              f"{HEADER_SIZE}-byte wire-format header")
        schema_id = int.from_bytes(value[1:HEADER_SIZE], "big")
        schemas = self._writers.get(schema_id)
        if schemas is None:
            schemas = self._writer(schema_id, now_ms)
        record = decode_body(value, *schemas)
        if type(record) is not dict:
            raise RecordRejected("incompatible_schema", "writer schema is not a record")
        return record

    def _writer(self, schema_id: int, now_ms: int) -> tuple[Any, Any]:
        """Look up, check and cache the writer schema of ``schema_id`` (once per id)."""
        refused = self._refused.get(schema_id)
        if refused is not None:
            raise RecordRejected(*refused)
        retry_at = self._unknown.get(schema_id)
        if retry_at is not None and now_ms < retry_at:
            raise RecordRejected("unknown_schema", f"schema id {schema_id} is not registered")
        if self.registry is None:
            raise RecordRejected("unknown_schema", f"schema id {schema_id}: no schema registry "
                                                   "is configured, so Avro cannot be decoded")
        try:
            parsed = self.registry.schema_by_id(schema_id)
        except SchemaNotFound:
            self._unknown[schema_id] = now_ms + UNKNOWN_ID_RETRY_MS
            raise RecordRejected("unknown_schema",
                                 f"schema id {schema_id} is not registered") from None
        self._unknown.pop(schema_id, None)
        writer_json = avsc.strip_logical_types(parsed)
        issues = check_backward(self._reader_json, writer_json)
        if issues:
            first = issues[0]
            where = first.path or "top level"
            self._refused[schema_id] = (
                "incompatible_schema", f"writer schema id {schema_id} cannot be read as "
                                       f"{self._reader_name}: {where}: {first.reason}",
                first.path or None)
            raise RecordRejected(*self._refused[schema_id])
        if avsc.canonical_text(writer_json) == self._reader_text:
            schemas = (self._reader, None)
        else:
            schemas = (avsc.parse(writer_json), self._reader)
        self._writers[schema_id] = schemas
        return schemas

    # -- JSON ----------------------------------------------------------------------
    @staticmethod
    def _json(value: bytes) -> dict[str, Any]:
        try:
            record = json.loads(value)
        except UnicodeDecodeError:
            raise RecordRejected("invalid_json", "not UTF-8 text") from None
        except (ValueError, RecursionError) as exc:
            where = f" at byte {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
            raise RecordRejected("invalid_json", f"not valid JSON{where}") from None
        if type(record) is not dict:
            raise RecordRejected("invalid_json", "not a JSON object")
        return record


def decode_alert(value: bytes, registry: SchemaRegistry) -> DriftAlert:
    """A framed ``DriftAlert`` off the alert topic, resolved from its writer's schema.

    For consumers of alerts (``driftline alerts``, tests); raises
    :class:`~schemas.errors.RecordRejected` on a value that is not a framed alert.
    """
    try:
        writer = avsc.parse_raw(registry.schema_by_id(schema_id_of(value)))
    except SchemaNotFound:
        raise RecordRejected("unknown_schema", "alert schema id is not registered") from None
    return DriftAlert.model_validate(decode_body(value, writer,
                                                 avsc.packaged_raw(avsc.DRIFT_ALERT)))
