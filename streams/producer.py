"""Writing interactions to the input topic: simulated traffic or given events.

Keys are the ``employee_id`` (DESIGN's contract), values Avro in the Confluent
wire format or JSON, serialized by ``streams.ingest`` so producer and job agree on
schema ids. ``rate`` paces in wall time; progress goes to stderr once a second.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from confluent_kafka import Producer

from schemas.errors import ConfigError
from streams.settings import Settings
from streams.simulator import DriftInjection, SimulatorConfig, TrafficSimulator

Encoding = Literal["avro", "json", "mixed"]
HOUR_MS = 3_600_000


def parse_drift(spec: str | None, count: int) -> DriftInjection | None:
    """``COLUMN:KIND:MAGNITUDE@START``; START < 1 is a fraction of ``count``, else a count."""
    if not spec:
        return None
    try:
        body, _, start = spec.partition("@")
        column, kind, magnitude = body.split(":")
        at = float(start or 0.5)
    except ValueError as exc:
        raise ConfigError("drift", f"expected COLUMN:KIND:MAGNITUDE@START, got {spec!r}") from exc
    start_count = int(at * count) if at < 1 else int(at)
    return DriftInjection(column=column, kind=kind, magnitude=float(magnitude),
                          start_count=start_count)


def simulated_events(settings: Settings, count: int, hours: float, seed: int = 7,
                     drift: DriftInjection | None = None, end_ms: int | None = None,
                     **overrides: Any) -> list[dict]:
    """``count`` seeded events over about ``hours`` of event time, the last just before
    ``end_ms`` (default now), so validation never sees them as from the future."""
    end_ms = int(time.time() * 1000) if end_ms is None else end_ms
    start_ms = (end_ms - int(hours * HOUR_MS)) // HOUR_MS * HOUR_MS
    config = SimulatorConfig(start_ms=start_ms, events_per_hour=count / hours, seed=seed,
                             embedding_dim=settings.embedding_dim, drift=drift, **overrides)
    events = list(TrafficSimulator(config).events(n=count))
    if events:
        # Diurnal load stretches the span: move late spans back by whole hours.
        overshoot = max(e["event_time"] for e in events) - (end_ms - 1000)
        if overshoot > 0:
            shift = -(-overshoot // HOUR_MS) * HOUR_MS
            for e in events:
                e["event_time"] -= shift
    return events


def kafka_producer(settings: Settings) -> Producer:
    return Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20,
                     "batch.num.messages": 10_000, "queue.buffering.max.messages": 500_000,
                     "compression.type": "lz4"})


def serializers(settings: Settings, encoding: Encoding) -> Callable[[int], Callable[[dict], bytes]]:
    """Serializer for the i-th event: ``mixed`` alternates Avro and JSON."""
    from streams.ingest import interaction_serializer

    avro = interaction_serializer(settings, "avro") if encoding != "json" else None
    json_ = interaction_serializer(settings, "json") if encoding != "avro" else None
    if encoding == "mixed":
        return lambda i: avro if i % 2 == 0 else json_  # type: ignore[return-value]
    only = avro or json_
    return lambda i: only  # type: ignore[return-value]


def produce_events(settings: Settings, events: Iterable[dict], encoding: Encoding = "avro",
                   rate: float | None = None, total: int | None = None,
                   quiet: bool = False) -> int:
    """Send events in order; returns how many were delivered (raises if any failed)."""
    producer = kafka_producer(settings)
    pick = serializers(settings, encoding)
    failures: list[str] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    started = last_report = time.monotonic()
    sent = 0
    for sent, event in enumerate(events, start=1):
        value = pick(sent)(event)
        while True:
            try:
                # The record timestamp is the event time: the job's per-partition
                # watermarks are built from it (docs/semantics.md).
                producer.produce(settings.topics.input, key=event["employee_id"].encode(),
                                 value=value, timestamp=event["event_time"],
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if rate:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        if not quiet and time.monotonic() - last_report >= 1.0:
            last_report = time.monotonic()
            _report(sent, total, started)
    producer.flush(60)
    if failures:
        raise ConfigError("bootstrap_servers", f"{len(failures)} records not delivered; "
                                               f"first error: {failures[0]}")
    if not quiet:
        _report(sent, total, started, end="\n")
    return sent


def produce_raw(settings: Settings, records: Iterable[tuple[bytes | None, bytes]],
                timestamp_ms: int | None = None) -> int:
    """Send (key, value) bytes as given: for interop and dead-letter tests.

    ``timestamp_ms`` is the record timestamp (default: send time). The job's watermarks
    come from record timestamps, so a record stamped far ahead of the rest of its
    partition moves that partition's event time on (docs/semantics.md).
    """
    producer = kafka_producer(settings)
    n = 0
    for key, value in records:
        while True:
            try:
                producer.produce(settings.topics.input, key=key, value=value,
                                 timestamp=timestamp_ms or 0)
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.05)
        producer.poll(0)
        n += 1
    producer.flush(60)
    return n


def _report(sent: int, total: int | None, started: float, end: str = "\r") -> None:
    rate = sent / max(time.monotonic() - started, 1e-9)
    of = f"/{total:,}" if total else ""
    print(f"[driftline] produced {sent:,}{of} events ({rate:,.0f}/s)", end=end,
          file=sys.stderr, flush=True)


def produce_simulated(settings: Settings, count: int | None, rate: float | None,
                      encoding: Encoding, seed: int, drift: str | None, hours: float) -> int:
    """``driftline produce``: ``count`` events over ``hours`` of event time (default 10k);
    with only ``--rate``, live traffic in real event time until Ctrl-C."""
    if count is None and rate is not None:
        config = SimulatorConfig(start_ms=int(time.time() * 1000), events_per_hour=rate * 3600,
                                 seed=seed, embedding_dim=settings.embedding_dim,
                                 drift=parse_drift(drift, int(rate * 600)))
        events: Iterable[dict] = TrafficSimulator(config).events()
    else:
        count = count or 10_000
        events = simulated_events(settings, count, hours, seed=seed,
                                  drift=parse_drift(drift, count))
    try:
        return produce_events(settings, events, encoding, rate=rate, total=count)
    except KeyboardInterrupt:
        print("\n[driftline] stopped", file=sys.stderr)
        return 0
