"""PyFlink functions of the ingestion stage: decode, validate, redact, dead-letter.

Everything that can be wrong with a record is decided by ``schemas/`` (pure);
here we only route: valid records downstream, rejected ones to a side output that
the dead-letter sink writes to the DLQ topic with the reason in its headers.
"""

from __future__ import annotations

import time
from typing import Any

from pyflink.common import Types
from pyflink.datastream import OutputTag, ProcessFunction, RuntimeContext

from streams.settings import Settings

DEAD_LETTER_TAG = OutputTag("dead-letter", Types.PICKLED_BYTE_ARRAY())


class DecodeAndValidate(ProcessFunction):
    """Raw Kafka rows (key, value, partition, offset) -> validated interaction dicts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        from streams.ingest import build_decoder

        self.decoder, self.deduplicator = build_decoder(self.settings)
        self.metrics = runtime_context.get_metrics_group()
        self.accepted = self.metrics.counter("records_accepted")
        self.rejected: dict[str, Any] = {}

    def process_element(self, value, ctx: ProcessFunction.Context):
        from streams.ingest import RecordRejected

        key, raw, partition, offset = value[0], value[1], value[2], value[3]
        try:
            record = self.decoder.decode(raw, key, now_ms=int(time.time() * 1000))
            if self.deduplicator is not None:
                self.deduplicator.check(record["interaction_id"], record["event_time"])
        except RecordRejected as exc:
            counter = self.rejected.get(exc.kind)
            if counter is None:
                counter = self.rejected[exc.kind] = self.metrics.counter(f"rejected_{exc.kind}")
            counter.inc()
            yield DEAD_LETTER_TAG, (exc.kind, str(exc), partition, offset, key, raw)
            return
        self.accepted.inc()
        yield record


class DeadLetterSink(ProcessFunction):
    """Writes rejected records to the DLQ topic (redacted) and counts them per kind in Redis."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        import redis
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": self.settings.bootstrap_servers,
                                  "linger.ms": 20, "acks": "all"})
        self.redis = redis.Redis.from_url(self.settings.redis_url)

    def process_element(self, value, ctx: ProcessFunction.Context):
        from schemas.dead_letter import build_dead_letter

        kind, message, partition, offset, key, raw = value
        dl_key, dl_value, headers = build_dead_letter(
            kind=kind, message=message, topic=self.settings.topics.input, partition=partition,
            offset=offset, key=key, value=raw, now_ms=int(time.time() * 1000))
        self.producer.produce(self.settings.topics.dead_letter, key=dl_key, value=dl_value,
                              headers=headers)
        self.producer.poll(0)
        self.redis.hincrby("driftline:stats", f"dead_letter:{kind}", 1)
        return iter(())

    def close(self) -> None:
        if getattr(self, "producer", None) is not None:
            self.producer.flush(10)
