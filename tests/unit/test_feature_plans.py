"""Compiling the Feast repo: a declared Field type that the aggregation cannot produce
fails, naming the feature; the shipped repo compiles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from feast import Entity, Field, FileSource, StreamFeatureView
from feast.aggregation import Aggregation
from feast.data_format import JsonFormat
from feast.data_source import KafkaSource
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

from features.plans import compile_view, load_view_plans
from schemas.errors import ConfigError

H1 = timedelta(hours=1)
pytestmark = pytest.mark.filterwarnings("ignore:Stream feature views are experimental")


def _view(field_type, function: str, column: str,
          log: FileSource | None = None) -> StreamFeatureView:
    log = log or FileSource(path="data/offline/v", timestamp_field="event_timestamp")
    source = KafkaSource(name="s", kafka_bootstrap_servers="x:1", topic="t",
                         timestamp_field="event_time", batch_source=log,
                         message_format=JsonFormat(schema_json=""))
    return StreamFeatureView(
        name="v", source=source, entities=[Entity(name="employee", join_keys=["employee_id"],
                                        value_type=ValueType.STRING)],
        schema=[Field(name="f", dtype=field_type)], timestamp_field="event_time",
        aggregations=[Aggregation(name="f", column=column, function=function,
                                  time_window=H1, slide_interval=H1)])


@pytest.mark.parametrize(("field_type", "function", "column"), [
    (Int64, "sum", "response_latency_ms"),  # a sum of doubles is not an integer
    (String, "last", "response_latency_ms"),  # last keeps the column's own type
    (Float64, "count", "interaction_id"),
    (Int64, "mean", "satisfaction"),
    (Float64, "p95", "intent"),  # a percentile of text
])
def test_a_field_type_the_aggregation_cannot_produce_names_the_feature(field_type, function,
                                                                         column):
    with pytest.raises(ConfigError) as err:
        compile_view(_view(field_type, function, column), {"employee": "employee_id"})
    assert err.value.field.startswith("feature_repo.v.")
    assert "[f]" in err.value.field


@pytest.mark.parametrize(("field_type", "function", "column", "value_type"), [
    (Int64, "sum", "satisfaction", "INT64"),
    (Float64, "sum", "escalated", "DOUBLE"),
    (Float64, "last", "response_latency_ms", "DOUBLE"),
    (String, "last", "intent", "STRING"),
    (Int64, "max", "satisfaction", "INT64"),
])
def test_compatible_declarations_keep_the_declared_type(field_type, function, column,
                                                        value_type):
    plan = compile_view(_view(field_type, function, column), {"employee": "employee_id"})
    assert plan.features[0].value_type == value_type


def test_a_column_the_stream_does_not_carry_is_refused():
    with pytest.raises(ConfigError, match="query_text"):
        compile_view(_view(Int64, "count", "query_text"), {"employee": "employee_id"})


def test_the_shipped_repo_compiles():
    plans = {p.name: p for p in load_view_plans("feature_repo")}
    assert set(plans) == {"employee_activity", "tenant_load"}
    types = {f.name: f.value_type for f in plans["employee_activity"].features}
    assert types["interactions_1h"] == "INT64" and types["last_intent"] == "STRING"


def test_employees_are_scoped_by_tenant():
    plans = {p.name: p for p in load_view_plans("feature_repo")}
    # Feast serializes entity keys with the join keys sorted; the windows key the same way.
    assert plans["employee_activity"].join_keys == ("employee_id", "tenant_id")
    assert plans["tenant_load"].join_keys == ("tenant_id",)


def test_a_composite_entity_key_is_what_feast_reads():
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from features.plans import ENTITY_SEP
    from features.redis_writer import FeastRedisWriter

    plan = {p.name: p for p in load_view_plans("feature_repo")}["employee_activity"]
    writer = FeastRedisWriter("redis://127.0.0.1:1/0", "proj", [plan])  # never connects
    # What Feast builds from entity_rows=[{"tenant_id": ..., "employee_id": ...}].
    feast_key = serialize_entity_key(EntityKey(
        join_keys=["tenant_id", "employee_id"],
        entity_values=[Value(string_val="acme"), Value(string_val="emp-1")]),
        entity_key_serialization_version=3) + b"proj"
    assert writer.redis_key(plan.name, f"emp-1{ENTITY_SEP}acme") == feast_key
    other_tenant = writer.redis_key(plan.name, f"emp-1{ENTITY_SEP}globex")
    assert other_tenant != feast_key
    assert plan.entity_values(f"emp-1{ENTITY_SEP}acme") == {"employee_id": "emp-1",
                                                          "tenant_id": "acme"}


def test_a_view_of_an_entity_the_repo_does_not_define_is_refused():
    with pytest.raises(ConfigError, match="unknown"):
        compile_view(_view(Int64, "count", "interaction_id"), {"tenant": "tenant_id"})


@pytest.mark.parametrize(("log", "field"), [
    (FileSource(path="x.parquet", timestamp_field="event_timestamp"), "batch_source"),
    (FileSource(path="data/offline/v", timestamp_field="event_time"), "timestamp_field"),
])
def test_a_view_whose_batch_source_is_not_a_log_folder_is_refused(log, field):
    with pytest.raises(ConfigError) as err:
        compile_view(_view(Int64, "count", "interaction_id", log), {"employee": "employee_id"})
    assert err.value.field.endswith(f"v.source.{field}" if field == "batch_source"
                                    else f"v.source.batch_source.{field}")
