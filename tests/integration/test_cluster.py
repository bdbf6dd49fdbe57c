"""The distributed path: a standalone Flink cluster (a JobManager and two TaskManagers,
separate JVMs from the wheel's own scripts), the job submitted with ``flink run`` as
compose does, at parallelism 2. One TaskManager is SIGKILLed mid-stream; a replacement
joins (``cluster.up`` tops them up, as a supervisor would), Flink restores the job from
its checkpoint, and the features must equal the brute force. Prometheus serves the job's
own metrics."""

from __future__ import annotations

import time
import urllib.request

import pytest

from features.plans import load_view_plans
from streams import cluster, flink_rest
from streams.runner import progress_of, with_ports
from tests.integration.conftest import settings_env, wait_for, wait_until_stable
from tests.integration.faults import (
    assert_exact,
    checkpointed_after,
    produce,
    reachable,
    restarts,
    stream,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster_settings(isolated_settings):
    settings = with_ports(isolated_settings(job={"parallelism": 2,
                                                 "checkpoint_interval_ms": 2000}))
    yield settings
    for line in cluster.down(settings):
        print(line)


def test_a_killed_taskmanager_recovers_with_exact_features(cluster_settings):
    settings = cluster_settings
    views = [p.name for p in load_view_plans(settings.feature_repo)]
    first, second, frame = stream(settings)

    def caught_up(events) -> bool:
        progress = progress_of(settings, views)
        return all(int(progress.get(v, -1)) >= reachable(settings, events) for v in views)

    for line in cluster.up(settings):
        print(line)
    assert len(cluster.processes(settings, "taskmanager")) == 2
    produce(settings, first)
    job_id = cluster.submit(settings, ["features"], extra_env=settings_env(settings))
    wait_for(lambda: caught_up(first), timeout_s=300, what="the first half")
    since = time.time()
    wait_for(lambda: checkpointed_after(settings, ["features"], since), timeout_s=60,
             what="a checkpoint after the first half")

    victim = cluster.processes(settings, "taskmanager")[0]
    victim.kill()
    victim.wait(30)
    produce(settings, second)
    # A replacement TaskManager, as a supervisor would start; the dead one's Python
    # workers, which outlive it, are removed.
    cluster.up(settings)
    assert not cluster.orphaned_workers(settings)
    wait_for(lambda: caught_up(frame), timeout_s=360, what="the whole stream after recovery")
    progress = wait_until_stable(lambda: progress_of(settings, views), quiet_s=5, timeout_s=60)

    jobs = {j.job_id: j for j in flink_rest.jobs(settings) or []}
    assert jobs[job_id].state == "RUNNING"
    assert restarts(settings, job_id) >= 1
    assert_exact(settings, frame, progress)

    # Our own metrics on Prometheus, from the TaskManagers' reporters.
    port = settings.job.metrics_port
    scraped = ""
    for p in range(port, port + cluster.TASKMANAGERS + 1):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=5) as r:
                scraped += r.read().decode()
        except OSError:
            continue
    for name in ("feature_rows_written", "event_time_lag_ms", "numRestarts"):
        assert name in scraped, f"{name} is not on Prometheus"
