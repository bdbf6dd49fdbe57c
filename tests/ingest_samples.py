"""Shared inputs for the ingestion tests: a valid interaction and a fixed clock.

Kept as plain data so every test states its own expectation from it.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from schemas.validation import ValidationLimits

NOW_MS = 1_760_000_000_000  # a fixed "processing time" (2025-10-09)
EMBEDDING_DIM = 4
LIMITS = ValidationLimits(embedding_dim=EMBEDDING_DIM)

_BASE: dict[str, Any] = {
    "interaction_id": "ix-0001",
    "tenant_id": "acme-emea",
    "employee_id": "emp-000042",
    "session_id": "ses-000042-0001",
    "event_time": NOW_MS - 60_000,
    "channel": "slack",
    "locale": "en-GB",
    "jurisdiction": "GB",
    "intent": "payroll",
    "query_text": "Why is my bonus missing from my March payslip?",
    "response_latency_ms": 812.5,
    "model_version": "hr-assist-3.2.0",
    "confidence": 0.75,
    "resolved": True,
    "escalated": False,
    "satisfaction": 4,
    "embedding": [0.5, -0.25, 0.125, 1.0],
}


def interaction(**overrides: Any) -> dict[str, Any]:
    """A valid interaction (embedding dimension 4) with ``overrides`` applied."""
    record = copy.deepcopy(_BASE)
    record.update(overrides)
    return record


def unique(prefix: str) -> str:
    """A name no other test (or earlier run) uses: topics, mock registry URLs."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
