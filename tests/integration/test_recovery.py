"""Recovery is exact: each fault mid-stream, then the features against the brute force.

Every test runs the same shape: the first half of a seeded stream (with a few malformed
records) is processed and checkpointed, the fault strikes, the second half arrives, and
once the job has caught up every feature value must equal the oracle computed from all
the raw events: nothing lost, nothing counted twice. Dead letters and alerts must not be
repeated either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest

from features.plans import load_view_plans
from schemas.dead_letter import read_dead_letter
from streams import checkpoints, flink_rest
from streams.producer import parse_drift, produce_events, produce_raw, simulated_events
from streams.runner import progress_of
from tests.integration.conftest import read_topic, settings_env, wait_for, wait_until_stable
from tests.oracle import compare_online

pytestmark = pytest.mark.integration

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


def checkpointed_after(settings, branches: list[str], since: float) -> bool:
    latest = checkpoints.latest(checkpoints.folder(settings, branches))
    return latest is not None and latest.joinpath(checkpoints.METADATA).stat().st_mtime > since


def assert_exact(settings, frame: pd.DataFrame, progress: dict[str, str]) -> None:
    compared, wrong = compare_online(settings, frame, progress)
    assert not wrong, f"{len(wrong)} of {compared} values differ, e.g. {wrong[:5]}"
    assert compared > 1_000


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


def test_a_killed_python_worker_restores_from_the_checkpoint(isolated_settings, running_job):
    settings = isolated_settings(job={"checkpoint_interval_ms": 2000},
                                 drift={"window_ms": 30 * 60_000, "reference_events": 500})
    first, second, frame = stream(settings, drift="response_latency_ms:mean_shift:2.0@0.4")
    produce(settings, first, garbage=True)
    job = running_job(settings, ["features", "drift"])
    wait_for(lambda: job.caught_up(reachable(settings, first)), timeout_s=240,
             what="the first half")
    since = time.time()
    wait_for(lambda: checkpointed_after(settings, ["features", "drift"], since), timeout_s=60,
             what="a checkpoint after the first half")

    workers = python_workers()
    assert workers, "no PyFlink Python worker found"
    workers[0].kill()
    produce(settings, second)
    job_id = str(job.client.get_job_id())
    wait_for(lambda: restarts(job.settings) >= 1, timeout_s=120,
             what="Flink to restart the job")
    wait_for(lambda: job.caught_up(reachable(settings, frame)), timeout_s=300,
             what="the whole stream after the restore")
    progress = wait_until_stable(job.progress, quiet_s=5, timeout_s=60)
    assert job.status() == "RUNNING"
    assert flink_rest.last_failure(job.settings, job_id) is not None

    assert_exact(settings, frame, progress)
    assert sorted(dead_letters(settings)) == ["bad_magic", "invalid_json"]
    alerts = read_topic(settings, settings.topics.alerts, expected=1, timeout_s=30)
    ids = [m.key() for m in alerts]
    assert ids and len(ids) == len(set(ids)), "an alert was published twice"


def test_sigkill_of_driftline_run_resumes_from_its_checkpoint(isolated_settings, tmp_path):
    settings = isolated_settings(job={"checkpoint_interval_ms": 2000})
    first, second, frame = stream(settings)
    produce(settings, first, garbage=True)
    views = [p.name for p in load_view_plans(settings.feature_repo)]
    env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}

    def start(log_name: str) -> tuple[subprocess.Popen, object]:
        log = (tmp_path / log_name).open("w")
        proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "run",
                                 "--branches", "features"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        return proc, log

    def caught_up(target: int) -> bool:
        progress = progress_of(settings, views)
        return all(int(progress.get(v, -1)) >= target for v in views)

    proc, _ = start("first.log")
    try:
        wait_for(lambda: caught_up(reachable(settings, first)), timeout_s=240,
                 what="the first half")
        since = time.time()
        wait_for(lambda: checkpointed_after(settings, ["features"], since), timeout_s=60,
                 what="a checkpoint after the first half")
        family = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # Its JVM and Python workers must not outlive it (they would go on writing).
        _, alive = psutil.wait_procs(family, timeout=30)
        for p in alive:
            p.kill()
        assert not alive, f"left running after SIGKILL: {[p.cmdline()[:2] for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()

    produce(settings, second)
    proc, _ = start("second.log")
    try:
        wait_for(lambda: caught_up(reachable(settings, frame)), timeout_s=300,
                 what="the whole stream after the restart")
        progress = wait_until_stable(lambda: progress_of(settings, views), quiet_s=5,
                                     timeout_s=60)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    log = (tmp_path / "second.log").read_text()
    assert "resuming from checkpoint" in log, log[-2000:]
    # Bounded: the run resumed from and the new one, each with its newest checkpoints.
    root = checkpoints.folder(settings, ["features"])
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) <= 2, runs
    assert all(len(list(r.glob(f"chk-*/{checkpoints.METADATA}"))) <= checkpoints.RETAINED
               for r in runs)
    assert_exact(settings, frame, progress)
    # Resumed at the checkpointed offsets: the first half's bad records are not read again.
    assert sorted(dead_letters(settings)) == ["bad_magic", "invalid_json"]


def test_a_redis_outage_of_30_s_holds_back_and_loses_nothing(isolated_settings, running_job,
                                                             private_redis):
    url, server = private_redis
    settings = isolated_settings(redis_url=url)
    first, second, frame = stream(settings)
    produce(settings, first)
    job = running_job(settings, ["features"])
    wait_for(lambda: job.caught_up(reachable(settings, first)), timeout_s=240,
             what="the first half")

    server.send_signal(signal.SIGSTOP)  # connections hang, as across a network partition
    try:
        produce(settings, second)
        time.sleep(30)
        assert job.status() == "RUNNING"
    finally:
        server.send_signal(signal.SIGCONT)
    wait_for(lambda: job.caught_up(reachable(settings, frame)), timeout_s=300,
             what="the whole stream after Redis came back")
    progress = wait_until_stable(job.progress, quiet_s=5, timeout_s=60)
    assert job.status() == "RUNNING"
    assert restarts(job.settings) == 0
    assert_exact(settings, frame, progress)
