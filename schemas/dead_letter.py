"""What a rejected record becomes on ``hr.chatbot.interactions.dlq``.

Nothing is dropped silently, and nothing leaves ingestion unredacted. The dead
letter keeps the original key and value (so a fixed consumer or a human can replay
it) with PII overwritten in place, and carries the reason in ``driftline.*``
headers; :func:`read_dead_letter` turns one back into the
:class:`~schemas.models.DeadLetter` view that ``schemas/avro/dead_letter.avsc``
describes.

Redaction of the value (see docs/ingestion.md):

* any payload is scanned byte-wise as Latin-1 and each PII span is overwritten by
  its tag padded to the same length (``[EMAIL]*****``), so the byte length, the
  JSON structure and Avro string length prefixes stay as they were. One caveat: a
  string that *starts* with PII may have its Avro length byte swallowed into the
  span when that byte happens to be a printable letter/digit; the value is then no
  longer decodable, but no PII survives.
* JSON can hide characters behind ``\\uXXXX`` escapes, which a byte scan cannot see.
  When a JSON value contains escapes and parses, its decoded strings are scanned
  too; if they still hold PII the value is re-serialised from the redacted object
  (header ``driftline.value.rewritten: 1``), giving up byte fidelity for privacy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from schemas.models import DeadLetter
from schemas.pii import redact, redact_payload

H_KIND = "driftline.error.kind"
H_MESSAGE = "driftline.error.message"
H_TOPIC = "driftline.source.topic"
H_PARTITION = "driftline.source.partition"
H_OFFSET = "driftline.source.offset"
H_REJECTED_AT = "driftline.rejected_at"
H_ENCODING = "driftline.value.encoding"  # avro | json | unknown | none
H_REDACTED = "driftline.redacted"  # e.g. "CARD=1,EMAIL=2"; empty when nothing was found
H_REWRITTEN = "driftline.value.rewritten"  # "1" when the JSON value had to be re-serialised
H_TRUNCATED = "driftline.value.truncated"  # "1" when the value was cut to fit the topic
H_ORIGINAL_BYTES = "driftline.value.original_bytes"  # size of the whole (redacted) value
H_SHA256 = "driftline.value.sha256"  # hex digest of the whole redacted value
MAX_MESSAGE_CHARS = 1000

Headers = list[tuple[str, str | bytes | None]]


def build_dead_letter(
    kind: str,
    message: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    now_ms: int,
    max_value_bytes: int | None = None,
) -> tuple[bytes | None, bytes | None, Headers]:
    """(key, value, headers) to produce on the dead-letter topic for one rejected record.

    A value longer than ``max_value_bytes`` (what the topic accepts) is cut to that size
    after redaction; headers then give the whole value's size and hash, so the record
    still reaches the topic and can be matched against the producer's copy.
    """
    counts: dict[str, int] = {}
    dl_key = None
    if key is not None:
        dl_key, key_counts = redact_payload(bytes(key))
        _add(counts, key_counts)
    dl_value, rewritten = None, False
    if value is not None:
        dl_value, value_counts, rewritten = _redact_value(bytes(value))
        _add(counts, value_counts)
    text = redact(message[:MAX_MESSAGE_CHARS]).text
    headers: Headers = [
        (H_KIND, kind.encode()),
        (H_MESSAGE, text.encode("utf-8", "replace")),
        (H_TOPIC, topic.encode()),
        (H_PARTITION, str(int(partition)).encode()),
        (H_OFFSET, str(int(offset)).encode()),
        (H_REJECTED_AT, str(int(now_ms)).encode()),
        (H_ENCODING, _encoding(value).encode()),
        (H_REDACTED, ",".join(f"{k}={n}" for k, n in sorted(counts.items())).encode()),
    ]
    if rewritten:
        headers.append((H_REWRITTEN, b"1"))
    if dl_value is not None and max_value_bytes is not None and len(dl_value) > max_value_bytes:
        headers += [(H_TRUNCATED, b"1"), (H_ORIGINAL_BYTES, str(len(dl_value)).encode()),
                    (H_SHA256, hashlib.sha256(dl_value).hexdigest().encode())]
        dl_value = dl_value[:max_value_bytes]
    return dl_key, dl_value, headers


def read_dead_letter(
    key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]] | None
) -> DeadLetter:
    """The structured view of a dead letter consumed from the topic."""
    h = {name: (raw or b"").decode("utf-8", "replace") for name, raw in headers or ()}
    return DeadLetter(
        key=key, value=value, error_kind=h.get(H_KIND, ""), error_message=h.get(H_MESSAGE, ""),
        source_topic=h.get(H_TOPIC, ""), source_partition=int(h.get(H_PARTITION, "-1")),
        source_offset=int(h.get(H_OFFSET, "-1")), rejected_at=int(h.get(H_REJECTED_AT, "0")))


def _encoding(value: bytes | None) -> str:
    if value is None or not value:
        return "none"
    if value[0] == 0:
        return "avro"
    return "json" if value.lstrip()[:1] == b"{" else "unknown"


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for kind, n in more.items():
        total[kind] = total.get(kind, 0) + n


def _redact_value(value: bytes) -> tuple[bytes, dict[str, int], bool]:
    redacted, counts = redact_payload(value)
    if b"\\" not in value or value.lstrip()[:1] != b"{":
        return redacted, counts, False
    try:
        parsed = json.loads(redacted)
    except (ValueError, RecursionError):
        return redacted, counts, False
    extra: dict[str, int] = {}
    cleaned = _redact_strings(parsed, extra)
    if not extra:
        return redacted, counts, False
    _add(counts, extra)
    out = json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode()
    return out, counts, True


def _redact_strings(node: Any, counts: dict[str, int]) -> Any:
    if isinstance(node, str):
        result = redact(node)
        _add(counts, result.counts_by_kind)
        return result.text
    if isinstance(node, list):
        return [_redact_strings(v, counts) for v in node]
    if isinstance(node, dict):
        return {_redact_strings(k, counts): _redact_strings(v, counts) for k, v in node.items()}
    return node
