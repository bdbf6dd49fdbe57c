"""The validated stream: what ingestion hands to the feature and drift windows.

Every accepted input record is written once to ``<input>.validated`` (``topics.validated``),
on the partition number it was read from, with its Kafka record timestamp set to the
payload's ``event_time``. The windows read that topic, so their per-partition watermarks
follow event time whatever timestamp the original producer set (docs/semantics.md).

Its columns are the ``ChatbotInteraction`` contract without ``query_text`` (free text
that may hold PII has no use downstream, so it never leaves ingestion, even redacted),
plus what ingestion adds: ``pii_redactions`` and where the record came from.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from schemas import avsc

#: Contract fields that stay in ingestion.
DROPPED = frozenset({"query_text"})
#: Columns ingestion adds: redaction count, source partition and offset (the offset is
#: also the tie-break of ``last`` features and the resume point after a restore).
ADDED = {"pii_redactions": "int", "source_partition": "int", "source_offset": "long"}
_AVRO_TYPES = {"string": "string", "long": "long", "double": "double", "boolean": "boolean",
               "int": "int", "float": "float"}


def _column_type(avro_type: object) -> str:
    if isinstance(avro_type, list):  # ["null", T]: nullable T
        (inner,) = [t for t in avro_type if t != "null"]
        return _column_type(inner)
    if isinstance(avro_type, dict):
        if avro_type.get("type") == "array":
            return f"{_column_type(avro_type['items'])}_array"
        return _column_type(avro_type["type"])
    return _AVRO_TYPES[str(avro_type)]


@functools.cache
def column_types() -> Mapping[str, str]:
    """Column -> type (``string``, ``long``, ``int``, ``double``, ``boolean``,
    ``float_array``), in contract order, derived from ``chatbot_interaction.avsc``."""
    schema = avsc.load_json(avsc.schema_text(avsc.CHATBOT_INTERACTION))
    types = {f["name"]: _column_type(f["type"]) for f in schema["fields"]
             if f["name"] not in DROPPED}
    return MappingProxyType({**types, **ADDED})
