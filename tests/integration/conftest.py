"""The real local stack for integration tests: Tansu broker, Redis, a Flink mini-cluster.

``local_stack`` brings the stack up once per session (``driftline up`` semantics: what
already answers is used as is). ``isolated_settings`` gives each test its own topics,
consumer group, state directory and Feast project (a private copy of the feature repo),
in the Redis database the settings name: tests never see each other's records, and
nothing else in that database is touched; a test's keys are removed when it ends.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer, TopicPartition

from features.feast_repo import apply, project_name
from streams import stack
from streams.runner import JobHandle
from streams.settings import Settings, load_settings
from streams.stats import group_key


@pytest.fixture(scope="session")
def local_stack() -> Settings:
    settings = load_settings()
    for line in stack.up(settings):
        print(line)
    return settings


def private_repo(src: Path, dest: Path, project: str) -> Path:
    """A copy of the Feast repo under its own project name (and so its own Redis keys)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("data", "__pycache__"))
    yaml_path = dest / "feature_store.yaml"
    original = project_name(src)
    yaml_path.write_text(yaml_path.read_text().replace(f"project: {original}",
                                                       f"project: {project}", 1))
    assert project_name(dest) == project
    return dest


def remove_keys(settings: Settings) -> int:
    """Delete what a test's job wrote: its Feast rows (Feast's Redis keys end with the
    project name) and what is kept under its consumer group (progress, counters)."""
    client = redis.Redis.from_url(settings.redis_url)
    patterns = [f"*{project_name(settings.feature_repo)}", group_key(settings, "*")]
    keys = [k for p in patterns for k in client.scan_iter(match=p, count=1000)]
    for i in range(0, len(keys), 1000):
        client.delete(*keys[i:i + 1000])
    return len(keys)


def fresh_settings(base: Settings, folder: Path, **overrides) -> Settings:
    """Settings on fresh topics, consumer group and Feast project (applied, so Feast reads
    it), state under ``folder``, in the Redis database ``base`` names."""
    run = uuid.uuid4().hex[:8]
    topics = {"input": f"it-{run}.interactions", "dead_letter": f"it-{run}.dlq",
              "alerts": f"it-{run}.alerts", **overrides.pop("topics", {})}
    # Free ports: a run may go beside `driftline run` or another test's job.
    job = {"consumer_group": f"it-{run}", "rest_port": 0, "metrics_port": 0,
           **overrides.pop("job", {})}
    repo = private_repo(base.feature_repo, folder / f"repo-{run}", f"it_{run}")
    settings = load_settings(topics=topics, job=job, state_dir=folder / f"state-{run}",
                             feature_repo=repo, **overrides)
    stack.ensure_topics(settings)
    apply(settings.feature_repo, settings.redis_url)
    return settings


@pytest.fixture
def isolated_settings(local_stack: Settings, tmp_path) -> Iterator[Callable[..., Settings]]:
    """:func:`fresh_settings` for a test; its keys are removed when it ends."""
    made: list[Settings] = []

    def make(**overrides) -> Settings:
        made.append(fresh_settings(local_stack, tmp_path, **overrides))
        return made[-1]

    yield make
    for settings in made:
        if stack.redis_healthy(settings):
            remove_keys(settings)


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


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str,
             explain: Callable[[], str] | None = None) -> None:
    """Poll ``condition``; on timeout fail, with what ``explain`` says of the state then."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1.0)
    detail = f"; {explain()}" if explain is not None else ""
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}{detail}")


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


def settings_env(settings: Settings) -> dict[str, str]:
    """``DRIFTLINE_*`` variables that make a child process (``driftline run``, ``flink
    run``) load exactly these settings."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if isinstance(value, dict):
            env.update({f"DRIFTLINE_{name}__{k}".upper(): str(v) for k, v in value.items()
                        if v is not None})
        elif value is not None:
            env[f"DRIFTLINE_{name}".upper()] = json.dumps(value) if isinstance(value, list) \
                else str(value)
    return env


def start_redis(folder: Path) -> tuple[str, subprocess.Popen]:
    """A redis-server of our own on a free port (its URL and process), keeping nothing
    on disk, for runs that take Redis away."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH (Debian: apt-get install -y redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    wait_for(lambda: _pings(url), timeout_s=10, what=f"redis-server on port {port}")
    return url, proc


def stop_redis(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGCONT)
    proc.kill()
    proc.wait(10)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[tuple[str, subprocess.Popen]]:
    url, proc = start_redis(tmp_path)
    yield url, proc
    stop_redis(proc)


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False
