"""Confluent wire format: magic byte 0, 4-byte big-endian schema id, schemaless Avro body.

This is the framing every Confluent client (Java, librdkafka, kcat -s avro) writes, so
records produced by any of them decode here and ours decode there.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas.errors import RecordRejected

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")
HEADER_SIZE = HEADER.size  # 5


def encode(schema_id: int, parsed_schema: Any, record: dict[str, Any]) -> bytes:
    """Frame ``record`` written with ``parsed_schema`` under ``schema_id``."""
    buf = io.BytesIO()
    buf.write(HEADER.pack(MAGIC_BYTE, schema_id))
    schemaless_writer(buf, parsed_schema, record)
    return buf.getvalue()


def schema_id_of(value: bytes) -> int:
    """The schema id in a framed value; :class:`RecordRejected` if the frame is not ours."""
    if len(value) < HEADER_SIZE:
        raise RecordRejected("truncated", f"{len(value)} bytes is shorter than the "
                                               f"{HEADER_SIZE}-byte wire-format header")
    magic, schema_id = HEADER.unpack_from(value)
    if magic != MAGIC_BYTE:
        raise RecordRejected("bad_magic", f"magic byte {magic} is not {MAGIC_BYTE}")
    return schema_id


def decode_body(value: bytes, writer_schema: Any, reader_schema: Any = None) -> Any:
    """Decode the Avro body after the header, resolving writer -> reader schema.

    Raises :class:`RecordRejected`: ``truncated`` when the body ends early,
    ``invalid_avro`` when it is corrupt or has bytes left over after the record.
    """
    buf = io.BytesIO(value)
    buf.seek(HEADER_SIZE)
    try:
        record = schemaless_reader(buf, writer_schema, reader_schema)
    except EOFError:
        raise RecordRejected("truncated", "Avro body ends before the record does") from None
    except Exception as exc:  # fastavro raises many unrelated types on corrupt input
        raise RecordRejected("invalid_avro",
                             f"Avro body is corrupt ({type(exc).__name__})") from None
    if buf.tell() != len(value):
        raise RecordRejected("invalid_avro",
                             f"{len(value) - buf.tell()} bytes left after the Avro record")
    return record


def decode(value: bytes, writer_schema: Any, reader_schema: Any = None) -> Any:
    """Header check plus :func:`decode_body` (the caller already holds the writer schema)."""
    schema_id_of(value)
    return decode_body(value, writer_schema, reader_schema)
