"""Backfills: the offline log for a past range of raw events, by the streaming job itself.

The same Flink job (streams/job.py), the same decode, windows and tiles, on bounded input:

1. the raw records: a JSONL or Parquet file, produced in event-time order to a topic of
   the backfill's own, or the input topic as it stands;
2. the job, bounded at that topic's end, with its own dead-letter topic (the live one
   never sees a backfill's rejects) and no online writes: the end of input flushes every
   window, and rows at boundaries in ``[start, end]`` go to the log, staged under
   ``offline-log/backfill-<time>-<id>/``, which compaction lets replace what earlier
   runs logged for the same instants (streams/offline.py).

Records from ``max window`` before ``start`` are read too, so the first boundaries' windows
are whole. A feature added to the repo today thus gets the rows the streaming job would
have logged for past months.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.offline_log import read_staged
from features.plans import load_view_plans
from schemas.errors import ConfigError, DriftlineError
from schemas.validation import parse_event_time
from streams import checkpoints, stack
from streams.offline import BACKFILL_PREFIX, compact_log
from streams.producer import produce_raw
from streams.runner import JobHandle, describe
from streams.settings import Settings
from streams.topic_tail import end_offsets

if TYPE_CHECKING:
    from streams.job import Bounded

BRANCHES = ["features"]


@dataclass(frozen=True)
class BackfillReport:
    run: str
    records: int
    log_rows: int
    days: int
    dead_letters: int
    seconds: float


def _records(path: Path) -> Iterator[tuple[bytes | None, bytes, int | None]]:
    """(key, value, event time or None) per record of a JSONL or Parquet file; a line
    that is not an interaction goes on as it is, for the dead-letter topic to show."""
    if path.suffix == ".parquet":
        import pandas as pd

        for row in pd.read_parquet(path).to_dict("records"):
            row = {k: _plain(v) for k, v in row.items()}
            row["event_time"] = parse_event_time(row["event_time"])
            yield str(row.get("employee_id", "")).encode(), json.dumps(row).encode(), \
                row["event_time"]
    elif path.suffix in (".jsonl", ".json"):
        with path.open("rb") as lines:
            for line in lines:
                value = line.rstrip(b"\r\n")
                if not value:
                    continue
                try:
                    record = json.loads(value)
                    yield str(record.get("employee_id", "")).encode(), value, \
                        parse_event_time(record.get("event_time"))
                except (ValueError, AttributeError, DriftlineError):
                    yield None, value, None
    else:
        raise ConfigError("--events", f"{path}: give a .jsonl or .parquet file")


def _plain(value: Any) -> Any:
    """A Parquet cell as JSON: arrays to lists, NaN and NaT to null, times to ms."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1000)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def produce_file(settings: Settings, path: Path, after_ms: int, until_ms: int) -> int:
    """The file's records in ``(after_ms, until_ms]`` (and those without a readable event
    time), in event-time order, to the settings' input topic; returns how many."""
    chosen = [r for r in _records(path) if r[2] is None or after_ms < r[2] <= until_ms]
    chosen.sort(key=lambda r: -1 if r[2] is None else r[2])
    return produce_raw(settings, ((key, value) for key, value, _ in chosen))


def _run(settings: Settings, bounded: Bounded, say: Callable[[str], None]) -> None:
    from streams.job import build_pipeline

    job = JobHandle(settings, BRANCHES, resume=False,
                    pipeline=partial(build_pipeline, bounded=bounded))
    # A local run's mini-cluster shuts down with its job: wait on the result, not the status.
    result = job.client.get_job_execution_result()
    try:
        while not result.done():
            time.sleep(2)
            say(describe(job.progress(), job.stats()))
        result.result()
    except Exception as exc:  # noqa: BLE001 - Flink's failure, as one line
        raise DriftlineError(f"the backfill's job failed: {exc}"[:2000]) from exc
    finally:
        if not result.done():
            job.cancel()


def backfill(settings: Settings, events: Path | None, start_ms: int, end_ms: int,
             say: Callable[[str], None] = print) -> BackfillReport:
    """Log every row at boundaries in ``[start_ms, end_ms]`` from ``events`` (a file), or
    from the input topic when ``events`` is None."""
    from streams.job import Bounded  # noqa: F811 - here, not at import: it loads pyflink

    if end_ms <= start_ms:
        raise ConfigError("--end", "must be after --start")
    started = time.monotonic()
    run = f"{BACKFILL_PREFIX}{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-" \
          f"{uuid.uuid4().hex[:6]}"
    own = f"{settings.topics.input}.{run}"
    topics = settings.topics.model_copy(update={
        "input": settings.topics.input if events is None else own,
        "dead_letter": f"{own}.dlq"})
    job = settings.job.model_copy(update={"consumer_group": run, "write_online": False,
                                          "rest_port": 0, "metrics_port": 0})
    run_settings = settings.model_copy(update={"topics": topics, "job": job})
    warmup = max(p.max_window_ms for p in load_view_plans(settings.feature_repo))
    stack.ensure_topics(run_settings)
    servers = settings.bootstrap_servers
    try:
        if events is not None:
            n = produce_file(run_settings, events, start_ms - warmup, end_ms)
            say(f"{n:,} records of {events} (from {warmup // 3_600_000} h before the start, "
                f"for whole windows) produced to {topics.input}")
        ends = {topics.input: end_offsets(servers, topics.input)}
        records = sum(ends[topics.input].values())
        say(f"{records:,} raw records")
        _run(run_settings, Bounded(ends, start_ms, end_ms, warmup), say)
        dead = sum(end_offsets(servers, topics.dead_letter).values())
        say(f"{dead:,} dead letters on {topics.dead_letter}")
    finally:
        shutil.rmtree(checkpoints.folder(run_settings, BRANCHES), ignore_errors=True)
        if events is not None:
            stack.delete_topics(run_settings, [own])
    rows = sum(read_staged(p, run_settings.offline_staging_dir).num_rows
               for p in load_view_plans(settings.feature_repo))
    days = compact_log(settings)
    say(f"logged {rows:,} rows; compacted {len(days)} day(s) of the log")
    return BackfillReport(run, records, rows, len(days), dead, time.monotonic() - started)
