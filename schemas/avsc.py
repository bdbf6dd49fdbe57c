"""The packaged ``.avsc`` files and the two ways we parse a schema.

The ``.avsc`` files are the source of truth for the wire contracts; pydantic models
are checked against them in tests. Parsing happens on first use (cached), never at
import time.

Two parsed forms exist on purpose:

* :func:`parse` keeps logical types (what a registry hands out, what fastavro users
  expect: ``timestamp-millis`` reads as ``datetime``);
* :func:`parse_raw` strips logical types so the decoder's hot path returns plain
  primitives (``event_time`` as epoch millis) without building a ``datetime`` per
  record. The bytes on the wire are identical for both forms.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import fastavro

from schemas.errors import InvalidSchemaError

CHATBOT_INTERACTION = "chatbot_interaction"
DRIFT_ALERT = "drift_alert"
DEAD_LETTER = "dead_letter"

_FASTAVRO_KEYS = ("__fastavro_parsed", "__named_schemas")


@functools.cache
def schema_text(name: str) -> str:
    """Return the text of the packaged ``schemas/avro/<name>.avsc``."""
    try:
        return resources.files("schemas").joinpath("avro", f"{name}.avsc").read_text("utf-8")
    except FileNotFoundError:
        raise InvalidSchemaError(f"no packaged schema named {name!r}") from None


def load_json(schema: str | dict | list) -> Any:
    """Schema text -> JSON value; dicts and lists pass through."""
    if not isinstance(schema, str):
        return schema
    try:
        return json.loads(schema)
    except ValueError as exc:
        raise InvalidSchemaError(f"not JSON: {exc}") from None


def parse(schema: str | dict | list) -> Any:
    """Parse a schema (text or JSON) with fastavro, keeping logical types."""
    try:
        return fastavro.parse_schema(load_json(schema), _force=True)
    except InvalidSchemaError:
        raise
    except Exception as exc:  # fastavro raises several unrelated types here
        raise InvalidSchemaError(str(exc)) from None


def strip_logical_types(schema: Any) -> Any:
    """Copy of a (parsed or plain) schema without ``logicalType`` or fastavro markers."""
    if isinstance(schema, dict):
        return {
            k: strip_logical_types(v)
            for k, v in schema.items()
            if k != "logicalType" and k not in _FASTAVRO_KEYS
        }
    if isinstance(schema, list):
        return [strip_logical_types(v) for v in schema]
    return schema


def parse_raw(schema: Any) -> Any:
    """Parse for the hot path: logical types removed, so values stay primitives."""
    return parse(strip_logical_types(load_json(schema)))


def canonical_text(schema: str | dict | list) -> str:
    """Compact, key-sorted JSON: how registries decide two texts are the same schema.

    Unlike Avro's Parsing Canonical Form it keeps defaults and aliases, which
    matter for schema resolution.
    """
    plain = without_fastavro_markers(load_json(schema))
    return json.dumps(plain, sort_keys=True, separators=(",", ":"))


def without_fastavro_markers(schema: Any) -> Any:
    """Drop only fastavro's private markers (used before serialising a parsed schema)."""
    if isinstance(schema, dict):
        return {k: without_fastavro_markers(v) for k, v in schema.items()
                if k not in _FASTAVRO_KEYS}
    if isinstance(schema, list):
        return [without_fastavro_markers(v) for v in schema]
    return schema


@functools.cache
def packaged(name: str) -> Any:
    """Parsed (logical types kept) packaged schema, cached."""
    return parse(schema_text(name))


@functools.cache
def packaged_raw(name: str) -> Any:
    """Parsed packaged schema without logical types, cached (the decoder's reader schema)."""
    return parse_raw(schema_text(name))
