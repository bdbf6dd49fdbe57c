"""Validation gates a decoded interaction must pass before any feature or drift code sees it.

Pure and fast: hand-written checks on a plain dict (Avro- or JSON-decoded), because
this runs once per input record and a pydantic model costs about ten times more.
Every failure raises :class:`~schemas.errors.RecordRejected` with a ``kind`` from
:data:`~schemas.errors.REJECTION_KINDS` and the offending ``field``; messages name
fields and limits but never quote record text (they end up on the dead-letter topic).

The output is normalised: exactly the contract's fields in schema order, unknown
fields dropped (as an Avro reader drops them), ``event_time`` as epoch millis,
numbers as ``float``/``int``, missing optional fields as ``None``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.errors import RecordRejected

_REQUIRED_TEXT = ("interaction_id", "tenant_id", "employee_id", "session_id", "channel",
                  "locale", "jurisdiction", "intent", "model_version")
_MAX_FLOAT = 1.7976931348623157e308
_MAX_LONG = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_FLOAT = {float}
_NUMBER = {float, int}


class ValidationLimits(BaseModel):
    """The deployment-specific bounds of the validation gates (built from settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_future_ms: int = Field(5 * 60_000, ge=0,
                               description="how far event_time may lie ahead of now (clock skew)")
    max_record_bytes: int = Field(64 * 1024, ge=64, description="largest accepted value")
    embedding_dim: int = Field(16, ge=1, description="the deployment's embedding dimension")
    dedup_window_ms: int = Field(3_600_000, ge=0,
                                 description="event-time span over which duplicates are caught")


def _reject(kind: str, field: str, message: str) -> RecordRejected:
    return RecordRejected(kind, f"{field}: {message}", field)


def _absent_or_wrong(field: str, value: Any, expected: str) -> RecordRejected:
    if value is None:
        return _reject("missing_field", field, "required but missing or null")
    return _reject("wrong_type", field, f"expected {expected}, got {type(value).__name__}")


def parse_event_time(value: Any) -> int:
    """Epoch millis from an int, an integral float, or an ISO-8601 string with an offset."""
    kind = type(value)
    if kind is int:
        return value
    if kind is float and value.is_integer():
        return int(value)
    if kind is str:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise _reject("wrong_type", "event_time", "not an ISO-8601 timestamp") from None
        if dt.tzinfo is None:
            raise _reject("wrong_type", "event_time",
                          "ISO-8601 timestamp needs a UTC offset (e.g. 'Z' or '+01:00')")
        return (dt - _EPOCH) // _MS
    raise _absent_or_wrong("event_time", value, "epoch millis (int) or ISO-8601 string")


def _number(record: dict[str, Any], field: str) -> float:
    value: Any = record.get(field)
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise _reject("out_of_range", field, "too large") from None
    raise _absent_or_wrong(field, value, "a number")


def _flag(record: dict[str, Any], field: str) -> bool:
    value = record.get(field)
    if type(value) is not bool:
        raise _absent_or_wrong(field, value, "a boolean")
    return value


def _embedding(value: Any, dim: int) -> list[float] | None:
    if value is None:
        return None
    if type(value) is not list:
        raise _reject("wrong_type", "embedding", f"expected an array, got {type(value).__name__}")
    if len(value) != dim:
        raise _reject("bad_embedding", "embedding",
                      f"dimension {len(value)}, expected {dim}")
    kinds = set(map(type, value))
    if kinds != _FLOAT:
        if not kinds <= _NUMBER:
            raise _reject("bad_embedding", "embedding", "values must be numbers")
        try:
            value = [float(x) for x in value]
        except OverflowError:
            raise _reject("bad_embedding", "embedding", "values must be finite") from None
    total = sum(value)
    if total - total != 0.0:  # NaN or +-inf somewhere (or an overflowing sum)
        raise _reject("bad_embedding", "embedding", "values must be finite")
    return value


def validate(record: dict[str, Any], limits: ValidationLimits,
             now_ms: int | None) -> dict[str, Any]:
    """Check ``record`` against the contract; return the normalised copy.

    ``now_ms`` is the processing time the future-event gate compares against;
    ``None`` skips that gate (producers validating before they send).
    """
    out: dict[str, Any] = {}
    get = record.get
    for field in _REQUIRED_TEXT[:4]:
        value = get(field)
        if type(value) is not str:
            raise _absent_or_wrong(field, value, "a string")
        if not value:
            raise _reject("missing_field", field, "must not be empty")
        if not value.isprintable():  # ids become keys: no separators, no terminal escapes
            raise _reject("out_of_range", field, "must not contain control characters")
        out[field] = value

    t = get("event_time")
    if type(t) is not int:
        t = parse_event_time(t)
    if t < 0 or t > _MAX_LONG:
        raise _reject("out_of_range", "event_time", "must be epoch millis in [0, 2^63)")
    if now_ms is not None and t > now_ms + limits.max_future_ms:
        raise _reject("future_event", "event_time",
                      f"{t - now_ms} ms ahead of processing time "
                      f"(limit {limits.max_future_ms} ms)")
    out["event_time"] = t

    for field in _REQUIRED_TEXT[4:8]:
        value = get(field)
        if type(value) is not str:
            raise _absent_or_wrong(field, value, "a string")
        if not value:
            raise _reject("missing_field", field, "must not be empty")
        out[field] = value
    jur = out["jurisdiction"]
    if len(jur) != 2 or not (jur.isascii() and jur.isalpha()):
        raise _reject("out_of_range", "jurisdiction", "expected an ISO 3166-1 alpha-2 code")
    if not jur.isupper():
        out["jurisdiction"] = jur.upper()

    text = get("query_text")
    if text is not None and type(text) is not str:
        raise _reject("wrong_type", "query_text", f"expected a string or null, got "
                                                  f"{type(text).__name__}")
    out["query_text"] = text

    latency = _number(record, "response_latency_ms")
    if not 0.0 <= latency <= _MAX_FLOAT:
        raise _reject("out_of_range", "response_latency_ms", "must be finite and >= 0")
    out["response_latency_ms"] = latency

    value = get("model_version")
    if type(value) is not str:
        raise _absent_or_wrong("model_version", value, "a string")
    if not value:
        raise _reject("missing_field", "model_version", "must not be empty")
    out["model_version"] = value

    confidence = _number(record, "confidence")
    if not 0.0 <= confidence <= 1.0:
        raise _reject("out_of_range", "confidence", "must be in [0, 1]")
    out["confidence"] = confidence
    out["resolved"] = _flag(record, "resolved")
    out["escalated"] = _flag(record, "escalated")

    sat = get("satisfaction")
    if sat is not None:
        if type(sat) is not int:
            raise _reject("wrong_type", "satisfaction",
                          f"expected an integer or null, got {type(sat).__name__}")
        if not 1 <= sat <= 5:
            raise _reject("out_of_range", "satisfaction", "must be 1..5 or null")
    out["satisfaction"] = sat
    out["embedding"] = _embedding(get("embedding"), limits.embedding_dim)
    return out
