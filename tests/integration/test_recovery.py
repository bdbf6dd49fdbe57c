"""Recovery is exact: each fault mid-stream, then the features against the brute force.

Every test runs the same shape: the first half of a seeded stream (with a few malformed
records) is processed and checkpointed, the fault strikes, the second half arrives, and
once the job has caught up every feature value must equal the oracle computed from all
the raw events: nothing lost, nothing counted twice. The offline log must hold every row
once (tests/oracle.py ``expected_log``), and dead letters and alerts must not be repeated.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import redis

from features.feast_repo import OnlineReader, project_name
from features.plans import load_view_plans
from features.redis_writer import FeastRedisWriter
from features.tiles import FeatureRow
from streams import checkpoints, flink_rest
from streams.feature_operators import ShardWrites, shard_key
from streams.retry import redis_client
from streams.runner import progress_of
from streams.stats import progress_key
from tests.integration.conftest import read_topic, settings_env, wait_for, wait_until_stable
from tests.integration.faults import (
    assert_exact,
    assert_log_exact,
    checkpointed_after,
    dead_letters,
    produce,
    python_workers,
    reachable,
    restarts,
    stream,
    where_it_stands,
)

pytestmark = pytest.mark.integration

#: Events of the second half sent before the restart: about 15 minutes of event time.
EARLY = 600


def test_killed_python_workers_restore_from_the_checkpoint(isolated_settings, running_job):
    """Every Python worker is killed, then a little of the second half arrives: enough for
    each stage to find its worker dead (PyFlink only notices when it hands the worker a
    bundle, so a quiet branch's dead worker goes unnoticed until that branch has work).
    The rest arrives once every task has restarted: a restore can come after the job has
    read all there was, and event time then waits for new records on every partition
    (docs/semantics.md, "Event time after a restore").
    """
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
    for worker in workers:
        worker.kill()
    produce(settings, second[:EARLY])
    job_id = str(job.client.get_job_id())
    wait_for(lambda: flink_rest.restarted_everywhere(job.settings, job_id), timeout_s=120,
             what="every task of the job to restart")
    produce(settings, second[EARLY:])
    target = reachable(settings, frame)
    wait_for(lambda: job.caught_up(target), timeout_s=300, what="the whole stream after the "
             "restore", explain=lambda: where_it_stands(job.settings, target, job_id))
    progress = wait_until_stable(job.progress, quiet_s=5, timeout_s=60)
    assert job.status() == "RUNNING"
    assert flink_rest.last_failure(job.settings, job_id) is not None

    assert_exact(settings, frame, progress)
    assert_log_exact(settings, frame, progress)
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
        target = reachable(settings, frame)
        wait_for(lambda: caught_up(target), timeout_s=300, what="the whole stream after the "
                 "restart", explain=lambda: where_it_stands(settings, target))
        progress = wait_until_stable(lambda: progress_of(settings, views), quiet_s=5,
                                     timeout_s=60)
        # The log's files in progress at the kill were truncated and resumed, not lost.
        assert_log_exact(settings, frame, progress)
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
    target = reachable(settings, frame)
    wait_for(lambda: job.caught_up(target), timeout_s=300, what="the whole stream after Redis "
             "came back", explain=lambda: where_it_stands(job.settings, target))
    progress = wait_until_stable(job.progress, quiet_s=5, timeout_s=60)
    assert job.status() == "RUNNING"
    assert restarts(job.settings) == 0
    assert_exact(settings, frame, progress)


def test_rows_cut_off_by_an_outage_land_with_their_progress(isolated_settings, private_redis):
    """The outage test above, at the moment that matters: the write of a shard's last rows
    fails mid-try. Once Redis is back, the rows and the shard's progress must both be there
    (progress lost with the failed try would hold the view back for ever, since the
    shard's later timers have nothing new to report)."""
    url, server = private_redis
    settings = isolated_settings(redis_url=url)
    plan = next(p for p in load_view_plans(settings.feature_repo) if len(p.join_keys) == 1)
    sample = {"INT64": 7, "DOUBLE": 0.25, "STRING": "leave"}
    ts_ms = (int(time.time() * 1000) - 3_600_000) // 300_000 * 300_000
    rows = [FeatureRow(plan.name, f"tenant-{i}", ts_ms,
                       {f.name: sample[f.value_type] for f in plan.features}) for i in range(3)]
    writer = FeastRedisWriter(url, project_name(settings.feature_repo), [plan],
                              client=redis_client(url))
    writes = ShardWrites(writer, progress_key(settings))
    key = shard_key(plan.name, 0)

    server.send_signal(signal.SIGSTOP)
    applied: list[int] = []
    try:
        worker = threading.Thread(target=lambda: applied.append(writes.rows(key, rows, ts_ms)))
        worker.start()
        time.sleep(8)  # past the client's 5 s socket timeout: the first try has failed
    finally:
        server.send_signal(signal.SIGCONT)
    worker.join(60)
    assert applied == [len(rows)]
    # The shard's next timers have nothing new: they must not need to report again.
    assert writes.progress(key, ts_ms, force=True)

    assert redis.Redis.from_url(url).hget(progress_key(settings), key) == str(ts_ms).encode()
    read = OnlineReader(settings.feature_repo, url).read(
        plan.name, [plan.entity_values(r.entity_value) for r in rows])
    assert all(got[name] == value for got, r in zip(read, rows, strict=True)
               for name, value in r.values.items()), read
