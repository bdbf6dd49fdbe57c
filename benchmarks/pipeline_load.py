"""Load for the pipeline benchmark: pre-serialized events stamped "now" at send time.

Serializing Avro at send time would cost the producer as much CPU as the job spends
decoding, on a machine the job shares. So a pool of simulator events is serialized
once, and each send patches two fixed-width spans in place: the ten digits of
``interaction_id`` (unique per send, so dedup never drops one) and the 6-byte zigzag
varint of ``event_time`` (every epoch-millis time from 2004 to 2109 takes 6 bytes).
The Kafka record timestamp is the same ``event_time``, as the job's watermarks need.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.drift_report import log
from streams.settings import Settings

ID_DIGITS = 10
TIME_BYTES = 6


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def zigzag_long(n: int) -> bytes:
    """Avro's encoding of a long (zigzag, then base-128 varint)."""
    return _varint((n << 1) ^ (n >> 63))


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


@dataclass
class PooledRecord:
    key: bytes
    value: bytes
    id_at: int  # offset of the id's last ID_DIGITS characters
    time_at: int  # offset of event_time's TIME_BYTES varint
    tenant_id: str = ""  # with the key (the employee id): the employee's entity key


def pooled(value: bytes, key: bytes, tenant_id: str = "") -> PooledRecord:
    """Locate the patchable spans of a Confluent-framed ChatbotInteraction."""
    pos = 5  # magic byte + schema id
    id_at = -1
    for i in range(4):  # interaction_id, tenant_id, employee_id, session_id precede event_time
        length, pos = _read_varint(value, pos)
        length >>= 1
        if i == 0:
            id_at = pos + length - ID_DIGITS
        pos += length
    _, end = _read_varint(value, pos)
    if end - pos != TIME_BYTES:
        raise ValueError(f"event_time takes {end - pos} bytes, expected {TIME_BYTES}")
    return PooledRecord(key, value, id_at, pos, tenant_id)


def build_pool(settings: Settings, size: int, seed: int = 7,
               employees_per_tenant: int = 750, tenants: int = 4) -> list[PooledRecord]:
    """``size`` serialized simulator events (Avro), ready to be stamped."""
    from streams.producer import serializers, simulated_events

    events = simulated_events(settings, size, hours=1.0, seed=seed, tenants=tenants,
                              employees_per_tenant=employees_per_tenant)
    encode = serializers(settings, "avro")(0)
    return [pooled(encode(e), e["employee_id"].encode(), e["tenant_id"]) for e in events]


def stamp(rec: PooledRecord, seq: int, now_ms: int) -> bytes:
    buf = bytearray(rec.value)
    buf[rec.id_at:rec.id_at + ID_DIGITS] = b"%010d" % seq
    buf[rec.time_at:rec.time_at + TIME_BYTES] = zigzag_long(now_ms)
    return bytes(buf)


def producer_config(settings: Settings, linger_ms: int = 5) -> dict[str, Any]:
    return {"bootstrap.servers": settings.bootstrap_servers, "linger.ms": linger_ms,
            "batch.num.messages": 10_000, "queue.buffering.max.messages": 1_000_000,
            "compression.type": "lz4"}


def _paced(settings: Settings, pool: list[PooledRecord], rate: Any, produced: Any,
           stop: Any, seq0: int) -> None:
    """Child process: send at ``rate.value`` events/s (re-read every tick) with
    event_time = now, until ``stop`` is set; ``produced`` counts sends."""
    from confluent_kafka import Producer

    producer = Producer(producer_config(settings))
    topic = settings.topics.input
    seq, n = seq0, len(pool)
    current, start, sent = -1.0, 0.0, 0
    while not stop.is_set():
        now = time.time()
        if rate.value != current:
            current, start, sent = rate.value, now, 0
        due = int(current * (now - start)) - sent
        now_ms = int(now * 1000)
        for _ in range(due):
            rec = pool[seq % n]
            while True:
                try:
                    producer.produce(topic, key=rec.key, value=stamp(rec, seq, now_ms),
                                     timestamp=now_ms)
                    break
                except BufferError:
                    producer.poll(0.01)
            seq += 1
        sent += max(due, 0)
        produced.value = seq - seq0
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(30)
    produced.value = seq - seq0


class PacedLoad:
    """A producer process sending at a rate the parent sets; readable progress."""

    def __init__(self, settings: Settings, pool: list[PooledRecord], seq0: int = 0) -> None:
        ctx = mp.get_context("spawn")
        self.rate = ctx.Value("d", 0.0, lock=False)
        self.produced = ctx.Value("q", 0, lock=False)
        self.stop_event = ctx.Event()
        self.process = ctx.Process(target=_paced, daemon=True, args=(
            settings, pool, self.rate, self.produced, self.stop_event, seq0))

    def start(self) -> PacedLoad:
        self.process.start()
        return self

    def set_rate(self, events_per_s: float) -> None:
        self.rate.value = float(events_per_s)

    @property
    def count(self) -> int:
        return int(self.produced.value)

    def stop(self) -> int:
        self.stop_event.set()
        self.process.join(60)
        if self.process.is_alive():
            log("pipeline", "producer did not stop; terminating it")
            self.process.terminate()
        return self.count


def produce_backlog(settings: Settings, pool: list[PooledRecord], count: int,
                    events_per_s: float, seq0: int = 0) -> int:
    """``count`` events at once, event times spread at ``events_per_s`` ending now."""
    from confluent_kafka import Producer

    producer = Producer(producer_config(settings, linger_ms=20))
    end = int(time.time() * 1000)
    first = end - int(count / events_per_s * 1000)
    for j in range(count):
        rec = pool[(seq0 + j) % len(pool)]
        ms = first + int(j * 1000 / events_per_s)
        while True:
            try:
                producer.produce(settings.topics.input, key=rec.key,
                                 value=stamp(rec, seq0 + j, ms), timestamp=ms)
                break
            except BufferError:
                producer.poll(0.01)
        if j % 2000 == 0:
            producer.poll(0)
    producer.flush(60)
    return count
