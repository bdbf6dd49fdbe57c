"""Confluent Schema Registry behind the driftline registry protocol.

Wraps confluent-kafka's own ``SchemaRegistryClient`` (so auth, TLS and caching are
theirs); ``mock://`` URLs give its in-memory mock (shared per URL within a process),
which is what unit tests use; ``client`` injects an existing client (e.g. the one a
confluent ``AvroSerializer`` already uses). The mock does no compatibility checking
and a real server may be configured laxer than we need, so :meth:`register` checks
BACKWARD(_TRANSITIVE) compatibility itself first.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from schemas.avsc import canonical_text, parse
from schemas.errors import (
    InvalidSchemaError,
    SchemaCompatibilityError,
    SchemaNotFound,
    ServiceUnavailable,
)
from schemas.registry import Compatibility, ensure_compatible

_HINT = ("Start Schema Registry, fix the registry URL, or leave it unset to use the local "
         "file registry in the state directory.")


def _transport_errors() -> tuple[type[BaseException], ...]:
    try:  # the client's own HTTP library (httpx or its fork), whichever it ships
        from confluent_kafka.schema_registry.common._httpx_compat import httpx
    except ImportError:  # pragma: no cover - depends on the client version
        return (OSError,)
    return (OSError, httpx.HTTPError)


_MOCK_CLIENTS: dict[str, SchemaRegistryClient] = {}


def _mock_client(url: str) -> SchemaRegistryClient:
    """One in-memory mock per ``mock://`` URL in this process.

    confluent-kafka gives every ``new_client`` call its own empty mock; sharing by URL
    makes a serializer and a decoder built from the same settings see the same
    schemas, as they would against a real server.
    """
    client = _MOCK_CLIENTS.get(url)
    if client is None:
        client = _MOCK_CLIENTS[url] = SchemaRegistryClient.new_client({"url": url})
    return client


class ConfluentSchemaRegistry:
    """:class:`~schemas.registry.SchemaRegistry` over Confluent Schema Registry."""

    def __init__(self, url: str, *, conf: dict[str, Any] | None = None,
                 compatibility: Compatibility = "BACKWARD_TRANSITIVE",
                 client: SchemaRegistryClient | None = None) -> None:
        self.url = url
        self.compatibility = compatibility
        if client is None:
            client = _mock_client(url) if url.startswith("mock://") else \
                SchemaRegistryClient.new_client({**(conf or {}), "url": url})
        self.client = client
        self._parsed: dict[int, Any] = {}
        self._errors = _transport_errors()

    def __repr__(self) -> str:
        return f"ConfluentSchemaRegistry({self.url!r})"

    def register(self, subject: str, schema_str: str) -> int:
        parse(schema_str)
        text = canonical_text(schema_str)
        try:
            versions = sorted(self.client.get_versions(subject))
        except SchemaRegistryError as exc:
            if exc.http_status_code != 404:
                raise self._service(exc) from exc
            versions = []
        except self._errors as exc:
            raise self._service(exc) from exc
        earlier = []
        for v in versions:
            rs = self._call(self.client.get_version, subject, v)
            if canonical_text(rs.schema.schema_str) == text:
                return int(rs.schema_id)
            earlier.append((v, rs.schema.schema_str))
        ensure_compatible(subject, text, earlier, self.compatibility)
        try:
            return int(self.client.register_schema(subject, Schema(text, "AVRO")))
        except SchemaRegistryError as exc:
            if exc.http_status_code == 409:
                raise SchemaCompatibilityError(subject, "", f"refused by the registry: "
                                                            f"{exc.error_message}") from exc
            if exc.http_status_code == 422:
                raise InvalidSchemaError(exc.error_message) from exc
            raise self._service(exc) from exc
        except self._errors as exc:
            raise self._service(exc) from exc

    def schema_by_id(self, schema_id: int) -> Any:
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            schema = self._call(self.client.get_schema, schema_id, what=f"id {schema_id}")
            parsed = self._parsed[schema_id] = parse(schema.schema_str)
        return parsed

    def latest(self, subject: str) -> tuple[int, Any]:
        rs = self._call(self.client.get_latest_version, subject, what=f"subject {subject!r}")
        return int(rs.schema_id), self.schema_by_id(int(rs.schema_id))

    # -- errors --------------------------------------------------------------------
    def _call(self, fn: Any, *args: Any, what: str = "") -> Any:
        try:
            return fn(*args)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise SchemaNotFound(f"{what or args} at {self.url}") from exc
            raise self._service(exc) from exc
        except self._errors as exc:
            raise self._service(exc) from exc

    def _service(self, exc: BaseException) -> ServiceUnavailable:
        return ServiceUnavailable("Schema Registry", self.url, f"{_HINT} ({exc})")
