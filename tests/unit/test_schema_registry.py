"""Schema registries: the shared local file and confluent-kafka's client (mock://)."""

from __future__ import annotations

import json
import multiprocessing

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas import avsc
from schemas.errors import ConfigError, SchemaCompatibilityError, SchemaNotFound
from schemas.registry import make_registry
from schemas.registry_confluent import ConfluentSchemaRegistry
from schemas.registry_local import LocalSchemaRegistry
from tests.ingest_samples import unique

INTERACTION = avsc.schema_text("chatbot_interaction")
ALERT = avsc.schema_text("drift_alert")


def _with_field(schema_text: str, name: str, change) -> str:
    schema = json.loads(schema_text)
    for field in schema["fields"]:
        if field["name"] == name:
            change(field)
    return json.dumps(schema)


def _registries(tmp_path):
    return [make_registry(None, tmp_path), make_registry(unique("mock://reg"))]


def test_two_local_instances_on_one_file_agree(tmp_path):
    a = make_registry(None, tmp_path)
    b = make_registry(None, tmp_path)
    assert isinstance(a, LocalSchemaRegistry)
    id_a = a.register("hr.chatbot.interactions-value", INTERACTION)
    id_b = b.register("hr.drift.alerts-value", ALERT)
    assert id_a != id_b
    assert b.register("hr.chatbot.interactions-value", INTERACTION) == id_a  # idempotent
    # each instance reads what the other wrote (not a cache of its own)
    assert a.schema_by_id(id_b)["name"] == "hr.drift.DriftAlert"
    assert b.schema_by_id(id_a)["name"] == "hr.chatbot.ChatbotInteraction"
    on_disk = json.loads((tmp_path / "schema-registry.json").read_text())
    assert on_disk["subjects"] == {"hr.chatbot.interactions-value": [id_a],
                                   "hr.drift.alerts-value": [id_b]}
    assert a.latest("hr.drift.alerts-value")[0] == id_b


def _register_in_child(args):
    path, subject, text = args
    return LocalSchemaRegistry(path).register(subject, text)


def test_processes_registering_at_once_get_distinct_stable_ids(tmp_path):
    path = tmp_path / "schema-registry.json"
    texts = [_with_field(INTERACTION, "query_text", lambda f, i=i: f.update(doc=f"v{i}"))
             for i in range(8)]
    jobs = [(str(path), f"topic{i}-value", t) for i, t in enumerate(texts)] * 2
    with multiprocessing.get_context("fork").Pool(4) as pool:
        ids = pool.map(_register_in_child, jobs)
    assert ids[:8] == ids[8:]  # same schema, same id, whichever process asked
    assert len(set(ids[:8])) == 8
    reader = LocalSchemaRegistry(path)
    for i, sid in enumerate(ids[:8]):
        fields = {f["name"]: f for f in reader.schema_by_id(sid)["fields"]}
        assert fields["query_text"]["doc"] == f"v{i}"


def test_mock_registry_goes_through_confluents_client():
    url = unique("mock://reg")
    registry = make_registry(url)
    assert isinstance(registry, ConfluentSchemaRegistry)
    assert isinstance(registry.client, SchemaRegistryClient)
    sid = registry.register("hr.chatbot.interactions-value", INTERACTION)
    # the client's own view (the oracle), not our wrapper's
    stored = registry.client.get_schema(sid)
    assert json.loads(stored.schema_str) == json.loads(avsc.canonical_text(INTERACTION))
    latest = registry.client.get_latest_version("hr.chatbot.interactions-value")
    assert latest.schema_id == sid
    # a second registry on the same URL in this process shares the mock
    assert make_registry(url).schema_by_id(sid)["name"] == "hr.chatbot.ChatbotInteraction"
    assert make_registry(url).latest("hr.chatbot.interactions-value")[0] == sid
    with pytest.raises(SchemaNotFound):
        registry.schema_by_id(sid + 100)
    with pytest.raises(SchemaNotFound):
        registry.latest("nobody-value")


@pytest.mark.parametrize("kind", ["local", "mock"])
def test_incompatible_changes_are_refused_with_the_field_named(tmp_path, kind):
    registry = _registries(tmp_path)[0 if kind == "local" else 1]
    subject = "hr.chatbot.interactions-value"
    registry.register(subject, INTERACTION)
    as_string = _with_field(INTERACTION, "confidence", lambda f: f.update(type="string"))
    with pytest.raises(SchemaCompatibilityError) as err:
        registry.register(subject, as_string)
    assert err.value.field == "confidence"
    assert "BACKWARD" in str(err.value) and "double to string" in str(err.value)
    schema = json.loads(INTERACTION)
    schema["fields"].append({"name": "department", "type": "string"})  # required, no default
    with pytest.raises(SchemaCompatibilityError) as err:
        registry.register(subject, json.dumps(schema))
    assert err.value.field == "department" and "no default" in str(err.value)
    narrowed = _with_field(INTERACTION, "satisfaction",
                           lambda f: (f.update(type="int"), f.pop("default")))
    with pytest.raises(SchemaCompatibilityError) as err:
        registry.register(subject, narrowed)  # null no longer allowed
    assert err.value.field == "satisfaction"
    # nothing was registered by the refusals
    assert registry.latest(subject)[1]["fields"][12]["type"] == "double"


def test_make_registry_configuration_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        make_registry(None, None)
    assert err.value.field == "state_dir"
    with pytest.raises(ConfigError) as err:
        make_registry("ftp://registry:8081", tmp_path)
    assert err.value.field == "schema_registry_url"
    explicit = make_registry(f"file://{tmp_path}/elsewhere.json")
    explicit.register("x-value", ALERT)
    assert (tmp_path / "elsewhere.json").exists()
