"""The one source of truth for driftline's features.

Each ``StreamFeatureView`` declares its features as Feast ``Aggregation``s; the
driftline feature job compiles exactly these into its Flink plan (see
``features/definitions.py``). Adding a feature means adding an ``Aggregation`` and
its ``Field`` here, nothing else. The aggregation ``name`` is the feature name.

Functions the engine computes: count, sum, mean, min, max, count_distinct, last,
and percentiles written pNN (e.g. p95). ``mean`` ignores nulls; booleans count as
0/1. A window is trailing and right-closed: (W - time_window, W].
"""

from datetime import timedelta
from importlib import resources

from feast import Entity, FileSource, KafkaSource, StreamFeatureView
from feast.aggregation import Aggregation
from feast.data_format import AvroFormat
from feast.field import Field
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

employee = Entity(name="employee", join_keys=["employee_id"], value_type=ValueType.STRING,
                  description="A pseudonymous employee id")
tenant = Entity(name="tenant", join_keys=["tenant_id"], value_type=ValueType.STRING,
                description="An HR shared-service tenant")


def interactions(view: str) -> KafkaSource:
    """The interaction stream as the source of ``view``. Its batch source is the view's
    offline feature log: the rows the driftline job wrote online, kept as Parquet by day
    (features/offline_log.py), which ``get_historical_features`` joins point-in-time."""
    return KafkaSource(
        name=f"chatbot_interactions_{view}",
        kafka_bootstrap_servers="127.0.0.1:9092",
        topic="hr.chatbot.interactions",
        timestamp_field="event_time",
        batch_source=FileSource(name=f"{view}_log", path=f"data/offline/{view}",
                                timestamp_field="event_timestamp"),
        message_format=AvroFormat(schema_json=resources.files("schemas").joinpath(
            "avro/chatbot_interaction.avsc").read_text()),
        watermark_delay_threshold=timedelta(seconds=30),
    )


M5, H1, H24 = timedelta(minutes=5), timedelta(hours=1), timedelta(hours=24)

# Employees are per tenant: the entity key is (tenant_id, employee_id), so two tenants'
# employee "emp-1" are two entities and one tenant's lookups never see the other's rows.
employee_activity = StreamFeatureView(
    name="employee_activity",
    source=interactions("employee_activity"),
    entities=[tenant, employee],
    ttl=timedelta(days=2),
    timestamp_field="event_time",
    online=True,
    schema=[
        Field(name="interactions_1h", dtype=Int64),
        Field(name="interactions_24h", dtype=Int64),
        Field(name="avg_satisfaction_24h", dtype=Float64),
        Field(name="escalation_rate_24h", dtype=Float64),
        Field(name="avg_latency_ms_1h", dtype=Float64),
        Field(name="distinct_intents_24h", dtype=Int64),
        Field(name="last_intent", dtype=String),
    ],
    aggregations=[
        Aggregation(name="interactions_1h", column="interaction_id", function="count",
                    time_window=H1, slide_interval=M5),
        Aggregation(name="interactions_24h", column="interaction_id", function="count",
                    time_window=H24, slide_interval=H1),
        Aggregation(name="avg_satisfaction_24h", column="satisfaction", function="mean",
                    time_window=H24, slide_interval=H1),
        Aggregation(name="escalation_rate_24h", column="escalated", function="mean",
                    time_window=H24, slide_interval=H1),
        Aggregation(name="avg_latency_ms_1h", column="response_latency_ms", function="mean",
                    time_window=H1, slide_interval=M5),
        Aggregation(name="distinct_intents_24h", column="intent", function="count_distinct",
                    time_window=H24, slide_interval=H1),
        Aggregation(name="last_intent", column="intent", function="last",
                    time_window=H24, slide_interval=M5),
    ],
)

tenant_load = StreamFeatureView(
    name="tenant_load",
    source=interactions("tenant_load"),
    entities=[tenant],
    ttl=timedelta(days=2),
    timestamp_field="event_time",
    online=True,
    schema=[
        Field(name="interactions_5m", dtype=Int64),
        Field(name="p95_latency_ms_5m", dtype=Float64),
        Field(name="escalation_rate_1h", dtype=Float64),
    ],
    aggregations=[
        Aggregation(name="interactions_5m", column="interaction_id", function="count",
                    time_window=M5, slide_interval=timedelta(minutes=1)),
        Aggregation(name="p95_latency_ms_5m", column="response_latency_ms", function="p95",
                    time_window=M5, slide_interval=timedelta(minutes=1)),
        Aggregation(name="escalation_rate_1h", column="escalated", function="mean",
                    time_window=H1, slide_interval=M5),
    ],
)
