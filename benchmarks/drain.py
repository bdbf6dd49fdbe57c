"""Backlog drain: CPU per event of the real job against a decode-only floor and the
Feast-SDK pandas consumer, on the same events, in the same run.

    python -m benchmarks.drain [--quick] [--parallelism 1 2]

The events are what a busy deployment sees: thousands of employees over hours of event
time (so windows slide and decay across many boundaries), Avro, written by a plain
producer (record timestamps at send time). Each system drains the same backlog from its
own topic.

For a Flink job the JVM's start, planning and JIT compilation would dominate a short run,
so the job first drains a warm-up share of the events, then the rest is written to its
topic at full speed (by a separate process) and only that second drain is measured: CPU
seconds of the JVM and its Python workers from the first write to the moment every
feature is in Redis. The peer measures itself from its first batch. The broker's CPU is
reported separately.

Writes benchmarks/results/drain.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.drift_report import (
    RESULTS,
    ROOT,
    command,
    header_lines,
    log,
    machine,
    now_utc,
    table,
    versions,
    write_json,
)
from benchmarks.pipeline_baselines import _result, _start
from benchmarks.pipeline_job import (
    DECODE,
    MeasuredJob,
    apply_repo,
    broker_process,
    copy_repo,
    isolated_settings,
    job_cpu_meter,
    tree_cpu_meter,
    workspace,
)
from streams.job import BRANCHES
from streams.settings import Settings

TAG = "drain"
MODES = {"quick": {"events": 80_000, "hours": 6.0, "warmup": 0.5},
         "standard": {"events": 240_000, "hours": 8.0, "warmup": 0.5}}
EMPLOYEES_PER_TENANT, TENANTS = 750, 4
FIVE_MIN = 300_000


def serialized_events(settings: Settings, count: int,
                      hours: float) -> tuple[list, list[int]]:
    """(key, Avro value) of seeded events, and their event times."""
    from streams.producer import serializers, simulated_events

    events = simulated_events(settings, count, hours, seed=17, tenants=TENANTS,
                              employees_per_tenant=EMPLOYEES_PER_TENANT)
    encode = serializers(settings, "avro")(0)
    return ([(e["employee_id"].encode(), encode(e)) for e in events],
            [e["event_time"] for e in events])


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Child process: a plain producer (default timestamps), as fast as it goes."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "batch.num.messages": 10_000,
                         "queue.buffering.max.messages": 1_000_000})
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)


def backlog(work: Path, mode: dict[str, Any]) -> tuple[Path, list, list[int], int]:
    """A private, applied copy of the feature repo under ``work``, and the events of
    ``mode`` for it: (repo, records, event times, how many the warm-up drains)."""
    repo = copy_repo(ROOT / "feature_repo", work / "repo")
    first = isolated_settings(work, repo)
    apply_repo(first)
    records, times = serialized_events(first, mode["events"], mode["hours"])
    return repo, records, times, int(len(records) * mode["warmup"])


def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    proc = mp.get_context("spawn").Process(
        target=_produce, args=(settings.bootstrap_servers, settings.topics.input, records))
    proc.start()
    proc.join()


def floor_pipeline(env, settings: Settings, branches) -> None:
    """Kafka source + the decode UDF, nothing else: what every design pays at least."""
    from pyflink.table import StreamTableEnvironment

    from streams import stack
    from streams.job import decoded_view

    partitions = stack.ensure_topics(settings)[settings.topics.input]
    t_env = StreamTableEnvironment.create(env)
    decoded_view(t_env, settings, partitions)
    t_env.execute_sql("CREATE TEMPORARY TABLE floor_sink (s STRING) WITH ('connector' = "
                      "'blackhole')")
    statements = t_env.create_statement_set()
    statements.add_insert_sql("INSERT INTO floor_sink SELECT r.status FROM decoded")
    statements.attach_as_datastream()


def jvm_pipeline(env, settings: Settings, branches) -> None:
    """The job up to its Python branches (decode, dead letters, event time, the SQL
    windows of ``branches``), its window rows into a blackhole: what the job's JVM part
    costs alone. With no branches, only the late count has a window."""
    from streams.job import jvm_stages

    stages = jvm_stages(env, settings, branches)
    stages.t_env.execute_sql(f"CREATE TEMPORARY TABLE {JVM_SINK} (kind STRING) WITH "
                             "('connector' = 'blackhole')")
    stages.statements.add_insert_sql(f"INSERT INTO {JVM_SINK} SELECT kind FROM batches")
    stages.statements.attach_as_datastream()


JVM_SINK = "window_rows_sink"


@dataclass(frozen=True)
class Stage:
    """A system the drain measures: its pipeline (None: the whole job) and when it is
    done with ``total`` events whose windows close by ``target_ms``."""

    pipeline: Callable[..., None] | None
    done: Callable[[MeasuredJob, int, int], bool]
    branches: tuple[str, ...] = ()


def _decoded(job: MeasuredJob, total: int) -> bool:
    return job.counter(DECODE, "records_accepted") >= total


def _windows_fired(job: MeasuredJob, total: int, target_ms: int) -> bool:
    if not _decoded(job, total):
        return False
    marks = job.read_metrics(job.find_metric(JVM_SINK, "currentInputWatermark"))
    return bool(marks) and min(marks) >= target_ms


#: What the drain measures, each stage the one before plus more of the job.
STAGES = {
    "floor": Stage(floor_pipeline, lambda job, total, _: _decoded(job, total)),
    "event_time": Stage(jvm_pipeline, _windows_fired),
    "jvm": Stage(jvm_pipeline, _windows_fired, BRANCHES),
    "job": Stage(None, lambda job, total, target: _decoded(job, total)
                 and job.caught_up(target), BRANCHES),
}


def _wait(done: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


def run_flink(label: str, settings: Settings, records: list, split: int, times: list[int],
              stage: str = "job", parallelism: int = 1, branches: list[str] | None = None,
              during: Callable[[], Callable[[], None]] | None = None,
              flink_config: dict[str, str] | None = None) -> dict[str, Any]:
    """Warm-up drain, then the measured one; returns CPU by process and throughput.
    ``during``, if given, is called as the measured drain starts and returns a function
    called as it ends (benchmarks/profile_drain.py samples the processes in between).
    ``branches``: which of the job's branches a ``job`` or ``jvm`` stage has (default:
    the stage's own). ``flink_config`` is added to the job's Flink configuration
    (benchmarks/ab_drain.py)."""
    system = STAGES[stage]
    if branches is None:
        branches = list(system.branches)
    job = MeasuredJob(settings, branches, pipeline=system.pipeline, parallelism=parallelism,
                      flink_config=flink_config)

    def closed(events: list[int]) -> int:
        """A boundary every window up to which has closed once ``events`` are in."""
        newest = max(events) - settings.job.max_out_of_orderness_ms
        return newest // FIVE_MIN * FIVE_MIN - FIVE_MIN

    # The warm-up ends with the windows its events closed written: every Python operator
    # has then had its first records (and imported its code: seconds per process).
    warm_target, target = closed(times[:split]), closed(times)
    try:
        produce(settings, records[:split])
        log(TAG, f"{label}: warming up on {split:,} events")
        _wait(lambda: system.done(job, split, warm_target), "the warm-up drain", 600)
        time.sleep(3)  # let the warm-up's last windows fire
        cpu, broker = job_cpu_meter(), broker_process()
        broker_cpu = tree_cpu_meter(broker) if broker else None
        started = time.monotonic()
        stop = during() if during else None
        log(TAG, f"{label}: draining {len(records) - split:,} more")
        produce(settings, records[split:])
        _wait(lambda: system.done(job, len(records), target), f"the {stage} drain", 900)
        wall = time.monotonic() - started
        used = cpu.read()
        if stop:
            stop()
        out = {"events": len(records) - split, "cpu_s": used, "wall_s": wall,
               "cpu_s_per_10k": used / (len(records) - split) * 10_000,
               "events_per_s": (len(records) - split) / wall,
               "cpu_s_by_process": cpu.by_process(), "parallelism": parallelism,
               "broker_cpu_s": broker_cpu.read() if broker_cpu else None,
               "stats": job.stats()}
        log(TAG, f"{label}: {out['cpu_s_per_10k']:.3f} CPU s per 10k, "
                 f"{out['events_per_s']:,.0f} events/s")
        return out
    finally:
        job.cancel()


def run_peer(name: str, settings: Settings, records: list) -> dict[str, Any]:
    produce(settings, records)
    broker = broker_process()
    broker_cpu = tree_cpu_meter(broker) if broker else None
    log(TAG, f"{name}: draining {len(records):,} events")
    out = _result(_start(name, settings, expect=len(records)), timeout_s=900)
    out["broker_cpu_s"] = broker_cpu.read() if broker_cpu else None
    log(TAG, f"{name}: {out['cpu_s_per_10k']:.3f} CPU s per 10k")
    return out


def _dump_partial(out: Path, runs: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "drain.partial.json", {"runs": runs})


def markdown(r: dict[str, Any]) -> str:
    runs = r["runs"]
    base = runs["feast_push"]["cpu_s_per_10k"]
    floor = runs["floor"]["cpu_s_per_10k"]
    rows = []
    names = {"floor": "decode-only floor (Kafka source + decode UDF)",
             "event_time": "+ dead letters, event time and the late count",
             "jvm": "+ the SQL windows: the job's JVM part alone",
             "feast_push": "Feast SDK write (pandas micro-batches, no decay)"}
    for key, run in runs.items():
        label = names.get(key) or f"driftline, features + drift, parallelism {run['parallelism']}"
        rows.append([label, f"{run['cpu_s_per_10k']:.3f}", f"{base / run['cpu_s_per_10k']:.2f}x",
                     f"{run['cpu_s_per_10k'] / floor:.2f}x", f"{run['events_per_s']:,.0f}",
                     f"{run['broker_cpu_s'] / run['events'] * 1e4:.3f}"
                     if run.get("broker_cpu_s") is not None else "n/a"])
    lines = ["## Backlog drain: CPU per event against the floor and the Feast path", "",
             *header_lines(r["meta"]), "",
             f"{r['events']:,} events (Avro, plain producer) from "
             f"{TENANTS * EMPLOYEES_PER_TENANT:,} employees in {TENANTS} tenants over "
             f"{r['hours']:g} h of event time; each system drains the same events. Flink runs "
             f"measure the last {1 - r['warmup']:.0%} after a warm-up drain.", "",
             table(["system", "CPU s / 10k events", "events per CPU s vs Feast path",
                    "CPU vs floor", "events/s (wall)", "broker CPU s / 10k"], rows), ""]
    for key, run in runs.items():
        if "cpu_s_by_process" in run:
            split = ", ".join(f"{k} {v:.1f} s" for k, v in run["cpu_s_by_process"].items())
            lines.append(f"- {key}: CPU by process: {split}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.drain", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parallelism", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    mode_name = "quick" if args.quick else "standard"
    mode = MODES[mode_name]
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    meta = {"machine": machine(), "date": now_utc(), "mode": mode_name, "settings": mode,
            "command": command("benchmarks.drain", sys.argv[1:] if argv is None else argv),
            "versions": versions("apache-flink", "feast", "confluent-kafka", "pandas")}
    started = time.monotonic()
    with workspace("driftline-drain-") as work:
        repo, records, times, split = backlog(work, mode)
        runs: dict[str, Any] = {}
        for stage in ("floor", "event_time", "jvm"):
            runs[stage] = run_flink(stage, isolated_settings(work, repo), records, split,
                                    times, stage=stage)
        for p in args.parallelism:
            runs[f"driftline_p{p}"] = run_flink(f"driftline p={p}",
                                                isolated_settings(work, repo), records,
                                                split, times, parallelism=p)
            _dump_partial(args.out, runs)
        runs["feast_push"] = run_peer("feast_push", isolated_settings(work, repo),
                                      records[split:])
    meta["duration_s"] = time.monotonic() - started
    result = {"meta": meta, "events": mode["events"], "hours": mode["hours"],
              "warmup": mode["warmup"], "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "drain.json", result)
    (args.out / "drain.md").write_text(markdown(result))
    (args.out / "drain.partial.json").unlink(missing_ok=True)
    log(TAG, f"done in {meta['duration_s']:.0f} s; wrote {args.out}/drain.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
