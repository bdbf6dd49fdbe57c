"""Default topic names from the design contract and the registry subject naming rule.

Deployments override topic names in their settings (built in ``streams/``); these are
only the defaults and the one naming rule everybody must share.
"""

from __future__ import annotations

INTERACTIONS_TOPIC = "hr.chatbot.interactions"
DEAD_LETTER_TOPIC = "hr.chatbot.interactions.dlq"
ALERTS_TOPIC = "hr.drift.alerts"


def value_subject(topic: str) -> str:
    """Registry subject for a topic's values (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"
