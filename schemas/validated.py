"""The validated stream: what ingestion hands to the feature and drift windows.

Every accepted input record leaves the decode step once, as these columns, and the windows
read them on its ``event_time`` (docs/semantics.md).

Its columns are the ``ChatbotInteraction`` contract without ``query_text`` (free text
that may hold PII has no use downstream, so it never leaves ingestion, even redacted),
plus what ingestion adds: ``pii_redactions`` and where the record came from.

A float array (the embedding) travels packed: its little-endian float32 bytes as one
base64 string. As an array of numbers, every record's embedding was boxed and copied
float by float in the JVM: packing took a third off the drain's CPU
(benchmarks/READING.md).
(A string, not Flink's BYTES: the planner cannot compile an ``ARRAY<BYTES>``, which the
drift slices would gather.)
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

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


#: How a ``float_array`` column is packed.
PACKED_FLOAT = np.dtype("<f4")


def packed_columns() -> frozenset[str]:
    """The validated columns that travel packed (:func:`pack_floats`)."""
    return frozenset(c for c, kind in column_types().items() if kind == "float_array")


def pack_floats(values: Sequence[float] | None) -> str | None:
    """A float array as the validated stream carries it (None stays None)."""
    if values is None:
        return None
    return base64.b64encode(np.asarray(values, dtype=PACKED_FLOAT).tobytes()).decode("ascii")


def _unpacked(packed: str | None) -> bytes | None:
    """The bytes of one packed array; None for none, or for what is not one (a record
    written before arrays were packed), which the drift checks count as missing."""
    if packed is None:
        return None
    try:
        blob = base64.b64decode(packed, validate=True)
    except ValueError:
        return None
    return blob if len(blob) % PACKED_FLOAT.itemsize == 0 else None


def unpack_floats(packed: Sequence[str | None]) -> np.ndarray | list[np.ndarray | None]:
    """Packed arrays of a batch of records as one float32 matrix, a NaN row where a record
    had none (drift/inputs.py counts such rows as missing); arrays of different lengths
    (the model changed mid-batch) row by row, for the drift check to reject."""
    blobs = [_unpacked(p) for p in packed]
    present = [b for b in blobs if b is not None]
    sizes = {len(b) for b in present}
    if len(sizes) != 1:  # none at all, or of different lengths
        return [None if b is None else np.frombuffer(b, PACKED_FLOAT) for b in blobs]
    dim = sizes.pop() // PACKED_FLOAT.itemsize
    rows = np.frombuffer(b"".join(present), PACKED_FLOAT).reshape(len(present), dim)
    if len(present) == len(blobs):
        return rows
    matrix = np.full((len(blobs), dim), np.nan, dtype=PACKED_FLOAT)
    matrix[[b is not None for b in blobs]] = rows
    return matrix
