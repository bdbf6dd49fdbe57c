"""The one root exception of driftline and its direct families.

Every error driftline raises on purpose derives from :class:`DriftlineError`, so a
caller can catch ours without catching Python's own. Each subclass carries the
fields a caller needs to act (which field, which service, which kind of bad record).
"""

from __future__ import annotations

from typing import Literal

RejectionKind = Literal[
    "oversized",  # value longer than ValidationLimits.max_record_bytes
    "truncated",  # empty value, or an Avro frame/body that ends early
    "bad_magic",  # neither Avro (magic byte 0) nor JSON (first non-space byte "{")
    "invalid_avro",  # Avro body corrupt, or bytes left after the record
    "unknown_schema",  # the writer schema id is not in the registry
    "incompatible_schema",  # the writer schema cannot be read with the reader schema
    "invalid_json",  # not UTF-8 JSON, or not a JSON object
    "missing_field",  # a required field is absent, null or empty
    "wrong_type",  # a field has the wrong type (or an unparseable timestamp)
    "out_of_range",  # confidence, satisfaction, latency, event_time, jurisdiction
    "future_event",  # event_time beyond now + ValidationLimits.max_future_ms
    "bad_embedding",  # embedding of the wrong dimension or with non-finite values
    "duplicate",  # interaction_id already seen within the dedup window
]
#: Every value :attr:`RecordRejected.kind` can take; a closed set so dashboards and
#: dead-letter consumers can switch on it.
REJECTION_KINDS: tuple[str, ...] = RejectionKind.__args__  # type: ignore[attr-defined]


class DriftlineError(Exception):
    """Root of every error driftline raises on purpose."""


class ConfigError(DriftlineError):
    """A configuration value is missing or invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid configuration for {field!r}: {message}")
        self.field = field


class ServiceUnavailable(DriftlineError):
    """A service we depend on does not answer; ``hint`` says how to start it."""

    def __init__(self, service: str, address: str, hint: str) -> None:
        super().__init__(f"{service} is not reachable at {address}. {hint}")
        self.service = service
        self.address = address
        self.hint = hint


class InvalidSchemaError(DriftlineError):
    """A schema text is not valid Avro (bad JSON or rejected by fastavro)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid Avro schema: {message}")


class SchemaCompatibilityError(DriftlineError):
    """A new schema version cannot read data written with an earlier one.

    ``field`` is the dotted path of the first offending field (``""`` for the
    top-level record), so the producer knows what to fix.
    """

    def __init__(self, subject: str, field: str, reason: str, version: int | None = None) -> None:
        against = f" (against version {version})" if version is not None else ""
        where = f"field {field!r}" if field else "top-level schema"
        super().__init__(
            f"schema for subject {subject!r} is not BACKWARD compatible{against}: {where}: {reason}"
        )
        self.subject = subject
        self.field = field
        self.reason = reason
        self.version = version

    def __reduce__(self):  # keep picklable despite the custom signature
        return (type(self), (self.subject, self.field, self.reason, self.version))


class SchemaNotFound(DriftlineError):
    """A registry has no schema under this id or subject."""

    def __init__(self, what: str) -> None:
        super().__init__(f"schema not found: {what}")
        self.what = what

    def __reduce__(self):
        return (type(self), (self.what,))


class RecordRejected(DriftlineError):
    """One input record failed decoding or validation and goes to the dead-letter topic.

    ``kind`` is one of :data:`REJECTION_KINDS`; ``field`` names the
    offending field when there is one. The message never contains raw record text.
    """

    def __init__(self, kind: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.field = field

    def __reduce__(self):
        return (type(self), (self.kind, self.message, self.field))
