"""The schema-registry protocol every component codes against, and its factory.

Producers, the Flink jobs and tests must agree on schema ids, so they all go through
one of two implementations: a file-backed local registry for development and tests,
or Confluent Schema Registry in production. Both refuse BACKWARD-incompatible
versions with :class:`~schemas.errors.SchemaCompatibilityError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from schemas.compat import check_backward
from schemas.errors import ConfigError, SchemaCompatibilityError

#: ``BACKWARD_TRANSITIVE`` (default) checks a new version against every earlier one,
#: which is what the decoder needs: it reads all versions with the newest schema.
Compatibility = Literal["BACKWARD", "BACKWARD_TRANSITIVE", "NONE"]

LOCAL_STATE_FILE = "schema-registry.json"


@runtime_checkable
class SchemaRegistry(Protocol):
    """What the serde needs from a registry; ids are immutable once assigned."""

    def register(self, subject: str, schema_str: str) -> int:
        """Register (idempotently) and return the schema id; refuse incompatible versions."""
        ...

    def schema_by_id(self, schema_id: int) -> Any:
        """fastavro-parsed schema for an id; :class:`SchemaNotFound` if unknown."""
        ...

    def latest(self, subject: str) -> tuple[int, Any]:
        """(id, parsed schema) of the newest version; :class:`SchemaNotFound` if none."""
        ...


def ensure_compatible(
    subject: str,
    new_schema: Any,
    earlier: list[tuple[int, Any]],
    level: Compatibility,
) -> None:
    """Raise :class:`SchemaCompatibilityError` naming the first offending field.

    ``earlier`` is ``[(version, schema), ...]`` oldest first.
    """
    if level == "NONE" or not earlier:
        return
    against = earlier if level == "BACKWARD_TRANSITIVE" else earlier[-1:]
    for version, old in reversed(against):
        issues = check_backward(new_schema, old)
        if issues:
            first = issues[0]
            extra = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
            raise SchemaCompatibilityError(subject, first.path, first.reason + extra, version)


def make_registry(
    url_or_none: str | None,
    state_dir: str | os.PathLike[str] | None = None,
    *,
    compatibility: Compatibility = "BACKWARD_TRANSITIVE",
) -> SchemaRegistry:
    """Build the registry a deployment is configured for.

    * ``None`` or ``""``: :class:`LocalSchemaRegistry` at ``<state_dir>/schema-registry.json``;
    * ``file:///path/to/registry.json``: the same, at an explicit file;
    * ``http(s)://host:port`` or ``mock://name``: :class:`ConfluentSchemaRegistry`.
    """
    if not url_or_none:
        if state_dir is None:
            raise ConfigError("state_dir", "needed for the local schema registry when no "
                                           "registry URL is configured")
        from schemas.registry_local import LocalSchemaRegistry

        return LocalSchemaRegistry(Path(state_dir) / LOCAL_STATE_FILE, compatibility=compatibility)
    if url_or_none.startswith("file://"):
        from schemas.registry_local import LocalSchemaRegistry

        return LocalSchemaRegistry(url_or_none.removeprefix("file://"), compatibility=compatibility)
    if url_or_none.startswith(("http://", "https://", "mock://")):
        from schemas.registry_confluent import ConfluentSchemaRegistry

        return ConfluentSchemaRegistry(url_or_none, compatibility=compatibility)
    raise ConfigError("schema_registry_url",
                      "expected http(s)://, mock:// or file:// (or none for the local registry)")
