"""Freshness probes and online lookups, both through the plain Feast SDK.

A probe is one event for a never-seen employee, stamped with the wall time it is
produced (event time and Kafka timestamp alike). A separate process (so its polling
never competes with the job's Python operators for a GIL) produces one every
``interval_s`` and polls ``FeatureStore.get_online_features`` for all outstanding ones
every ``poll_s``; a probe's freshness is the time from just before ``produce()`` to
the end of the first read that shows ``interactions_1h == 1``. The poll interval
bounds the resolution (an overestimate by at most ``poll_s`` plus one read).
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import random
import time
import uuid
import warnings
from typing import Any

from streams.settings import Settings

FEATURE = "employee_activity:interactions_1h"


def _store(settings: Settings):
    from features.feast_repo import feature_store

    warnings.simplefilter("ignore")
    return feature_store(settings.feature_repo, settings.redis_url)


def _probe_loop(settings: Settings, interval_s: float, poll_s: float, timeout_s: float,
                ready: Any, stop: Any, out: Any) -> None:
    from confluent_kafka import Producer

    from streams.ingest import interaction_serializer
    from streams.producer import simulated_events

    store = _store(settings)
    encode = interaction_serializer(settings, "avro")
    template = simulated_events(settings, 1, 1.0, seed=99)[0]
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 0})
    run = uuid.uuid4().hex[:6]
    tenant = template["tenant_id"]
    store.get_online_features(features=[FEATURE],
                              entity_rows=[{"tenant_id": tenant, "employee_id": "warm"}])
    ready.set()
    outstanding: dict[str, float] = {}
    results: list[dict[str, Any]] = []
    i = 0
    next_probe = time.time()
    stop_at: float | None = None
    while True:
        now = time.time()
        if stop.is_set() and stop_at is None:
            stop_at = now
        if stop_at is None and now >= next_probe:
            i += 1
            emp = f"probe-{run}-{i:06d}"
            sent = time.time()
            ms = int(sent * 1000)
            event = dict(template, interaction_id=f"probe-{run}-{i}", employee_id=emp,
                         session_id=f"probe-ses-{run}-{i}", event_time=ms)
            producer.produce(settings.topics.input, key=emp.encode(), value=encode(event),
                             timestamp=ms)
            producer.poll(0)
            outstanding[emp] = sent
            next_probe += interval_s
        if outstanding:
            ids = list(outstanding)
            got = store.get_online_features(
                features=[FEATURE],
                entity_rows=[{"tenant_id": tenant, "employee_id": e} for e in ids]).to_dict()
            done = time.time()
            for emp, value in zip(ids, got["interactions_1h"], strict=True):
                sent = outstanding[emp]
                if value == 1:
                    results.append({"sent": sent, "freshness_s": done - sent})
                elif done - sent > timeout_s:
                    results.append({"sent": sent, "freshness_s": None})
                else:
                    continue
                del outstanding[emp]
        if stop_at is not None and (not outstanding or time.time() - stop_at > timeout_s):
            break
        time.sleep(poll_s)
    for sent in outstanding.values():
        results.append({"sent": sent, "freshness_s": None})
    producer.flush(5)
    out.put(results)


class Probes:
    """Run probes in a child process between ``start()`` and ``finish()``."""

    def __init__(self, settings: Settings, interval_s: float = 0.25, poll_s: float = 0.02,
                 timeout_s: float = 20.0) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.stop_event, self.out = ctx.Event(), ctx.Event(), ctx.Queue()
        self.process = ctx.Process(target=_probe_loop, daemon=True, args=(
            settings, interval_s, poll_s, timeout_s, self.ready, self.stop_event, self.out))
        self.timeout_s = timeout_s

    def start(self) -> Probes:
        self.process.start()
        if not self.ready.wait(120):
            raise RuntimeError("the probe process did not start")
        return self

    def finish(self) -> list[dict[str, Any]]:
        self.stop_event.set()
        try:
            results = self.out.get(timeout=self.timeout_s + 60)
        except queue.Empty:
            results = []
        self.process.join(10)
        return results


def lookups(settings: Settings, entity_ids: list[tuple[str, str]], calls: int,
            seed: int = 5) -> dict[str, Any]:
    """Seconds per ``get_online_features`` call (every employee_activity feature), for
    1 and 100 entities per call, (tenant, employee) ids drawn from ``entity_ids``; plus the share of
    lookups that found a stored ``interactions_24h`` (they must read real rows)."""
    store = _store(settings)
    features = [f"employee_activity:{f.name}"
                for f in store.get_stream_feature_view("employee_activity").features]
    rng = random.Random(seed)
    out: dict[str, Any] = {"found_share": {}}
    for size in (1, 100):
        times, found = [], 0
        for k in range(calls + 5):
            rows = [{"tenant_id": t, "employee_id": e} for t, e in rng.sample(entity_ids, size)]
            t = time.perf_counter()
            got = store.get_online_features(features=features, entity_rows=rows).to_dict()
            if k >= 5:  # the first calls load the registry and connect
                times.append(time.perf_counter() - t)
                found += sum(v is not None for v in got["interactions_24h"])
        out[f"{size}_entities"] = times
        out["found_share"][f"{size}_entities"] = found / (calls * size)
    return out
