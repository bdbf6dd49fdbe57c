"""BACKWARD compatibility check between two Avro schemas (Avro's resolution rules).

A new schema is BACKWARD compatible when it can read, as reader schema, every record
written with the old one. The decoder relies on this: it reads every registered
version with the current schema. Confluent's server checks the same rule; the local
registry and Confluent's in-memory mock do not, so both registries call this first
and the error names the offending field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.avsc import parse, without_fastavro_markers

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
#: writer type -> reader types it may be promoted to (Avro specification, "Schema Resolution").
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


@dataclass(frozen=True)
class Incompatibility:
    """One reason the reader cannot read the writer's data; ``path`` is dotted."""

    path: str
    reason: str


def check_backward(reader: Any, writer: Any) -> list[Incompatibility]:
    """Everything that stops ``reader`` (new) from reading data written with ``writer`` (old).

    Both arguments are schema texts, JSON values or fastavro-parsed schemas. An empty
    list means compatible.
    """
    r_parsed, w_parsed = parse(_as_input(reader)), parse(_as_input(writer))
    checker = _Checker(_named(r_parsed), _named(w_parsed))
    checker.check(without_fastavro_markers(r_parsed), without_fastavro_markers(w_parsed), "")
    return checker.issues


def _as_input(schema: Any) -> Any:
    return without_fastavro_markers(schema) if isinstance(schema, dict | list) else schema


def _named(parsed: Any) -> dict[str, Any]:
    named = parsed.get("__named_schemas", {}) if isinstance(parsed, dict) else {}
    return {name: without_fastavro_markers(d) for name, d in named.items()}


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Checker:
    def __init__(self, r_named: dict[str, Any], w_named: dict[str, Any]) -> None:
        self.r_named, self.w_named = r_named, w_named
        self.issues: list[Incompatibility] = []
        self._in_progress: set[tuple[str, str]] = set()

    # -- helpers -------------------------------------------------------------------
    @staticmethod
    def _resolve(node: Any, named: dict[str, Any]) -> Any:
        """Follow name references and ``{"type": {...}}`` wrappers to a definition."""
        while True:
            if isinstance(node, str):
                return named.get(node, {"type": node})
            if not isinstance(node, dict):
                return node  # a union
            inner = node.get("type")
            if isinstance(inner, dict | list):
                node = inner
            elif isinstance(inner, str) and inner in named:
                return named[inner]
            else:
                return node

    @staticmethod
    def _label(node: Any) -> str:
        if isinstance(node, list):
            return "union[" + ", ".join(_Checker._label(b) for b in node) + "]"
        if isinstance(node, dict):
            t = node.get("type")
            if t in ("record", "enum", "fixed"):
                return f"{t} {node.get('name')}"
            return str(t)
        return str(node)

    def _matches(self, reader: Any, writer: Any) -> bool:
        probe = _Checker(self.r_named, self.w_named)
        probe._in_progress = set(self._in_progress)
        probe.check(reader, writer, "")
        return not probe.issues

    def _fail(self, path: str, reason: str) -> None:
        self.issues.append(Incompatibility(path, reason))

    # -- rules ---------------------------------------------------------------------
    def check(self, reader: Any, writer: Any, path: str) -> None:
        r = self._resolve(reader, self.r_named)
        w = self._resolve(writer, self.w_named)
        if isinstance(w, list):
            for branch in w:
                self.check(r, branch, path)
            return
        if isinstance(r, list):
            branches = [self._resolve(b, self.r_named) for b in r]
            for branch in branches:  # Avro picks the first reader branch that matches
                if self._matches(branch, w):
                    return
            same_kind = [b for b in branches if isinstance(b, dict) and b.get("type") == w["type"]]
            if same_kind:  # report the deeper reason (e.g. array items changed)
                self.check(same_kind[0], w, path)
                return
            self._fail(path, f"writer type {self._label(w)} matches no branch of reader "
                             f"{self._label(r)}")
            return
        rt, wt = r.get("type"), w.get("type")
        if wt == "null" and rt != "null":
            self._fail(path, f"earlier schema allows null here but the new type {self._label(r)} "
                             "does not")
            return
        if wt in PRIMITIVES and rt in PRIMITIVES:
            if rt != wt and rt not in PROMOTIONS.get(wt, ()):
                self._fail(path, f"type changed from {wt} to {rt}, which Avro cannot promote")
            return
        if rt != wt:
            self._fail(path, f"type changed from {self._label(w)} to {self._label(r)}")
            return
        if rt == "record":
            self._record(r, w, path)
        elif rt == "enum":
            self._enum(r, w, path)
        elif rt == "fixed":
            self._named_match(r, w, path)
            if r.get("size") != w.get("size"):
                self._fail(path, f"fixed size changed from {w.get('size')} to {r.get('size')}")
        elif rt == "array":
            self.check(r["items"], w["items"], f"{path}[]")
        elif rt == "map":
            self.check(r["values"], w["values"], f"{path}{{}}")

    def _named_match(self, r: dict, w: dict, path: str) -> bool:
        names = {_short(r["name"])} | {_short(a) for a in r.get("aliases", ())}
        if _short(w["name"]) not in names:
            self._fail(path, f"named type {w['name']} renamed to {r['name']} without an alias")
            return False
        return True

    def _record(self, r: dict, w: dict, path: str) -> None:
        if not self._named_match(r, w, path):
            return
        key = (r["name"], w["name"])
        if key in self._in_progress:  # recursive type already being compared
            return
        self._in_progress.add(key)
        w_fields = {f["name"]: f for f in w.get("fields", ())}
        for rf in r.get("fields", ()):
            sub = f"{path}.{rf['name']}" if path else rf["name"]
            wf = next((w_fields[n] for n in (rf["name"], *rf.get("aliases", ())) if n in w_fields),
                      None)
            if wf is None:
                if "default" not in rf:
                    self._fail(sub, "new field has no default, so records written with the "
                                    "earlier schema cannot be read")
                continue
            self.check(rf["type"], wf["type"], sub)
        self._in_progress.discard(key)

    def _enum(self, r: dict, w: dict, path: str) -> None:
        if not self._named_match(r, w, path):
            return
        missing = [s for s in w.get("symbols", ()) if s not in r.get("symbols", ())]
        if missing and "default" not in r:
            self._fail(path, f"enum symbols removed without a reader default: {missing}")
