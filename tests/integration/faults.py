"""The fault scenario the recovery tests, the cluster test and ``benchmarks/recovery.py``
share: a seeded stream in two halves, and what to check a restored job against."""

from __future__ import annotations

import pandas as pd
import psutil
import redis

from schemas.dead_letter import read_dead_letter
from streams import checkpoints, flink_rest
from streams.producer import parse_drift, produce_events, produce_raw, simulated_events
from streams.stats import progress_key
from tests.integration.conftest import read_topic, wait_for
from tests.oracle import compare_log, compare_online

EVENTS = 10_000
HOURS = 4.0
FIVE_MIN = 300_000
GARBAGE = [(b"k", b"\x07not a record"), (b"k", b'{"interaction_id": "half",')]


def stream(settings, drift: str | None = None) -> tuple[list[dict], list[dict], pd.DataFrame]:
    """The first and second half of a seeded stream, and all of it as a frame."""
    events = simulated_events(settings, EVENTS, HOURS, seed=23, employees_per_tenant=80,
                              out_of_order_ms=20_000, drift=parse_drift(drift, EVENTS))
    return events[: EVENTS // 2], events[EVENTS // 2:], pd.DataFrame(events)


def produce(settings, events: list[dict], garbage: bool = False) -> None:
    produce_events(settings, events, "mixed", quiet=True)
    if garbage:
        produce_raw(settings, GARBAGE)


def reachable(settings, events: list[dict] | pd.DataFrame) -> int:
    """The last 5-minute boundary the watermark can pass with these events."""
    newest = int(pd.DataFrame(events).event_time.max()) - settings.job.max_out_of_orderness_ms
    return newest // FIVE_MIN * FIVE_MIN - FIVE_MIN


def where_it_stands(settings, target: int, job_id: str | None = None) -> str:
    """Why a job has not caught up with ``target``: the shards behind it, and where event
    time stands at each operator (a failure on CI has only this to go on)."""
    raw = redis.Redis.from_url(settings.redis_url, decode_responses=True).hgetall(
        progress_key(settings))
    shards = {k: int(v) - target for k, v in raw.items() if "/" in k}
    behind = sorted((lag, k) for k, lag in shards.items() if lag < 0)
    out = (f"target {target}; {len(behind)} of {len(shards)} shards that reported are "
           f"behind it, the furthest (ms): {behind[:5]}")
    try:
        ids = [job_id] if job_id else [j.job_id for j in flink_rest.jobs(settings) or []][:1]
        for found in ids:
            marks = flink_rest.watermarks(settings, found)
            out += "; watermarks - target (ms): " + ", ".join(
                f"{name}: {mark - target}" for name, mark in marks.items())
    except (OSError, ValueError) as exc:
        out += f"; no watermarks from Flink ({exc})"
    return out


def checkpointed_after(settings, branches: list[str], since: float) -> bool:
    latest = checkpoints.latest(checkpoints.folder(settings, branches))
    return latest is not None and latest.joinpath(checkpoints.METADATA).stat().st_mtime > since


def assert_exact(settings, frame: pd.DataFrame, progress: dict[str, str]) -> None:
    compared, wrong = compare_online(settings, frame, progress)
    assert not wrong, f"{len(wrong)} of {compared} values differ, e.g. {wrong[:5]}"
    assert compared > 1_000


def assert_log_exact(settings, frame: pd.DataFrame, progress: dict[str, str]) -> None:
    """The compacted offline log holds every row up to ``progress``, once, as the oracle."""
    from streams.offline import compact_log, log_committed

    wait_for(lambda: log_committed(settings), timeout_s=90,
             what="Flink to commit the staged offline log")
    compact_log(settings)
    compared, problems = compare_log(settings, frame, progress)
    assert not problems, f"{len(problems)} log problems in {compared} rows: {problems[:5]}"
    assert compared > 500


def dead_letters(settings) -> list[str]:
    letters = read_topic(settings, settings.topics.dead_letter, len(GARBAGE), timeout_s=15)
    return [read_dead_letter(m.key(), m.value(), m.headers()).error_kind for m in letters]


def python_workers() -> list[psutil.Process]:
    """The PyFlink Python worker processes of jobs this test process started."""
    return [p for p in psutil.Process().children(recursive=True)
            if "beam_boot" in " ".join(p.cmdline())]


def restarts(settings, job_id: str | None = None) -> int:
    """The job's restarts once Flink reports them (its metric store fills on the first
    request, so the first answer can be empty)."""
    def known() -> bool:
        found = [j for j in flink_rest.jobs(settings) or [] if job_id in (None, j.job_id)]
        counted.extend(j.restarts for j in found[:1] if j.restarts is not None)
        return bool(counted)

    counted: list[int] = []
    wait_for(known, timeout_s=30, what="Flink's restart count")
    return counted[-1]
