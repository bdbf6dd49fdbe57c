"""The baselines' shared half: a Python Kafka consumer that computes DESIGN's features in
pandas per micro-batch, the way Feast's streaming docs suggest (consume, aggregate,
write to the online store). Only the write differs between the two peers.

Semantics, kept as close to the job as a micro-batch loop can: every feature of both
views over trailing windows ending at the newest event time seen so far, employees per
tenant as in the job; only the entities touched by the batch are recomputed (so, unlike
the job, values do not decay for quiet entities). Events are decoded and validated with the same
``InteractionDecoder`` the job uses. The window buffer keeps 24 h of events in one
DataFrame; a benchmark run holds minutes of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from features.plans import ENTITY_SEP
from streams.settings import Settings

M5, H1, H24 = 300_000, 3_600_000, 86_400_000
COLUMNS = ("interaction_id", "employee_id", "tenant_id", "event_time", "satisfaction",
           "escalated", "response_latency_ms", "intent")


class WindowBuffer:
    """The last 24 h of events; features of touched entities as of the newest event."""

    def __init__(self) -> None:
        self.buf = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
        self.newest = 0

    def add(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        batch = pd.DataFrame.from_records([{c: r.get(c) for c in COLUMNS} for r in rows],
                                          columns=list(COLUMNS))
        batch["satisfaction"] = pd.to_numeric(batch["satisfaction"], errors="coerce")
        batch["escalated"] = batch["escalated"].astype(float)
        batch["event_time"] = batch["event_time"].astype(np.int64)
        # The view's join keys in Feast's (sorted) order, as the job keys its windows.
        batch["entity"] = batch["employee_id"] + ENTITY_SEP + batch["tenant_id"]
        self.newest = max(self.newest, int(batch["event_time"].max()))
        buf = pd.concat([self.buf, batch], ignore_index=True) if len(self.buf) else batch
        self.buf = buf[buf["event_time"] > self.newest - H24]
        return batch

    def employee_activity(self, entities) -> pd.DataFrame:
        """``entities``: the ``entity`` column's values (employee and tenant)."""
        now = self.newest
        sub = self.buf[self.buf["entity"].isin(entities)]
        day = sub.groupby("entity")
        out = pd.DataFrame({
            "interactions_24h": day["interaction_id"].count(),
            "avg_satisfaction_24h": day["satisfaction"].mean(),
            "escalation_rate_24h": day["escalated"].mean(),
            "distinct_intents_24h": day["intent"].nunique(),
            "last_intent": sub.sort_values("event_time", kind="stable")
                              .groupby("entity")["intent"].last(),
        })
        hour = sub[sub["event_time"] > now - H1].groupby("entity")
        out["interactions_1h"] = hour["interaction_id"].count()
        out["avg_latency_ms_1h"] = hour["response_latency_ms"].mean()
        out["interactions_1h"] = out["interactions_1h"].fillna(0).astype(np.int64)
        out = _finish(out, "entity", now)
        out[["employee_id", "tenant_id"]] = out["entity"].str.split(ENTITY_SEP, expand=True)
        return out.drop(columns="entity")

    def tenant_load(self, ids) -> pd.DataFrame:
        now = self.newest
        sub = self.buf[self.buf["tenant_id"].isin(ids)]
        hour = sub[sub["event_time"] > now - H1].groupby("tenant_id")
        five = sub[sub["event_time"] > now - M5].groupby("tenant_id")
        out = pd.DataFrame({"escalation_rate_1h": hour["escalated"].mean()})
        out["interactions_5m"] = five["interaction_id"].count()
        out["p95_latency_ms_5m"] = five["response_latency_ms"].quantile(0.95)
        out["interactions_5m"] = out["interactions_5m"].fillna(0).astype(np.int64)
        return _finish(out, "tenant_id", now)


def _finish(out: pd.DataFrame, key: str, now_ms: int) -> pd.DataFrame:
    out = out.reset_index().rename(columns={"index": key})
    out["event_timestamp"] = pd.Timestamp(now_ms, unit="ms", tz="UTC")  # the batch source's
    return out


Sink = Callable[[str, pd.DataFrame], None]


def consume(settings: Settings, sink: Sink, *, expect: int | None, stop_key: str,
            max_batch: int = 10_000) -> dict[str, Any]:
    """Consume the input topic from the start; stop at ``expect`` events (drain) or when
    Redis key ``stop_key`` appears (live). Progress goes to Redis hash ``stop_key:progress``."""
    import redis
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from streams.ingest import RecordRejected, build_decoder

    topic = settings.topics.input
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": f"peer-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10,
                         "queued.max.messages.kbytes": 262144})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    decoder, dedup = build_decoder(settings)
    control = redis.Redis.from_url(settings.redis_url)
    window = WindowBuffer()
    spent = {"poll": 0.0, "decode": 0.0, "compute": 0.0, "write": 0.0}
    n = rejected = batches = 0
    t0 = cpu0 = None
    while True:
        a = time.perf_counter()
        msgs = consumer.consume(num_messages=max_batch, timeout=0.05)
        b = time.perf_counter()
        if not msgs:
            if control.exists(stop_key):
                break
            continue
        if t0 is None:
            t0, cpu0 = b, time.process_time()
        else:
            spent["poll"] += b - a
        rows = []
        now_ms = int(time.time() * 1000)
        for m in msgs:
            if m.error() is not None:
                continue
            try:
                rec = decoder.decode(m.value(), m.key(), now_ms=now_ms)
                dedup.check(rec["interaction_id"], rec["event_time"])
                rows.append(rec)
            except RecordRejected:
                rejected += 1
        c = time.perf_counter()
        if rows:
            batch = window.add(rows)
            frames = {"employee_activity": window.employee_activity(batch["entity"].unique()),
                      "tenant_load": window.tenant_load(batch["tenant_id"].unique())}
            d = time.perf_counter()
            for view, frame in frames.items():
                sink(view, frame)
            e = time.perf_counter()
            spent["decode"] += c - b
            spent["compute"] += d - c
            spent["write"] += e - d
        n += len(msgs)
        batches += 1
        control.hset(f"{stop_key}:progress", mapping={"processed": n,
                                                     "cpu_s": time.process_time()})
        if expect is not None and n >= expect:
            break
        if expect is None and control.exists(stop_key):
            break
    wall = time.perf_counter() - (t0 or time.perf_counter())
    cpu = time.process_time() - (cpu0 or time.process_time())
    consumer.close()
    return {"events": n, "rejected": rejected, "batches": batches, "wall_s": wall,
            "cpu_s": cpu, "events_per_s": n / wall if wall else None,
            "cpu_s_per_10k": cpu / n * 10_000 if n else None,
            "buffer_rows": len(window.buf), "time_split_s": spent}


def main(name: str, make_sink: Callable[[Settings], Sink]) -> None:
    """``python -m benchmarks.peers.<name> SETTINGS_JSON (--expect N | --stop-key K)``."""
    ap = argparse.ArgumentParser(prog=f"benchmarks.peers.{name}")
    ap.add_argument("settings_json")
    ap.add_argument("--expect", type=int)
    ap.add_argument("--stop-key", required=True)
    ap.add_argument("--max-batch", type=int, default=10_000)
    args = ap.parse_args()
    settings = Settings.model_validate_json(args.settings_json)
    sink = make_sink(settings)
    result = consume(settings, sink, expect=args.expect, stop_key=args.stop_key,
                     max_batch=args.max_batch)
    result["peer"] = name
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
