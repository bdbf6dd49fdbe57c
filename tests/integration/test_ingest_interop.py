"""Interop on a real broker: JSON from kcat and Avro from confluent's AvroSerializer on
one topic, consumed with a plain confluent consumer and decoded by InteractionDecoder.

Runs against the broker the settings name (the session's local stack starts it) and
needs ``kcat`` on PATH; skips with the reason when kcat is missing. Each run uses fresh
topics, so reruns and concurrent users of the broker do not interfere.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import confluent_kafka
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas import avsc
from schemas.dead_letter import build_dead_letter, read_dead_letter
from schemas.decode import InteractionDecoder
from schemas.errors import RecordRejected
from schemas.registry import make_registry
from tests.ingest_samples import LIMITS, interaction, unique

pytestmark = pytest.mark.integration

N_EACH = 25


@pytest.fixture(scope="module")
def broker(local_stack) -> str:
    """The broker the settings name (the session's local stack is up)."""
    return local_stack.bootstrap_servers


def _kcat_lists_topics(broker: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["kcat", "-b", broker, "-L", "-m", "5"], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def kcat_env(broker, tmp_path_factory) -> dict[str, str]:
    """Environment to run kcat in.

    Debian's kcat links librdkafka 2.0.2, whose ApiVersions request Tansu 0.6.0 (the
    local broker) answers in a form that version cannot parse ("Read underflow").
    Against such a broker, run the same kcat binary on the newer librdkafka that
    confluent-kafka bundles (same ABI, soname librdkafka.so.1); a real Kafka broker
    needs nothing special.
    """
    if shutil.which("kcat") is None:
        pytest.skip("kcat is not installed (Debian: apt-get install -y kcat)")
    env = dict(os.environ)
    if _kcat_lists_topics(broker, env).returncode == 0:
        return env
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    bundled = sorted(libs.glob("librdkafka*.so*"))
    if not bundled:
        pytest.fail("kcat cannot talk to the broker and no bundled librdkafka was found")
    shim = tmp_path_factory.mktemp("rdkafka")
    (shim / "librdkafka.so.1").symlink_to(bundled[0])
    env["LD_LIBRARY_PATH"] = str(shim)
    probe = _kcat_lists_topics(broker, env)
    assert probe.returncode == 0, f"kcat cannot list topics: {probe.stderr[-2000:]}"
    return env


@pytest.fixture()
def topics(broker):
    """Two fresh topics (input, dead letter), deleted again afterwards."""
    names = (unique("it.interop"), unique("it.interop.dlq"))
    for name in names:
        _create_topic(broker, name)
    yield names
    admin = AdminClient({"bootstrap.servers": broker})
    for future in admin.delete_topics(list(names)).values():
        with contextlib.suppress(KafkaException):  # best effort
            future.result(timeout=15)


def _create_topic(broker: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker})
    for future in admin.create_topics([NewTopic(name, num_partitions=1,
                                                replication_factor=1)]).values():
        future.result(timeout=15)
    deadline = time.monotonic() + 15
    while name not in admin.list_topics(timeout=5).topics:
        assert time.monotonic() < deadline, f"topic {name} did not appear"
        time.sleep(0.2)


def _consume(broker: str, topic: str, n: int, timeout_s: float = 60.0) -> list:
    consumer = Consumer({"bootstrap.servers": broker, "group.id": unique("it-interop"),
                         "enable.auto.commit": False, "session.timeout.ms": 6000})
    consumer.assign([TopicPartition(topic, 0, 0)])  # no group join (slow on Tansu)
    messages, deadline = [], time.monotonic() + timeout_s
    try:
        while len(messages) < n and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            messages.append(msg)
    finally:
        consumer.close()
    assert len(messages) == n, f"got {len(messages)} of {n} messages from {topic}"
    return messages


def _records(prefix: str, now_ms: int) -> list[dict]:
    out = []
    for i in range(N_EACH):
        text = "Can you call me on +44 7700 900123?" if i % 5 == 0 else f"leave question {i}"
        out.append(interaction(interaction_id=f"{prefix}-{i}", employee_id=f"emp-{i % 7}",
                               event_time=now_ms - 1000 * i, query_text=text,
                               satisfaction=None if i % 3 else 1 + i % 5))
    return out


def test_kcat_json_and_confluent_avro_share_a_topic(broker, kcat_env, topics):
    topic, dlq = topics
    registry_url = unique("mock://interop")
    now_ms = int(time.time() * 1000)
    json_records = _records("json", now_ms)
    avro_records = _records("avro", now_ms)

    # JSON through kcat: one "key<TAB>value" line per record, an ISO time on some, and
    # one line that is not JSON (it must be rejected, not lost).
    lines = []
    for i, rec in enumerate(json_records):
        doc = dict(rec)
        if i % 2:
            doc["event_time"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(
                rec["event_time"] // 1000)) + f".{rec['event_time'] % 1000:03d}Z"
        lines.append(f"{rec['employee_id']}\t{json.dumps(doc)}")
    lines.append("emp-bad\t{\"interaction_id\": \"broken\", jane.doe@example.com")
    subprocess.run(["kcat", "-P", "-b", broker, "-t", topic, "-p", "0", "-K", "\t"],
                   input="\n".join(lines) + "\n", text=True, check=True, timeout=60,
                   env=kcat_env)

    # Avro through confluent-kafka's own serializer and registry client.
    registry = make_registry(registry_url)
    serializer = AvroSerializer(registry.client, avsc.schema_text("chatbot_interaction"))
    ctx = SerializationContext(topic, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": broker})
    for rec in avro_records:
        producer.produce(topic, key=rec["employee_id"].encode(), value=serializer(rec, ctx),
                         partition=0)
    assert producer.flush(30) == 0

    messages = _consume(broker, topic, 2 * N_EACH + 1)
    decoder = InteractionDecoder(make_registry(registry_url), LIMITS)  # same URL, same mock
    decoded, rejected = {}, []
    encodings = set()
    for msg in messages:
        encodings.add("avro" if msg.value()[0] == 0 else "json")
        try:
            rec = decoder.decode(msg.value(), msg.key(), now_ms)
        except RecordRejected as exc:
            rejected.append((exc, msg))
            continue
        assert msg.key() == rec["employee_id"].encode()
        decoded[rec["interaction_id"]] = rec

    assert encodings == {"avro", "json"}
    assert len(decoded) == 2 * N_EACH
    for rec in json_records + avro_records:
        got = decoded[rec["interaction_id"]]
        expected_text = rec["query_text"].replace("+44 7700 900123", "[PHONE]")
        assert got == {**rec, "query_text": expected_text,
                       "pii_redactions": int("[PHONE]" in expected_text)}

    # The one bad line goes to the dead-letter topic with its reason and no PII.
    [(exc, msg)] = rejected
    assert exc.kind == "invalid_json"
    key, value, headers = build_dead_letter(exc.kind, str(exc), msg.topic(), msg.partition(),
                                            msg.offset(), msg.key(), msg.value(), now_ms)
    producer.produce(dlq, key=key, value=value, headers=headers, partition=0)
    assert producer.flush(30) == 0
    [letter_msg] = _consume(broker, dlq, 1)
    letter = read_dead_letter(letter_msg.key(), letter_msg.value(), letter_msg.headers())
    assert letter.error_kind == "invalid_json" and letter.source_topic == topic
    assert letter.source_offset == msg.offset() and letter.source_partition == 0
    assert b"jane.doe" not in letter_msg.value() and letter.key == b"emp-bad"
