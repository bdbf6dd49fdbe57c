"""The offline side: training sets from the log, and a backfill against the streaming job.

    python -m benchmarks.offline_log [--quick]

1. The streaming job drains simulated traffic (hundreds of employees over hours of event
   time) and logs it; CPU of this process tree (the JVM, its Python workers, this
   process) from the job's start until every row is in Redis and committed to the log.
2. Compaction to Parquet, timed.
3. ``features.training.historical_features`` (what ``driftline training-set`` runs: Feast's
   point-in-time join, one call per view and chunk) for 10k and 100k entity rows at
   random instants: wall and CPU seconds.
4. ``streams.backfill.backfill`` of the same events from a JSONL file (produced to its
   own topic, then the job's two stages on bounded input), CPU as in 1.

Writes benchmarks/results/offline_log.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from benchmarks.drift_report import (
    RESULTS,
    command,
    header_lines,
    log,
    machine,
    now_utc,
    table,
    versions,
    write_json,
)
from benchmarks.pipeline_job import CpuMeter, tree_cpu_meter
from features.feast_repo import feature_store
from features.offline_log import TIMESTAMP
from features.plans import load_view_plans
from features.training import historical_features
from streams import stack
from streams.backfill import backfill
from streams.ingest import interaction_serializer
from streams.offline import compact_log, log_committed
from streams.producer import produce_events, simulated_events
from streams.runner import JobHandle
from streams.settings import load_settings
from tests.integration.conftest import fresh_settings, remove_keys, wait_for
from tests.integration.faults import reachable

TAG = "offline_log"
MODES = {"standard": {"events": 60_000, "hours": 8.0, "employees": 600,
                      "entity_rows": [10_000, 100_000]},
         "quick": {"events": 10_000, "hours": 4.0, "employees": 100,
                   "entity_rows": [1_000, 10_000]}}


def _timed(fn) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


@contextmanager
def _sampled(meter: CpuMeter) -> Iterator[CpuMeter]:
    """Read ``meter`` twice a second meanwhile, so short-lived workers are counted."""
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            meter.read()

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield meter
    finally:
        stop.set()
        thread.join()
        meter.read()


def _entity_rows(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    pairs = frame[["tenant_id", "employee_id"]].drop_duplicates().to_numpy()
    picked = pairs[rng.integers(0, len(pairs), n)]
    ms = rng.integers(int(frame.event_time.min()), int(frame.event_time.max()), n)
    return pd.DataFrame({"tenant_id": picked[:, 0], "employee_id": picked[:, 1],
                         TIMESTAMP: pd.to_datetime(ms, unit="ms", utc=True)})


def run(mode: dict[str, Any], work: Path) -> dict[str, Any]:
    base = load_settings()
    for line in stack.up(base):
        log(TAG, line)
    settings = fresh_settings(base, work)
    events = simulated_events(settings, mode["events"], mode["hours"], seed=41,
                              employees_per_tenant=mode["employees"] // 4)
    produce_events(settings, events, "avro", quiet=True)
    frame = pd.DataFrame(events)
    started = time.perf_counter()
    with _sampled(tree_cpu_meter(psutil.Process())) as streaming:
        job = JobHandle(settings, ["features"])
        try:
            wait_for(lambda: job.caught_up(reachable(settings, frame)), 900, "the drain")
            wait_for(lambda: log_committed(settings), 120, "the log's commit")
        finally:
            job.cancel()
    stream_wall = time.perf_counter() - started
    log(TAG, f"streaming: {streaming.total:.1f} CPU s, {stream_wall:.0f} s")
    days, compact_wall, compact_cpu = _timed(lambda: compact_log(settings))
    log_rows = sum(d.rows for d in days)
    log(TAG, f"compacted {log_rows:,} log rows in {compact_wall:.1f} s")
    store = feature_store(settings.feature_repo, settings.redis_url)
    plans = load_view_plans(settings.feature_repo)
    refs = [f"{p.name}:{f.name}" for p in plans for f in p.features]
    joins = []
    rng = np.random.default_rng(3)
    for n in mode["entity_rows"]:
        rows = _entity_rows(frame, n, rng)
        out, wall, cpu = _timed(lambda rows=rows: historical_features(store, plans, rows, refs))
        assert len(out) == n
        joins.append({"entity_rows": n, "features": len(refs), "wall_s": wall, "cpu_s": cpu,
                      "rows_per_s": n / wall})
        log(TAG, f"{n:,} entity rows x {len(refs)} features: {wall:.1f} s wall, {cpu:.1f} s CPU")
    to_json = interaction_serializer(settings, "json")
    path = work / "events.jsonl"
    path.write_bytes(b"".join(to_json(e) + b"\n" for e in events))
    started = time.perf_counter()
    with _sampled(tree_cpu_meter(psutil.Process())) as backfilled:
        report = backfill(settings, path, int(frame.event_time.min()),
                          int(frame.event_time.max()), say=lambda line: log(TAG, line))
    backfill_wall = time.perf_counter() - started
    remove_keys(settings)
    log(TAG, f"backfill: {backfilled.total:.1f} CPU s, {backfill_wall:.0f} s")
    return {"events": len(events), "employees": int(frame.employee_id.nunique()),
            "streaming": {"cpu_s": streaming.total, "wall_s": stream_wall,
                          "events_per_cpu_s": len(events) / streaming.total},
            "backfill": {"cpu_s": backfilled.total, "wall_s": backfill_wall,
                         "events_per_cpu_s": len(events) / backfilled.total,
                         "log_rows": report.log_rows},
            "hours": mode["hours"], "log_rows": log_rows, "log_days": len(days),
            "compact_wall_s": compact_wall, "compact_cpu_s": compact_cpu, "joins": joins}


def markdown(r: dict[str, Any]) -> str:
    o = r["outcome"]
    rows = [[f"{j['entity_rows']:,}", str(j["features"]), f"{j['wall_s']:.1f}",
             f"{j['cpu_s']:.1f}", f"{j['rows_per_s']:,.0f}"] for j in o["joins"]]
    st, bf = o["streaming"], o["backfill"]
    runs = [["streaming job (online + log)", f"{st['cpu_s']:.1f}", f"{st['wall_s']:.0f}",
             f"{st['events_per_cpu_s']:,.0f}"],
            ["backfill from JSONL (log only)", f"{bf['cpu_s']:.1f}", f"{bf['wall_s']:.0f}",
             f"{bf['events_per_cpu_s']:,.0f}"]]
    return "\n".join([
        "## Offline log: training sets and backfill", "", *header_lines(r["meta"]), "",
        f"The job drained {o['events']:,} events ({o['employees']:,} employees, "
        f"{o['hours']:.0f} h of event time) and logged {o['log_rows']:,} feature rows "
        f"({o['log_days']} view-days); compacting them to Parquet took "
        f"{o['compact_wall_s']:.1f} s ({o['compact_cpu_s']:.1f} CPU s). Entity rows at "
        "random instants of the stream, joined point-in-time by Feast's file offline "
        "store (`features.training.historical_features`, as `driftline training-set`):",
        "", table(["entity rows", "features", "wall (s)", "CPU (s)", "rows/s"], rows), "",
        "The same events through the streaming job and through `driftline backfill` (CPU of "
        "the JVM, its Python workers and the driving process, job start included; the "
        f"backfill produces the file to a topic and runs two bounded jobs). Backfill/stream "
        f"events per CPU second: {bf['events_per_cpu_s'] / st['events_per_cpu_s']:.2f}x.",
        "", table(["run", "CPU (s)", "wall (s)", "events per CPU s"], runs), ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.offline_log",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "standard"
    meta = {"machine": machine(), "date": now_utc(), "mode": mode,
            "command": command("benchmarks.offline_log", sys.argv[1:] if argv is None else argv),
            "versions": versions("apache-flink", "feast", "dask")}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="driftline-training-") as work:
        outcome = run(MODES[mode], Path(work))
    meta["duration_s"] = time.monotonic() - started
    result = {"meta": meta, "outcome": outcome}
    write_json(args.out / "offline_log.json", result)
    (args.out / "offline_log.md").write_text(markdown(result))
    log(TAG, f"done in {meta['duration_s']:.0f} s; wrote {args.out}/offline_log.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
