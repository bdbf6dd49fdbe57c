"""A schema registry in one JSON file, shared safely by several processes.

The traffic simulator, the Flink job and tests on one machine must agree on schema
ids without running Confluent Schema Registry. Writers take an exclusive ``flock`` on
a sidecar lock file and replace the JSON atomically; readers need no lock because
``os.replace`` is atomic. Ids are global (one id per distinct schema text, reused
across subjects, as Confluent does) and never change once written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from schemas.avsc import canonical_text, parse
from schemas.errors import ConfigError, SchemaNotFound
from schemas.registry import Compatibility, ensure_compatible

_FORMAT = 1


class LocalSchemaRegistry:
    """File-backed :class:`~schemas.registry.SchemaRegistry`.

    File layout: ``{"format": 1, "next_id": n, "schemas": {"<id>": "<schema json>"},
    "subjects": {"<subject>": [id_v1, id_v2, ...]}}`` (version = position + 1).
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 compatibility: Compatibility = "BACKWARD_TRANSITIVE") -> None:
        self.path = Path(path)
        self.compatibility = compatibility
        self._parsed: dict[int, Any] = {}

    def __repr__(self) -> str:
        return f"LocalSchemaRegistry({str(self.path)!r})"

    # -- protocol ------------------------------------------------------------------
    def register(self, subject: str, schema_str: str) -> int:
        parse(schema_str)  # InvalidSchemaError before taking the lock
        text = canonical_text(schema_str)
        with self._locked():
            state = self._read()
            ids: list[int] = state["subjects"].get(subject, [])
            for sid in ids:
                if state["schemas"][str(sid)] == text:
                    return sid
            earlier = [(v, state["schemas"][str(sid)]) for v, sid in enumerate(ids, start=1)]
            ensure_compatible(subject, text, earlier, self.compatibility)
            found = next((int(k) for k, v in state["schemas"].items() if v == text), None)
            sid = state["next_id"] if found is None else found
            if found is None:
                state["next_id"] = sid + 1
                state["schemas"][str(sid)] = text
            state["subjects"][subject] = [*ids, sid]
            self._write(state)
            return sid

    def schema_by_id(self, schema_id: int) -> Any:
        parsed = self._parsed.get(schema_id)
        if parsed is None:
            text = self._read()["schemas"].get(str(schema_id))
            if text is None:
                raise SchemaNotFound(f"id {schema_id} in {self.path}")
            parsed = self._parsed[schema_id] = parse(text)
        return parsed

    def latest(self, subject: str) -> tuple[int, Any]:
        ids = self._read()["subjects"].get(subject)
        if not ids:
            raise SchemaNotFound(f"subject {subject!r} in {self.path}")
        return ids[-1], self.schema_by_id(ids[-1])

    # -- extras --------------------------------------------------------------------
    def versions(self, subject: str) -> list[int]:
        """Schema ids of a subject, oldest first."""
        return list(self._read()["subjects"].get(subject, []))

    # -- file handling -------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"format": _FORMAT, "next_id": 1, "schemas": {}, "subjects": {}}
        try:
            state = json.loads(raw)
        except ValueError:
            raise ConfigError("schema registry state", f"{self.path} is not valid JSON") from None
        if state.get("format") != _FORMAT:
            raise ConfigError("schema registry state",
                              f"{self.path} has format {state.get('format')!r}, expected {_FORMAT}")
        return state

    def _write(self, state: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
