"""Privacy end to end: raw PII in ``query_text`` never leaves the ingestion stage.

Valid events carry sentences from the labelled PII corpus (``tests/pii_corpus.py``), and
malformed records carry PII too (in broken JSON, in truncated Avro, in a record that
fails validation). After the feature and drift jobs have run, every byte downstream is
searched for every raw PII string: the Redis database (keys and values), the alert
topic, the dead-letter topic (keys, values, headers), the Flink and Python worker logs
written during the test, and what the test process printed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyflink
import pytest
import redis

from streams.ingest import interaction_serializer
from streams.producer import produce_events, produce_raw, simulated_events
from tests.integration.conftest import read_topic, wait_for
from tests.pii_corpus import generate

pytestmark = pytest.mark.integration

EVENTS = 4_000


def _leaks(blob: bytes, secrets: set[bytes]) -> list[bytes]:
    return [s for s in secrets if s in blob]


def test_no_raw_pii_reaches_redis_topics_or_logs(isolated_settings, running_job, capfd):
    started = time.time()
    settings = isolated_settings(drift={"window_ms": 30 * 60_000, "reference_events": 500})
    corpus = [s for s in generate(seed=31, n=800) if s.spans]
    secrets = {s.text[sp.start:sp.end].encode() for s in corpus for sp in s.spans}
    assert len(secrets) > 300

    events = simulated_events(settings, EVENTS, 4.0, seed=5, pii_rate=0.0)
    for i, event in enumerate(events):
        event["query_text"] = corpus[i % len(corpus)].text
    produce_events(settings, events, "mixed", quiet=True)

    leaky = corpus[0].text
    bad_json = dict(events[0], interaction_id="bad-range", confidence=3.0)
    wrong = dict(events[1], interaction_id="bad-type", satisfaction="great")
    avro = interaction_serializer(settings, "avro")(dict(events[2], interaction_id="cut"))
    malformed = [
        json.dumps(bad_json).encode(),                         # out_of_range
        json.dumps(wrong).encode(),                            # wrong_type
        b'{"interaction_id": "broken", "query_text": ' + json.dumps(leaky).encode(),
        avro[: len(avro) - 20],                                # truncated, text inside
    ]
    produce_raw(settings, [(b"emp-x", v) for v in malformed],
                timestamp_ms=events[-1]["event_time"])

    job = running_job(settings, ["features", "drift"])
    late_enough = events[-1]["event_time"] - 3_600_000
    wait_for(lambda: job.caught_up(late_enough), timeout_s=240,
             what="features up to the last hour")
    wait_for(lambda: sum(int(v) for k, v in job.stats().items()
                         if k.startswith("dead_letter:")) >= len(malformed)
             and int(job.stats().get("drift_windows_tested", 0)) > 0,
             timeout_s=240, what="dead letters and drift windows")
    assert job.status() == "RUNNING"

    # The search finds PII where it is expected: in the raw input.
    raw_input = read_topic(settings, settings.topics.input, expected=200, timeout_s=10)
    assert _leaks(b"".join(m.value() for m in raw_input), secrets)

    # Redis: every key and every value of the test database.
    client = redis.Redis.from_url(settings.redis_url)
    blob = b"".join(k + b"".join(f + v for f, v in client.hgetall(k).items())
                    if client.type(k) == b"hash" else k for k in client.scan_iter())
    assert len(blob) > 10_000
    assert _leaks(blob, secrets) == []

    letters = read_topic(settings, settings.topics.dead_letter, len(malformed))
    assert len(letters) == len(malformed)
    dlq = b"".join((m.key() or b"") + (m.value() or b"")
                   + b"".join(k.encode() + (v or b"") for k, v in (m.headers() or []))
                   for m in letters)
    assert _leaks(dlq, secrets) == []

    alerts = read_topic(settings, settings.topics.alerts, expected=0, timeout_s=5)
    assert _leaks(b"".join(m.value() for m in alerts), secrets) == []

    logs = [p for p in (Path(pyflink.__file__).parent / "log").glob("*")
            if p.is_file() and p.stat().st_mtime >= started]
    for path in logs:
        assert _leaks(path.read_bytes(), secrets) == [], path
    out, err = capfd.readouterr()
    assert _leaks((out + err).encode(), secrets) == []
