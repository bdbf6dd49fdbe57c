"""Pydantic models of the three wire contracts, for Python code that builds or reads them.

The ``.avsc`` files in ``schemas/avro/`` are the source of truth;
``tests/unit/test_schema_models.py`` fails when a model and its schema disagree on
field names, order, optionality or types. Timestamps are epoch milliseconds (``int``)
here, as on the wire, so no timezone conversion can creep in.

The decoder's hot path does not go through these models (see
:mod:`schemas.validation`, which is about ten times faster); producers of rare
records (alerts, dead letters) and tools do.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChatbotInteraction(_Contract):
    """One chatbot turn (``hr.chatbot.ChatbotInteraction``)."""

    interaction_id: str
    tenant_id: str
    employee_id: str
    session_id: str
    event_time: int = Field(description="timestamp-millis")
    channel: str
    locale: str
    jurisdiction: str
    intent: str
    query_text: str | None = None
    response_latency_ms: float
    model_version: str
    confidence: float
    resolved: bool
    escalated: bool
    satisfaction: int | None = None
    embedding: list[float] | None = None


class DriftAlert(_Contract):
    """A drift detection (``hr.drift.DriftAlert``); ``details`` is a JSON object as text."""

    alert_id: str
    monitor: str
    tenant_id: str | None = None
    feature: str
    statistic: str
    value: float
    threshold: float
    p_value: float | None = None
    window_start: int = Field(description="timestamp-millis")
    window_end: int = Field(description="timestamp-millis")
    n_window: int
    n_reference: int
    reference_id: str
    severity: str
    detected_at: int = Field(description="timestamp-millis")
    details: str


class DeadLetter(_Contract):
    """A rejected record as read back from the dead-letter topic (``hr.chatbot.DeadLetter``).

    On the topic it is the redacted original key and value plus ``driftline.*``
    headers (see :mod:`schemas.dead_letter`); this is the structured view of one.
    """

    key: bytes | None = None
    value: bytes | None = None
    error_kind: str
    error_message: str
    source_topic: str
    source_partition: int
    source_offset: int
    rejected_at: int = Field(description="timestamp-millis")


#: model -> packaged schema name (``schemas/avro/<name>.avsc``)
MODEL_SCHEMAS: dict[type[BaseModel], str] = {
    ChatbotInteraction: "chatbot_interaction",
    DriftAlert: "drift_alert",
    DeadLetter: "dead_letter",
}
