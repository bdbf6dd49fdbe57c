"""The job's one per-record Python step: decode, validate, redact (a vectorized UDF).

Flink hands over the raw Kafka columns of a batch of records (Arrow); the UDF returns,
per record, a status and either the validated columns (schemas/validated.py) or the
dead letter (schemas/dead_letter.py), and for an accepted record the event-time
watermark of its source subtask as of that record (streams/event_time.py). Everything
after it (the dead-letter sink, windows, aggregates) runs in the JVM. What each record
means is decided by ``schemas/``; this module only lays results out as columns.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from pyflink.table import DataTypes
from pyflink.table.udf import FunctionContext, ScalarFunction

from schemas.validated import column_types, pack_floats, packed_columns
from streams.event_time import PartitionClocks
from streams.retry import redis_client, until_done
from streams.settings import Settings
from streams.stats import add_stats, stats_key

VALID, REJECTED = "valid", "rejected"

#: Flink SQL types of the validated columns (schemas.validated.column_types()); float
#: arrays are packed (schemas.validated.pack_floats).
SQL_TYPES = {"string": "STRING", "long": "BIGINT", "int": "INT", "double": "DOUBLE",
             "boolean": "BOOLEAN", "float_array": "STRING"}
_DATA_TYPES = {"string": DataTypes.STRING(), "long": DataTypes.BIGINT(),
               "int": DataTypes.INT(), "double": DataTypes.DOUBLE(),
               "boolean": DataTypes.BOOLEAN(), "float_array": DataTypes.STRING()}
#: Columns of the UDF's result beside the validated ones.
_EXTRA = {"status": DataTypes.STRING(), "watermark_ms": DataTypes.BIGINT(),
          "dl_kind": DataTypes.STRING(), "dl_key": DataTypes.BYTES(),
          "dl_value": DataTypes.BYTES(),
          "dl_headers": DataTypes.MAP(DataTypes.STRING(), DataTypes.BYTES())}


def result_type() -> Any:
    fields = [DataTypes.FIELD(n, t) for n, t in _EXTRA.items()]
    fields += [DataTypes.FIELD(n, _DATA_TYPES[t]) for n, t in column_types().items()]
    return DataTypes.ROW(fields)


class DecodeInteractions(ScalarFunction):
    """Raw (key, value, partition, offset) columns -> one result row per record."""

    def __init__(self, settings: Settings, partitions: int) -> None:
        self.settings = settings
        self.partitions = partitions

    def open(self, function_context: FunctionContext) -> None:
        from streams.ingest import build_decoder

        self.decoder, self.deduplicator = build_decoder(self.settings)
        job = self.settings.job
        self.clocks = PartitionClocks(self.settings.topics.input, self.partitions,
                                      job.parallelism, job.max_out_of_orderness_ms,
                                      job.idle_source_timeout_ms)
        self.columns = list(column_types())
        self.packed = packed_columns()
        self.metrics = function_context.get_metric_group()
        self.accepted = self.metrics.counter("records_accepted")
        self.rejected: dict[str, Any] = {}
        self.redis = redis_client(self.settings.redis_url)
        self.stats_key = stats_key(self.settings)

    def eval(self, keys: pd.Series, values: pd.Series, partitions: pd.Series,
             offsets: pd.Series) -> pd.DataFrame:
        from schemas.dead_letter import build_dead_letter
        from schemas.errors import RecordRejected

        now = int(time.time() * 1000)
        out: dict[str, list[Any]] = {name: [] for name in (*_EXTRA, *self.columns)}
        status, watermark = out["status"], out["watermark_ms"]
        dl = [out["dl_kind"], out["dl_key"], out["dl_value"], out["dl_headers"]]
        validated = [out[c] for c in self.columns]
        decode, check = self.decoder.decode, self.deduplicator.check
        observe = self.clocks.observe
        topic, cap = self.settings.topics.input, self.settings.ingest.max_dead_letter_bytes
        kinds: dict[str, int] = {}
        for key, raw, partition, offset in zip(keys, values, partitions, offsets, strict=True):
            partition, offset = int(partition), int(offset)
            try:
                record = decode(raw, key, now)
                check(record["interaction_id"], record["event_time"])
            except RecordRejected as exc:
                dl_key, dl_value, headers = build_dead_letter(
                    kind=exc.kind, message=str(exc), topic=topic, partition=partition,
                    offset=offset, key=key, value=raw, now_ms=now, max_value_bytes=cap)
                kinds[exc.kind] = kinds.get(exc.kind, 0) + 1
                status.append(REJECTED)
                watermark.append(None)  # no event time: it moves no watermark
                for col, v in zip(dl, (exc.kind, dl_key, dl_value, dict(headers)), strict=True):
                    col.append(v)
                for col in validated:
                    col.append(None)
                continue
            record["source_partition"], record["source_offset"] = partition, offset
            status.append(VALID)
            watermark.append(observe(partition, record["event_time"], now))
            for col in dl:
                col.append(None)
            for col, name in zip(validated, self.columns, strict=True):
                col.append(record.get(name))
        self._count(len(keys) - sum(kinds.values()), kinds)
        for name in self.packed:
            out[name] = [pack_floats(v) for v in out[name]]
        return pd.DataFrame(out)

    def _count(self, accepted: int, kinds: dict[str, int]) -> None:
        self.accepted.inc(accepted)
        for kind, n in kinds.items():
            counter = self.rejected.get(kind)
            if counter is None:
                counter = self.rejected[kind] = self.metrics.counter(f"rejected_{kind}")
            counter.inc(n)
        if kinds:
            counts = {f"dead_letter:{kind}": n for kind, n in kinds.items()}
            until_done(lambda: add_stats(self.redis, self.stats_key, counts),
                       "dead-letter counters")
