"""The real local stack for integration tests: Tansu broker, Redis, a Flink mini-cluster.

``local_stack`` brings the stack up once per session (``driftline up`` semantics: what
already answers is used as is). ``isolated_settings`` gives each test its own topics,
state directory and Redis database, so tests never see each other's records.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from confluent_kafka import Consumer, TopicPartition

from features.feast_repo import apply
from streams import stack
from streams.runner import JobHandle
from streams.settings import Settings, load_settings

TEST_REDIS_DB = 7


@pytest.fixture(scope="session")
def local_stack() -> Settings:
    settings = load_settings()
    for line in stack.up(settings):
        print(line)
    return settings


@pytest.fixture
def isolated_settings(local_stack: Settings, tmp_path) -> Callable[..., Settings]:
    """Settings on fresh topics and a flushed Redis db, with the Feast repo applied."""

    def make(**overrides) -> Settings:
        run = uuid.uuid4().hex[:8]
        base = local_stack.redis_url.rsplit("/", 1)[0]
        topics = {"input": f"it-{run}.interactions", "dead_letter": f"it-{run}.dlq",
                  "alerts": f"it-{run}.alerts", **overrides.pop("topics", {})}
        job = {"consumer_group": f"it-{run}", **overrides.pop("job", {})}
        settings = load_settings(topics=topics, job=job, state_dir=tmp_path / "state",
                                 redis_url=f"{base}/{TEST_REDIS_DB}", **overrides)
        redis.Redis.from_url(settings.redis_url).flushdb()
        stack.ensure_topics(settings)
        apply(settings.feature_repo, settings.redis_url)
        return settings

    return make


@pytest.fixture
def running_job() -> Iterator[Callable[[Settings, list[str]], JobHandle]]:
    """Start jobs; every job started is cancelled when the test ends."""
    jobs: list[JobHandle] = []

    def start(settings: Settings, branches: list[str]) -> JobHandle:
        job = JobHandle(settings, branches)
        jobs.append(job)
        return job

    yield start
    for job in jobs:
        job.cancel()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def wait_until_stable(read: Callable[[], object], quiet_s: float, timeout_s: float) -> object:
    """Poll ``read`` until its value has not changed for ``quiet_s``; return it."""
    deadline = time.monotonic() + timeout_s
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return value
    raise AssertionError(f"value kept changing for {timeout_s:.0f}s: last {value!r}")


def read_topic(settings: Settings, topic: str, expected: int, timeout_s: float = 30.0):
    """Every message of every partition of a topic, waiting until ``expected`` arrived."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(messages) < expected:
            for msg in consumer.consume(500, timeout=1.0):
                if msg.error() is None:
                    messages.append(msg)
        # Linger briefly: more than expected would be a bug worth seeing.
        messages += [m for m in consumer.consume(500, timeout=2.0) if m.error() is None]
    finally:
        consumer.close()
    return messages
